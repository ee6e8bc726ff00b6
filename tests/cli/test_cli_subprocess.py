"""The installed `fleetd` console script, run as a real subprocess against emulated miners."""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest
from simthread import running_fleet, subnet

from fleetd.sim.fleet import Group

S19 = "Antminer S19 Pro"
PORTS = {"api": 14028, "web": 18080}
PORT_ARGS = ["--api-port", "14028", "--web-port", "18080"]


def fleetd_script() -> str:
    script = Path(sys.executable).parent / "fleetd"
    found = str(script) if script.exists() else shutil.which("fleetd")
    if not found:
        pytest.fail("the fleetd console script is not installed (pip install -e .)")
    return found


def fleetd(*argv: str, env: dict[str, str] | None = None) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [fleetd_script(), *argv],
        capture_output=True,
        text=True,
        timeout=30,
        env={**os.environ, **(env or {})},
        stdin=subprocess.DEVNULL,
    )


def test_console_script_scans_probes_and_sleeps() -> None:
    net = subnet()
    with running_fleet(Group(S19, 2, f"{net}1", ports=PORTS, ramp_s=0.2)) as fleet:
        scan = fleetd("scan", f"{net}0/29", *PORT_ARGS, "--timeout", "1")
        probe = fleetd("probe", f"{net}2", *PORT_ARGS, "--json")
        sleep = fleetd("sleep", f"{net}1", *PORT_ARGS, "--verify-timeout", "10")
        asleep = fleet.call(lambda: fleet.state(f"{net}1").sleeping)
    assert scan.returncode == 0, scan.stderr
    assert scan.stdout.splitlines()[-1].startswith("found 2 miners in 6 addresses")
    assert "[" not in scan.stderr  # no progress bar when stderr is not a terminal
    assert probe.returncode == 0, probe.stderr
    assert json.loads(probe.stdout)["identity"]["model"] == S19
    assert sleep.returncode == 0 and asleep, sleep.stderr


@pytest.mark.parametrize(
    ("argv", "code", "words"),
    [
        (["probe", "127.14.251.1", "--timeout", "0.5"], 1, "127.14.251.1"),
        (["scan", "10.0.0.1-10.0.0.x"], 2, "not an IP address"),
        (["sleep", "127.14.251.2", "--driver", "bogus"], 2, "unknown driver"),
        (["dump-device", "not_a_host!"], 2, "bad target"),
    ],
)
def test_console_script_bad_input_is_one_line_without_traceback(
    argv: list[str], code: int, words: str
) -> None:
    proc = fleetd(*argv)
    assert proc.returncode == code, proc.stderr
    assert proc.stdout == ""
    lines = proc.stderr.strip().splitlines()
    assert len(lines) == 1 and words in lines[0] and "Traceback" not in proc.stderr


def test_console_script_never_echoes_the_password() -> None:
    net = subnet()
    with running_fleet(Group(S19, 1, f"{net}1", ports=PORTS)):
        proc = fleetd(
            "sleep", f"{net}1", *PORT_ARGS, "--timeout", "1", env={"FLEETD_MINER_PASSWORD": "hunter2xyz"}
        )
    assert proc.returncode == 1
    assert "hunter2xyz" not in proc.stdout + proc.stderr
