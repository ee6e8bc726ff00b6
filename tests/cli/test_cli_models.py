"""Every emulated model through scan and dump-device; dumped folders pass the fixture-folder parser test."""

from __future__ import annotations

import importlib.util
import json
from pathlib import Path
from types import ModuleType

import pytest
from simthread import running_fleet, subnet

from fleetd.cli import main
from fleetd.sim.fleet import Group
from fleetd.sim.models import MODELS

PORTS = {"api": 14028, "web": 18080, "v3": 14433}
PORT_ARGS = ["--api-port", "14028", "--web-port", "18080", "--v3-port", "14433"]
FOLDER_TEST = Path(__file__).resolve().parent.parent / "drivers" / "test_fixture_folders.py"


def folder_checks() -> ModuleType:
    """The fixture-folder parser test module (tests/drivers), whose checks every folder must pass."""
    if not FOLDER_TEST.exists():
        pytest.skip(f"{FOLDER_TEST} is not there")
    spec = importlib.util.spec_from_file_location("cli_fixture_folder_checks", FOLDER_TEST)
    assert spec and spec.loader
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def group(model: str, base: str) -> Group:
    ports = {k: v for k, v in PORTS.items() if k in MODELS[model].emulator_class().default_ports}
    return Group(model, 1, base, ports=ports, jitter=0.0)


def test_scan_identifies_a_mixed_fleet(capsys) -> None:
    net = subnet()
    models = sorted(MODELS)
    groups = [group(model, f"{net}{i + 1}") for i, model in enumerate(models)]
    with running_fleet(*groups):
        code = main(["scan", f"{net}1-{len(models) + 2}", *PORT_ARGS, "--timeout", "2", "--json"])
    out, err = capsys.readouterr()
    assert code == 0, err
    found = [json.loads(line) for line in out.splitlines()]
    assert [f["host"] for f in found] == [f"{net}{i + 1}" for i in range(len(models))]
    for f, model in zip(found, models, strict=True):
        assert f["model"].casefold().startswith(model.casefold().split("_")[0]), (f, model)
        assert f["hashrate_ths"] and f["hashrate_ths"] > 0


@pytest.mark.parametrize("model", sorted(MODELS))
def test_dumped_folder_passes_the_fixture_folder_test(model: str, capsys, tmp_path: Path) -> None:
    checks = folder_checks()
    net = subnet()
    with running_fleet(group(model, f"{net}1")) as fleet:
        host = fleet.miners[0].host
        code = main(["dump-device", host, *PORT_ARGS, "--timeout", "2", "--out", str(tmp_path)])
        state = fleet.state(host)
    out, err = capsys.readouterr()
    assert code == 0, err
    assert "warning" not in err
    folder = Path(out.strip())
    checks.test_folder_parses_to_sane_values(folder)
    text = "\n".join(p.read_text() for p in folder.iterdir())
    for secret in (host, state.mac.upper(), state.mac.lower(), state.serial):
        if secret:
            assert secret not in text, secret


@pytest.mark.parametrize("model", sorted(MODELS))
def test_sleep_and_wake_every_model(model: str, capsys) -> None:
    net = subnet()
    g = group(model, f"{net}1")
    with running_fleet(Group(g.model, 1, g.base, ports=g.ports, ramp_s=0.2)) as fleet:
        host = fleet.miners[0].host
        slept = main(["sleep", host, *PORT_ARGS, "--verify-timeout", "15", "-q"])
        asleep = fleet.call(lambda: fleet.state(host).sleeping)
        woke = main(["wake", host, *PORT_ARGS, "--verify-timeout", "15", "-q"])
        awake = not fleet.call(lambda: fleet.state(host).sleeping)
    out, err = capsys.readouterr()
    assert (slept, woke) == (0, 0), err
    assert asleep and awake
    assert out.splitlines()[0].startswith(f"{host}: asleep, verified")
    assert out.splitlines()[1].startswith(f"{host}: awake, verified")


@pytest.mark.parametrize("model", sorted(MODELS))
@pytest.mark.parametrize(("fault", "command"), [("wrong_password", "sleep"), ("malformed", "probe")])
def test_faulty_miner_is_one_line_error_for_every_model(model: str, fault: str, command: str, capsys) -> None:
    net = subnet()
    g = group(model, f"{net}1")
    with running_fleet(Group(g.model, 1, g.base, ports=g.ports, faults={fault: 1.0})) as fleet:
        host = fleet.miners[0].host
        power_args = ["--verify-timeout", "2", "-q"] if command == "sleep" else []
        code = main([command, host, *PORT_ARGS, "--timeout", "1", *power_args])
        asleep = fleet.call(lambda: fleet.state(host).sleeping)
    out, err = capsys.readouterr()
    assert code == 1 and out == "" and not asleep, (out, err)
    lines = err.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith(f"fleetd {command}: ") and "Traceback" not in err


@pytest.mark.parametrize("model", sorted(MODELS))
def test_telemetry_faults_show_for_every_model(model: str, capsys) -> None:
    """board_down, fan_failed and overheat reach the reading of every emulated model's driver."""
    net = subnet()
    g = group(model, f"{net}1")
    faults = {"board_down": 1.0, "fan_failed": 1.0, "overheat": 1.0}
    with running_fleet(Group(g.model, 1, g.base, ports=g.ports, jitter=0.0, faults=faults)) as fleet:
        host = fleet.miners[0].host
        code = main(["probe", host, *PORT_ARGS, "--timeout", "2", "--json"])
    out, err = capsys.readouterr()
    assert code == 0, err
    snap = json.loads(out)["snapshot"]
    assert [b["ok"] for b in snap["hashboards"]].count(False) == 1
    assert any(f["rpm"] == 0 for f in snap["fans"]), snap["fans"]
    assert snap["temp_c"] is not None and snap["temp_c"] >= 90.0
    codes = {e["code"] for e in snap["errors"]}
    if not model.startswith("Whatsminer"):  # Whatsminer reports its own error codes (its own tests)
        assert "board" in codes and ("fan_stopped" in codes or not snap["is_mining"]), codes
    assert codes


@pytest.mark.parametrize("model", sorted(MODELS))
@pytest.mark.parametrize(
    ("fault", "command", "code", "message"),
    [("dead", "probe", 1, ""), ("ignore_power_commands", "sleep", 3, "did not comply")],
)
def test_dead_and_deaf_miners_fail_clearly_for_every_model(
    model: str, fault: str, command: str, code: int, message: str, capsys
) -> None:
    net = subnet()
    g = group(model, f"{net}1")
    with running_fleet(Group(g.model, 1, g.base, ports=g.ports, faults={fault: 1.0})) as fleet:
        host = fleet.miners[0].host
        power_args = ["--verify-timeout", "1", "-q"] if command == "sleep" else []
        got = main([command, host, *PORT_ARGS, "--timeout", "1", *power_args])
        asleep = fleet.call(lambda: fleet.state(host).sleeping)
    out, err = capsys.readouterr()
    assert got == code and out == "" and not asleep, (got, out, err)
    lines = err.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith(f"fleetd {command}: ") and message in lines[0], err
