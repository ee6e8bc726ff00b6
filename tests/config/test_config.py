"""The configuration file: defaults, validation messages that name the key, secret references."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest
from fleetd.drivers.base import Login

from fleetd.config import Config, ConfigError, MinerConfig, load_config, parse_config

ROOT = Path(__file__).resolve().parents[2]

MINIMAL = """
[api]
listen = "127.0.0.1:8787"

[[miners]]
host = "127.1.0.1"

[[discovery]]
targets = ["127.1.0.0/24"]
"""


def _errors(data: dict) -> list[str]:
    with pytest.raises(ConfigError) as info:
        parse_config(data)
    return info.value.errors


def test_minimal_file_from_the_issue(tmp_path: Path) -> None:
    path = tmp_path / "fleetd.toml"
    path.write_text(MINIMAL)
    cfg = load_config(path)
    assert cfg.api.host == "127.0.0.1" and cfg.api.port == 8787
    assert cfg.miners[0].host == "127.1.0.1" and cfg.miners[0].driver == "auto"
    assert len(cfg.discovery[0].target_set()) == 254
    assert cfg.polling.interval_s > 0 and cfg.polling.concurrency >= 1
    assert cfg.storage_url(tmp_path) == f"sqlite:///{tmp_path / 'fleetd.db'}"


def test_empty_config_is_valid() -> None:
    cfg = parse_config({})
    assert cfg == Config() and cfg.miners == [] and cfg.api.listen == "127.0.0.1:8787"


def test_example_config_validates(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("FLEETD_MINER_PASSWORD", "s3cret")
    monkeypatch.setenv("ANTMINER_PASSWORD", "a-pw")
    monkeypatch.setenv("WHATSMINER_PASSWORD", "w-pw")
    monkeypatch.setenv("LUXOR_API_KEY", "test-key")
    cfg = load_config(ROOT / "config" / "fleetd.example.toml")
    assert cfg.miners and cfg.discovery and cfg.sites
    creds = cfg.credentials_for(cfg.miners[0])
    assert creds.password == "s3cret"  # the common password, for vendors without their own
    assert creds.for_vendor("antminer") == Login("root", "a-pw")
    assert creds.for_vendor("whatsminer") == Login("super", "w-pw")


@pytest.mark.parametrize(
    ("data", "expected"),
    [
        ({"miners": [{"host": "10.0.0.1"}] * 3 + [{"host": "a b"}]}, "miners[3].host: not an IP address"),
        ({"miners": [{"host": "300.1.2.3"}]}, "miners[0].host: not an IP address or hostname"),
        ({"miners": [{}]}, "miners[0].host: required key is missing"),
        ({"miners": [{"host": "10.0.0.1", "hots": 1}]}, "miners[0].hots: unknown key"),
        ({"polling": {"interval_s": -1}}, "polling.interval_s: out of range: got -1; must be > 0"),
        ({"polling": {"concurrency": 100000}}, "polling.concurrency:"),
        ({"api": {"listen": "localhost"}}, "api.listen: expected HOST:PORT"),
        ({"api": {"listen": "127.0.0.1:70000"}}, "api.listen: port 70000 out of range"),
        ({"discovery": [{"targets": ["10.0.0.0/24", "10.0.0.0/33"]}]}, "discovery[0].targets[1]:"),
        ({"discovery": [{"targets": []}]}, "discovery[0].targets:"),
        ({"storage": {"url": "mysql://x"}}, "storage.url: expected a sqlite:/// or postgresql:// URL"),
        ({"logging": {"level": "loud"}}, "logging.level:"),
        ({"sites": [{"name": "a"}], "miners": [{"host": "10.0.0.1", "site": "b"}]}, "miners[0].site: unk"),
        ({"miners": [{"host": "10.0.0.1", "credentials": "x"}]}, "miners[0].credentials: no [credentials.x]"),
        ({"miners": [{"host": "10.0.0.1"}, {"host": "10.0.0.1"}]}, "miners[1].host: duplicate of miners[0]"),
        ({"miners": [{"host": "10.0.0.1", "driver": "nosuch"}]}, "miners[0].driver: unknown driver 'nosuch'"),
        ({"miners": [{"host": "10.0.0.1", "api_port": 0}]}, "miners[0].api_port:"),
        ({"credentials": {"default": {"password": {"vault": "x"}}}}, "credentials.default.password: expec"),
    ],
)
def test_errors_name_the_key(data: dict, expected: str) -> None:
    errors = _errors(data)
    assert any(e.startswith(expected) for e in errors), errors


def test_every_problem_is_reported_at_once() -> None:
    data = {"miners": [{"host": "x y"}, {"host": "10.0.0.1", "rack": 5}], "polling": {"timeout_s": 0}}
    errors = _errors(data)
    assert len(errors) == 3


def test_inline_secret_needs_opt_in() -> None:
    data = {"credentials": {"default": {"username": "root", "password": "hunter2"}}}
    (err,) = _errors(data)
    assert err.startswith("credentials.default.password: inline secrets are refused")
    assert "hunter2" not in err
    cfg = parse_config({**data, "allow_inline_secrets": True})
    assert "hunter2" not in repr(cfg) and "hunter2" not in str(cfg)
    assert cfg.credentials_for(MinerConfig(host="10.0.0.1")).password == "hunter2"


def test_secret_references(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    (tmp_path / "pw").write_text("from-file\n")
    creds = tmp_path / "creds"
    creds.mkdir()
    (creds / "miner-pw").write_text("from-credential")
    monkeypatch.setenv("CREDENTIALS_DIRECTORY", str(creds))
    monkeypatch.setenv("FLEETD_TEST_PW", "from-env")
    cfg = parse_config(
        {
            "credentials": {
                "a": {"password": {"env": "FLEETD_TEST_PW"}},
                "b": {"password": {"file": str(tmp_path / "pw")}},
                "c": {"username": "admin", "password": {"credential": "miner-pw"}},
            },
            "miners": [
                {"host": "10.0.0.1", "credentials": "a"},
                {"host": "10.0.0.2", "credentials": "b"},
                {"host": "10.0.0.3", "credentials": "c"},
            ],
        }
    )
    values = [cfg.credentials_for(m).password for m in cfg.miners]
    assert values == ["from-env", "from-file", "from-credential"]
    assert cfg.credentials_for(cfg.miners[2]).username == "admin"
    assert "from-" not in repr(cfg)


def test_unreadable_secret_names_the_key(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    monkeypatch.delenv("FLEETD_NOPE", raising=False)
    monkeypatch.delenv("CREDENTIALS_DIRECTORY", raising=False)
    errors = _errors(
        {
            "credentials": {
                "a": {"password": {"env": "FLEETD_NOPE"}},
                "b": {"password": {"file": str(tmp_path / "missing")}},
                "c": {"password": {"credential": "x"}},
            }
        }
    )
    assert errors == [
        "credentials.a.password: environment variable FLEETD_NOPE is not set",
        f"credentials.b.password: cannot read {tmp_path / 'missing'}: No such file or directory",
        "credentials.c.password: credential 'x': $CREDENTIALS_DIRECTORY is not set",
    ]


def test_toml_syntax_error_names_the_line(tmp_path: Path) -> None:
    path = tmp_path / "bad.toml"
    path.write_text('[api]\nlisten = "127.0.0.1:8787"\n[[miners]]\nhost = \n')
    with pytest.raises(ConfigError) as info:
        load_config(path)
    assert str(path) in str(info.value) and "line 4" in str(info.value)


def test_economics_section_is_validated_when_present() -> None:
    errors = _errors({"economics": {"pool_fee": "lots"}})
    assert errors and all(e.startswith("economics.") for e in errors), errors


def _cli(*args: str, env: dict | None = None) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "fleetd", *args], capture_output=True, text=True, timeout=60, env=env
    )


def test_check_config_cli(tmp_path: Path) -> None:
    good = tmp_path / "good.toml"
    good.write_text(MINIMAL)
    ok = _cli("check-config", str(good))
    assert ok.returncode == 0, ok.stderr
    assert "OK" in ok.stdout and "1 miners" in ok.stdout

    bad = tmp_path / "bad.toml"
    bad.write_text(MINIMAL.replace('host = "127.1.0.1"', 'host = "127.1.0.1.5"'))
    res = _cli("check-config", str(bad))
    assert res.returncode == 2
    assert f"{bad}: miners[0].host: not an IP address or hostname" in res.stderr
    assert "Traceback" not in res.stderr

    missing = _cli("check-config", str(tmp_path / "nope.toml"))
    assert missing.returncode == 2 and "cannot read" in missing.stderr and "Traceback" not in missing.stderr


def test_example_documents_every_key() -> None:
    import re

    from fleetd.config import (
        ApiConfig,
        CredentialsConfig,
        DiscoveryConfig,
        DriversConfig,
        FindingsConfig,
        HaConfig,
        HealthConfig,
        HomeAssistantConfig,
        LoggingConfig,
        MqttConfig,
        PollingConfig,
        SiteConfig,
        StorageConfig,
        TrendsConfig,
    )

    text = (ROOT / "config" / "fleetd.example.toml").read_text()
    models = [Config, ApiConfig, PollingConfig, StorageConfig, LoggingConfig, SiteConfig, CredentialsConfig]
    models += [
        MinerConfig,
        DiscoveryConfig,
        HaConfig,
        DriversConfig,
        HealthConfig,
        FindingsConfig,
        TrendsConfig,
        MqttConfig,
        HomeAssistantConfig,
    ]
    missing = [
        f"{m.__name__}.{name}"
        for m in models
        for name in m.model_fields
        if not re.search(rf"^(# )?\[*(\w+\.)?{name}\]*( =|$)", text, re.M)
    ]
    assert not missing, missing


def test_miner_model_key_is_accepted_and_read_by_whatif(tmp_path: Path) -> None:
    path = tmp_path / "fleetd.toml"
    path.write_text(
        '[[miners]]\nhost = "10.0.0.1"\nmodel = "Antminer S19 Pro"\n\n'
        '[[miners]]\nhost = "10.0.0.2"\nmodel = "Antminer S21"\nnominal_power_w = 3400\n'
    )
    cfg = load_config(path)
    assert [m.model for m in cfg.miners] == ["Antminer S19 Pro", "Antminer S21"]
    assert parse_config({"miners": [{"host": "10.0.0.3"}]}).miners[0].model == ""
    assert _cli("check-config", str(path)).returncode == 0
    res = _cli("whatif", "--fleet", str(path), "--difficulty", "1.2e14", "--json")
    assert res.returncode == 0, res.stderr
    assert "Antminer S19 Pro" in res.stdout and "Antminer S21" in res.stdout


VENDOR_SETS = """
[credentials.default]
username = "admin"
password = { env = "FLEETD_TEST_COMMON" }

[credentials.default.antminer]
password = { env = "FLEETD_TEST_ANT" }

[credentials.default.whatsminer]
username = "user1"

[credentials.plain]
username = "root"
password = { env = "FLEETD_TEST_COMMON" }

[[miners]]
host = "10.0.0.1"

[[miners]]
host = "10.0.0.2"
credentials = "plain"
"""


def test_vendor_tables_override_the_common_values(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("FLEETD_TEST_COMMON", "common-pw")
    monkeypatch.setenv("FLEETD_TEST_ANT", "ant-pw")
    path = tmp_path / "fleetd.toml"
    path.write_text(VENDOR_SETS)
    cfg = load_config(path)
    creds = cfg.credentials_for(cfg.miners[0])
    assert creds.for_vendor("antminer") == Login("admin", "ant-pw")  # common user, own password
    assert creds.for_vendor("whatsminer") == Login("user1", "common-pw")  # own account, common password
    plain = cfg.credentials_for(cfg.miners[1])
    # A common "root" is an Antminer web user, never a Whatsminer account: that stays the factory "super".
    assert plain.for_vendor("antminer") == Login("root", "common-pw")
    assert plain.for_vendor("whatsminer") == Login("super", "common-pw")
    assert parse_config({}).credentials_for(MinerConfig(host="10.0.0.3")).for_vendor("whatsminer") == Login(
        "super", "super"
    )
    texts = [repr(cfg), str(cfg), repr(creds), repr(plain), repr(creds.for_vendor("antminer"))]
    assert not [t for t in texts if "-pw" in t]


@pytest.mark.parametrize(
    ("data", "expected"),
    [
        (
            {"antmnier": {"username": "root"}},
            "credentials.default.antmnier: unknown key (expected username, pass",
        ),
        ({"whatsminer": "super"}, "credentials.default.whatsminer: wrong type: expected a table"),
        ({"whatsminer": {"user": "super"}}, "credentials.default.whatsminer.user: unknown key"),
        (
            {"antminer": {"password": "root"}},
            "credentials.default.antminer.password: inline secrets are refused",
        ),
        (
            {"antminer": {"password": {"env": "FLEETD_NOPE"}}},
            "credentials.default.antminer.password: environ",
        ),
        ({"whatsminer": {"password": {"vault": "x"}}}, "credentials.default.whatsminer.password: expected"),
    ],
)
def test_vendor_table_errors_name_the_key(data: dict, expected: str, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("FLEETD_NOPE", raising=False)
    errors = _errors({"credentials": {"default": data}})
    assert any(e.startswith(expected) for e in errors), errors
    assert not [e for e in errors if "root" in e and "password" in e]  # an inline secret is never echoed
