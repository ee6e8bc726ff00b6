"""scan, probe, sleep, wake and dump-device run as the CLI (in-process) against emulated miners."""

from __future__ import annotations

import json
import socket
from pathlib import Path

import pytest
from fleetd.drivers import driver_class
from simthread import running_fleet, subnet

from fleetd.cli import main
from fleetd.sim.fleet import Group

S19 = "Antminer S19 Pro"
FAST = ["--timeout", "1"]
# Non-default ports, as a non-root operator's emulated fleet would use.
PORTS = {"api": 14028, "web": 18080}
PORT_ARGS = ["--api-port", "14028", "--web-port", "18080"]


def run_cli(capsys: pytest.CaptureFixture[str], *argv: str) -> tuple[int, str, str]:
    code = main(list(argv))
    out, err = capsys.readouterr()
    return code, out, err


def one_line_error(err: str, command: str) -> str:
    lines = err.strip().splitlines()
    assert len(lines) == 1, err
    assert lines[0].startswith(f"fleetd {command}: "), err
    assert "Traceback" not in err
    return lines[0]


# --- scan ----------------------------------------------------------------------------------------


def test_scan_finds_and_identifies_every_miner_sorted_by_address(capsys) -> None:
    net = subnet()
    with running_fleet(Group(S19, 3, f"{net}1", ports=PORTS, jitter=0.0)) as fleet:
        code, out, err = run_cli(capsys, "scan", f"{net}0/28", *PORT_ARGS, *FAST)
        hosts = [m.host for m in fleet.miners]
    assert code == 0, err
    lines = out.splitlines()
    assert lines[0].split()[:3] == ["host", "vendor", "model"]
    rows = lines[1:-1]
    assert [r.split()[0] for r in rows] == hosts
    for row in rows:
        assert S19 in row and "TH/s" in row
    assert lines[-1].startswith("found 3 miners in 14 addresses (")


def test_scan_json_lines_and_port_override_per_target(capsys) -> None:
    net = subnet()
    groups = (
        Group(S19, 2, f"{net}10", ports=PORTS, jitter=0.0),
        Group(S19, 1, f"{net}20", ports={"api": 14029, "web": 18080}, jitter=0.0),
    )
    with running_fleet(*groups) as fleet:
        code, out, err = run_cli(capsys, "scan", f"{net}10-12,{net}20:14029", *PORT_ARGS, *FAST, "--json")
        expected = {m.host: fleet.state(m.host).spec.hashrate_ths for m in fleet.miners}
    assert code == 0, err
    found = [json.loads(line) for line in out.splitlines()]
    assert [f["host"] for f in found] == [f"{net}10", f"{net}11", f"{net}20"]
    assert [f["api_port"] for f in found] == [14028, 14028, 14029]
    for f in found:
        assert f["model"] == S19 and f["driver"] == "antminer" and f["firmware"]
        assert f["mac"] and f["hashrate_ths"] == pytest.approx(expected[f["host"]], rel=0.05)
    assert err.strip().startswith("found 3 miners in 4 addresses (")  # summary on stderr with --json


def test_scan_survives_dead_slow_and_garbage_miners(capsys) -> None:
    net = subnet()
    groups = (
        Group(S19, 2, f"{net}1", ports=PORTS),
        Group(S19, 1, f"{net}3", ports=PORTS, faults={"dead": 1.0}),
        Group(S19, 1, f"{net}4", ports=PORTS, faults={"slow": 1.0}),
        Group(S19, 1, f"{net}5", ports=PORTS, faults={"malformed": 1.0}),
    )
    with running_fleet(*groups):
        code, out, err = run_cli(capsys, "scan", f"{net}1-8", *PORT_ARGS, "--timeout", "0.5", "--json")
    assert code == 0, err
    hosts = [json.loads(line)["host"] for line in out.splitlines()]
    assert f"{net}1" in hosts and f"{net}2" in hosts
    assert f"{net}3" not in hosts and f"{net}4" not in hosts
    assert "Traceback" not in err


def test_scan_is_not_held_up_by_a_silent_port_of_another_vendor(capsys) -> None:
    net = subnet()
    with running_fleet(Group(S19, 1, f"{net}1", ports=PORTS)), socket.socket() as silent:
        # The Whatsminer v3 port accepts (the kernel completes the handshake) and never answers.
        silent.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)  # past runs' TIME_WAITs
        silent.bind((f"{net}1", 14433))
        silent.listen(8)
        code, out, err = run_cli(
            capsys, "scan", f"{net}1", *PORT_ARGS, "--v3-port", "14433", "--timeout", "1"
        )
    assert code == 0, err
    assert S19 in out and out.splitlines()[-1].startswith("found 1 miners")


def test_scan_on_a_terminal_prints_each_miner_as_found(capsys, monkeypatch) -> None:
    import fleetd.cli.scan as scan_cli

    monkeypatch.setattr(scan_cli, "stdout_is_tty", lambda: True)
    net = subnet()
    with running_fleet(Group(S19, 2, f"{net}1", ports=PORTS, jitter=0.0)):
        code, out, err = run_cli(capsys, "scan", f"{net}0/29", *PORT_ARGS, *FAST)
    assert code == 0, err
    lines = out.splitlines()
    assert lines[0].split()[:3] == ["host", "vendor", "model"]
    assert sorted(r.split()[0] for r in lines[1:3]) == [f"{net}1", f"{net}2"]
    assert lines[3].startswith("found 2 miners in 6 addresses") and len(lines) == 4


@pytest.mark.parametrize("as_json", [False, True])
def test_scan_finding_nothing_exits_1_with_one_line(capsys, as_json: bool) -> None:
    net = subnet()
    code, out, err = run_cli(
        capsys, "scan", f"{net}0/28", *PORT_ARGS, *FAST, *(["--json"] if as_json else [])
    )
    assert code == 1 and out == ""
    line = one_line_error(err, "scan")
    assert "no miners found in 14 addresses" in line and "--api-port" in line


def test_scan_help_documents_exit_codes(capsys) -> None:
    with pytest.raises(SystemExit):
        main(["scan", "--help"])
    assert "exit status: 0 one or more miners found, 1 none found, 2 bad input" in capsys.readouterr().out


def test_scan_bad_target_is_one_line(capsys) -> None:
    code, out, err = run_cli(capsys, "scan", "10.0.0.1-10.0.0.x")
    assert code == 2 and out == ""
    assert "'10.0.0.x' is not an IP address" in one_line_error(err, "scan")


def test_scan_refuses_huge_ranges_without_force(capsys) -> None:
    code, _, err = run_cli(capsys, "scan", "10.0.0.0/8")
    assert code == 2
    assert "--force" in one_line_error(err, "scan")


# --- probe ---------------------------------------------------------------------------------------


def test_probe_json_is_one_normalized_reading(capsys) -> None:
    net = subnet()
    with running_fleet(Group(S19, 1, f"{net}1", ports=PORTS, jitter=0.0)) as fleet:
        host = fleet.miners[0].host
        code, out, err = run_cli(capsys, "probe", host, *PORT_ARGS, "--json")
        state = fleet.state(host)
    assert code == 0, err
    reading = json.loads(out)
    ident, snap = reading["identity"], reading["snapshot"]
    assert ident["model"] == S19 and ident["vendor"] and ident["driver"] == "antminer"
    assert ident["host"] == host and ident["mac"].upper() == state.mac.upper()
    assert snap["hashrate_ths"] == pytest.approx(state.spec.hashrate_ths, rel=0.05)
    assert snap["is_mining"] is True and snap["mode"] in ("normal", "unknown")  # poll need not read the mode
    assert len(snap["hashboards"]) == state.spec.boards
    for key in ("hashrate_avg_ths", "expected_hashrate_ths", "power_w", "fans", "pools", "errors"):
        assert key in snap


def test_probe_readable_summary_and_host_port(capsys) -> None:
    net = subnet()
    with running_fleet(Group(S19, 1, f"{net}1", ports=PORTS)) as fleet:
        host = fleet.miners[0].host
        code, out, err = run_cli(capsys, "probe", f"{host}:14028", "--web-port", "18080")
    assert code == 0, err
    assert out.splitlines()[0].startswith(f"{host}  {S19}")
    assert "TH/s now" in out and "board 0" in out


def test_probe_with_the_generic_driver_skips_detection(capsys) -> None:
    net = subnet()
    with running_fleet(Group(S19, 1, f"{net}1", ports=PORTS)) as fleet:
        host = fleet.miners[0].host
        code, out, err = run_cli(capsys, "probe", host, *PORT_ARGS, "--driver", "cgminer", "--json")
    assert code == 0, err
    assert json.loads(out)["identity"]["driver"] == "cgminer"


def test_probe_unknown_driver(capsys) -> None:
    code, _, err = run_cli(capsys, "probe", "127.14.250.1", "--driver", "nosuch")
    assert code == 2
    assert "unknown driver 'nosuch'" in one_line_error(err, "probe")


def test_probe_unreachable_host(capsys) -> None:
    code, out, err = run_cli(capsys, "probe", "127.14.250.2", *PORT_ARGS, *FAST)
    assert code == 1 and out == ""
    assert "127.14.250.2" in one_line_error(err, "probe")


def test_probe_garbage_reply(capsys) -> None:
    net = subnet()
    with running_fleet(Group(S19, 1, f"{net}1", ports=PORTS, faults={"malformed": 1.0})) as fleet:
        code, out, err = run_cli(capsys, "probe", fleet.miners[0].host, *PORT_ARGS, *FAST)
    assert code == 1 and out == ""
    one_line_error(err, "probe")


def test_probe_dead_miner_times_out(capsys) -> None:
    net = subnet()
    with running_fleet(Group(S19, 1, f"{net}1", ports=PORTS, faults={"dead": 1.0})) as fleet:
        code, _, err = run_cli(capsys, "probe", fleet.miners[0].host, *PORT_ARGS, "--timeout", "0.3")
    assert code == 1
    one_line_error(err, "probe")


def test_probe_bad_host(capsys) -> None:
    code, _, err = run_cli(capsys, "probe", "10.0.0.0/24")
    assert code == 2
    assert "expected one host" in one_line_error(err, "probe")


# --- sleep / wake --------------------------------------------------------------------------------


def test_sleep_then_wake_verified(capsys) -> None:
    net = subnet()
    with running_fleet(Group(S19, 1, f"{net}1", ports=PORTS, ramp_s=0.2)) as fleet:
        host = fleet.miners[0].host
        code, out, err = run_cli(capsys, "sleep", host, *PORT_ARGS, "--verify-timeout", "10")
        assert code == 0, err
        assert out.startswith(f"{host}: asleep, verified in ")
        assert "waiting up to 10 s" in err  # progress message while verifying
        assert fleet.call(lambda: fleet.state(host).sleeping) is True

        code, out, err = run_cli(capsys, "wake", host, *PORT_ARGS, "--verify-timeout", "10", "-q")
        assert code == 0, err
        assert out.startswith(f"{host}: awake, verified in ") and err == ""
        assert fleet.call(lambda: fleet.state(host).sleeping) is False


def test_wake_in_a_later_command_restores_the_mode_before_sleep(capsys, tmp_path, monkeypatch) -> None:
    import fleetd.drivers.antminer.driver as antminer

    monkeypatch.setenv("XDG_STATE_HOME", str(tmp_path))
    net = subnet()
    with running_fleet(Group(S19, 1, f"{net}1", ports=PORTS, ramp_s=0.2)) as fleet:
        host = fleet.miners[0].host
        fleet.call(lambda: setattr(fleet.state(host), "mode", "low"))
        assert run_cli(capsys, "sleep", host, *PORT_ARGS, "-q")[0] == 0
        antminer._MODE_BEFORE_SLEEP.clear()  # `fleetd wake` runs in a new process
        code, out, err = run_cli(capsys, "wake", host, *PORT_ARGS, "--verify-timeout", "10", "-q")
        mode = fleet.call(lambda: fleet.state(host).mode)
    assert code == 0, err
    assert "mode low" in out and mode == "low"
    assert (tmp_path / "fleetd" / antminer.MODES_FILE).is_file()


def test_sleep_not_complied_exits_3(capsys) -> None:
    net = subnet()
    with running_fleet(Group(S19, 1, f"{net}1", ports=PORTS, faults={"ignore_power_commands": 1.0})) as fleet:
        host = fleet.miners[0].host
        code, out, err = run_cli(capsys, "sleep", host, *PORT_ARGS, "--verify-timeout", "1", "-q")
    assert code == 3 and out == ""
    assert "did not comply" in one_line_error(err, "sleep")


def test_sleep_wrong_password_exits_1(capsys, monkeypatch) -> None:
    net = subnet()
    monkeypatch.setenv("FLEETD_MINER_PASSWORD", "not-the-password")
    with running_fleet(Group(S19, 1, f"{net}1", ports=PORTS)) as fleet:
        host = fleet.miners[0].host
        code, _, err = run_cli(capsys, "sleep", host, *PORT_ARGS, *FAST, "-q")
        asleep = fleet.call(lambda: fleet.state(host).sleeping)
    assert code == 1 and not asleep
    line = one_line_error(err, "sleep")
    assert "not-the-password" not in line


def test_sleep_without_capability_exits_4(capsys) -> None:
    net = subnet()
    with running_fleet(Group(S19, 1, f"{net}1", ports=PORTS)) as fleet:
        code, _, err = run_cli(capsys, "sleep", fleet.miners[0].host, *PORT_ARGS, "--driver", "cgminer")
    assert code == 4
    assert "cannot sleep" in one_line_error(err, "sleep")


# --- dump-device ---------------------------------------------------------------------------------


def test_dump_device_writes_a_redacted_folder_the_parser_reads(capsys, tmp_path: Path) -> None:
    net = subnet()
    with running_fleet(Group(S19, 1, f"{net}1", ports=PORTS, jitter=0.0)) as fleet:
        host = fleet.miners[0].host
        code, out, err = run_cli(capsys, "dump-device", host, *PORT_ARGS, "--out", str(tmp_path))
        code2, live, _ = run_cli(capsys, "probe", host, *PORT_ARGS, "--json")
        state = fleet.state(host)
    assert code == 0 and code2 == 0, err
    folder = Path(out.strip())
    assert folder.parent == tmp_path and folder.is_dir()
    manifest = json.loads((folder / "manifest.json").read_text())
    assert manifest["model"] == S19 and manifest["driver"] == "antminer" and manifest["firmware"]
    assert manifest["recorded_at"] and manifest["fleetd_version"] and manifest["api"]
    files = sorted(p.name for p in folder.iterdir() if p.name != "manifest.json")
    assert files == sorted(manifest["files"]) and files
    assert all(f.startswith(("rpc_", "web_")) and f.endswith(".json") for f in files)

    text = "\n".join(p.read_text() for p in folder.iterdir())
    for secret in (host, state.mac, state.mac.lower(), state.serial):
        assert secret not in text, secret

    responses = {p.name.removesuffix(".json"): json.loads(p.read_text()) for p in folder.glob("*_*.json")}
    reading = driver_class(manifest["driver"]).parse_responses(responses, host="fixture")
    expected = json.loads(live)
    assert reading.identity.model == S19 == expected["identity"]["model"]
    assert reading.identity.firmware == expected["identity"]["firmware"]
    assert len(reading.snapshot.hashboards) == len(expected["snapshot"]["hashboards"])
    assert reading.snapshot.hashrate_ths == pytest.approx(expected["snapshot"]["hashrate_ths"], rel=0.05)


def test_dump_device_unreachable_writes_nothing(capsys, tmp_path: Path) -> None:
    code, _, err = run_cli(capsys, "dump-device", "127.14.250.3", *PORT_ARGS, *FAST, "--out", str(tmp_path))
    assert code == 1
    one_line_error(err, "dump-device")
    assert list(tmp_path.iterdir()) == []


def test_dump_device_refuses_a_path_as_name(capsys, tmp_path: Path) -> None:
    code, _, err = run_cli(
        capsys, "dump-device", "127.14.250.4", "--name", "../escape", "--out", str(tmp_path)
    )
    assert code == 2
    assert "--name" in one_line_error(err, "dump-device")
