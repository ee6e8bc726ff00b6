"""Every one-miner command, given each kind of bad input, says one line and exits non-zero."""

from __future__ import annotations

import socket
from collections.abc import Iterator
from pathlib import Path

import pytest
from simthread import RunningFleet, running_fleet, subnet

from fleetd.cli import main
from fleetd.sim.fleet import Group

S19 = "Antminer S19 Pro"
PORTS = {"api": 14028, "web": 18080}
PORT_ARGS = ["--api-port", "14028", "--web-port", "18080", "--timeout", "1"]
COMMANDS = {
    "probe": [],
    "sleep": ["--verify-timeout", "1", "-q"],
    "wake": ["--verify-timeout", "1", "-q"],
    "dump-device": ["--out"],  # + a tmp dir
}


@pytest.fixture(scope="module")
def fleet() -> Iterator[tuple[str, RunningFleet]]:
    """.1 wrong password, .2 garbage replies; .9 has nothing listening."""
    net = subnet()
    groups = (
        Group(S19, 1, f"{net}1", ports=PORTS, faults={"wrong_password": 1.0}),
        Group(S19, 1, f"{net}2", ports=PORTS, faults={"malformed": 1.0}),
    )
    with running_fleet(*groups) as running:
        yield net, running


def _run(capsys: pytest.CaptureFixture[str], command: str, host: str, tmp: Path) -> tuple[int, str, str]:
    extra = [*COMMANDS[command], str(tmp)] if command == "dump-device" else COMMANDS[command]
    code = main([command, host, *PORT_ARGS, *extra])
    out, err = capsys.readouterr()
    return code, out, err


def _one_line(err: str, command: str) -> str:
    lines = err.strip().splitlines()
    assert len(lines) == 1, err
    assert lines[0].startswith(f"fleetd {command}: ") and "Traceback" not in err
    return lines[0]


# (host suffix or literal host, the commands it applies to, exit code, words in the message)
CASES = [
    ("9", list(COMMANDS), 1, "Connection refused"),  # unreachable
    ("2", list(COMMANDS), 1, "undecodable reply"),  # garbage
    # Reading needs no password, so probe succeeds; everything touching the web interface fails.
    ("1", ["sleep", "wake", "dump-device"], 1, "authentication failed"),
    ("no-such-miner.invalid", list(COMMANDS), 1, "cannot resolve the host name"),
    ("10.0.0.0/24", list(COMMANDS), 2, "expected one host"),  # bad target
    ("10.0.0.1:0", list(COMMANDS), 2, "port must be 1-65535"),
]


@pytest.mark.parametrize(
    ("suffix", "command", "code", "words"),
    [(s, c, code, w) for s, cmds, code, w in CASES for c in cmds],
)
def test_bad_input_is_one_line_and_non_zero(
    capsys: pytest.CaptureFixture[str],
    fleet: tuple[str, RunningFleet],
    tmp_path: Path,
    suffix: str,
    command: str,
    code: int,
    words: str,
) -> None:
    net, _ = fleet
    host = f"{net}{suffix}" if suffix.isdigit() else suffix
    got, out, err = _run(capsys, command, host, tmp_path)
    assert got == code, err
    assert out == ""
    assert words in _one_line(err, command)
    assert not list(tmp_path.iterdir())  # dump-device wrote nothing


def test_probe_reads_without_the_web_password(capsys, fleet, tmp_path: Path) -> None:
    net, _ = fleet
    code, out, err = _run(capsys, "probe", f"{net}1", tmp_path)
    assert code == 0, err
    assert "mining" in out


def test_sim_port_in_use_is_one_line(capsys) -> None:
    host = "127.17.250.1"  # this suite's own block; the port is whatever free one the kernel gives
    with socket.socket() as taken:
        taken.bind((host, 0))
        taken.listen(1)
        port = str(taken.getsockname()[1])
        code = main(["sim", "--model", S19, "--base", host, "--api-port", port, "--web-port", "18080"])
    err = capsys.readouterr().err
    assert code == 2
    assert f"cannot listen on {host}:{port}: Address already in use" in _one_line(err, "sim")


@pytest.mark.parametrize(
    ("argv", "words"),
    [
        (["--model", "Antminer S9000"], "unknown model 'Antminer S9000'"),
        (["--model", S19, "--base", "127.17.0.x"], "--base '127.17.0.x' is not an IPv4 address"),
        (["--model", S19, "--base", "127.255.255.255", "--count", "2"], "run past the loopback block"),
    ],
)
def test_sim_bad_input_is_one_line(capsys, argv: list[str], words: str) -> None:
    assert main(["sim", *argv]) == 2
    assert words in _one_line(capsys.readouterr().err, "sim")


@pytest.mark.parametrize(
    ("argv", "words"),
    [
        (["scan"], "the following arguments are required: TARGET"),
        (["scan", "127.17.0.1", "--concurrency", "0"], "'0' must be at least 1"),
        (["probe", "127.17.0.1", "--timeout", "soon"], "not a number of seconds: 'soon'"),
        (["sleep", "127.17.0.1", "--api-port", "70000"], "port '70000' must be within 1..65535"),
        (["dump-device"], "the following arguments are required: HOST"),
        (["sim", "--model", S19, "--jitter", "2"], "fraction '2' must be within 0..1"),
    ],
)
def test_usage_errors_are_one_line(capsys, argv: list[str], words: str) -> None:
    with pytest.raises(SystemExit) as exc:
        main(argv)
    assert exc.value.code == 2
    line = _one_line(capsys.readouterr().err, argv[0])
    assert words in line and line.endswith(f"(see fleetd {argv[0]} --help)")
