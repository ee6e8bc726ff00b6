"""check-config on a fresh machine: the shipped example, misspelled keys beside a missing `kind`."""

from __future__ import annotations

from pathlib import Path

import pytest

from fleetd.cli import main
from fleetd.config import ConfigError, parse_config

EXAMPLE = Path(__file__).resolve().parents[2] / "config" / "fleetd.example.toml"
_ENV = (
    "FLEETD_MINER_PASSWORD",
    "ANTMINER_PASSWORD",
    "WHATSMINER_PASSWORD",
    "LUXOR_API_KEY",
    "OPENEI_API_KEY",
)


@pytest.fixture
def fresh_machine(monkeypatch: pytest.MonkeyPatch) -> None:
    for name in _ENV:
        monkeypatch.delenv(name, raising=False)
    monkeypatch.delenv("CREDENTIALS_DIRECTORY", raising=False)


def test_the_shipped_example_needs_its_secrets(
    fresh_machine: None, capsys: pytest.CaptureFixture[str]
) -> None:
    assert main(["check-config", str(EXAMPLE)]) != 0
    err = capsys.readouterr().err
    assert "FLEETD_MINER_PASSWORD is not set" in err and "LUXOR_API_KEY" in err


def test_no_secrets_validates_the_shipped_example(
    fresh_machine: None, capsys: pytest.CaptureFixture[str]
) -> None:
    assert main(["check-config", "--no-secrets", str(EXAMPLE)]) == 0
    assert "OK" in capsys.readouterr().out


def test_no_secrets_still_reports_everything_else(fresh_machine: None) -> None:
    data = {"polling": {"interval_s": -1}, "api": {"token": {"env": "UNSET_TOKEN_VAR"}}}
    with pytest.raises(ConfigError) as err:
        parse_config(data, secrets=False)
    assert [e for e in err.value.errors if "UNSET_TOKEN_VAR" in e] == []
    assert any(e.startswith("polling.interval_s") for e in err.value.errors)


def test_a_misspelled_kind_is_reported_with_the_missing_kind() -> None:
    with pytest.raises(ConfigError) as err:
        parse_config({"economics": {"tariff": {"type": "flat", "price_per_kwh": 0.05}}})
    assert err.value.errors == [
        "economics.tariff.kind: missing; one of flat, tou, urdb, ercot, http, mqtt",
        "economics.tariff.type: unknown key; did you mean kind? expected kind and the keys of that kind",
    ]


def test_the_allowed_keys_include_kind() -> None:
    with pytest.raises(ConfigError) as err:
        parse_config({"economics": {"tariff": {"kind": "flat", "price_per_kwh": 0.05, "prise": 1}}})
    assert err.value.errors == ["economics.tariff.prise: unknown key; expected one of kind, price_per_kwh"]
