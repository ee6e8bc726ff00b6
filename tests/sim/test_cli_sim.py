"""`fleetd sim`: argument parsing into fleet groups, errors, and a real run stopped by SIGTERM."""

from __future__ import annotations

import json
import os
import shutil
import signal
import socket
import subprocess
import sys
import time

import pytest

from fleetd.cli import CLIError, build_parser
from fleetd.cli import main as cli_main
from fleetd.cli.sim import build_groups
from tests.conftest import loopback_host
from tests.sim.helpers import BLOCK


def _groups(*argv: str):
    return build_groups(build_parser().parse_args(["sim", *argv]))


def test_several_groups_follow_each_other():
    groups = _groups(
        "--model", "Antminer S19 Pro", "--count", "3", "--base", "127.11.240.1",
        "--model", "antminer s21", "--count", "2",
        "--fault", "dead=0.5", "--fault", "slow", "--web-port", "8080", "--ramp-s", "2", "--quirks",
    )  # fmt: skip
    assert [(g.model, g.count, g.base) for g in groups] == [
        ("Antminer S19 Pro", 3, "127.11.240.1"),
        ("Antminer S21", 2, "127.11.240.4"),
    ]
    g = groups[1]
    assert g.ports == {"api": 4028, "web": 8080}
    assert g.faults == {"dead": 0.5, "slow": 1.0}
    assert g.ramp_s == 2.0
    assert "no_nul" in g.quirks and "brace" in g.quirks


def test_defaults_and_quirk_list():
    (g,) = _groups("--model", "Antminer S21", "--quirks", "inf,no_nul")
    assert (g.count, g.base, g.ports) == (1, "127.1.0.1", {"api": 4028, "web": 80})
    assert g.quirks == {"inf", "no_nul"}


@pytest.mark.parametrize(
    ("argv", "message"),
    [
        ([], "give at least one --model"),
        (["--model", "Antminer S9000"], "unknown model 'Antminer S9000'"),
        (["--model", "S21", "--model", "S21", "--count", "1", "--count", "2", "--count", "3"],
         "2 --model but 3 --count"),
        (["--model", "Antminer S21", "--base", "10.0.0.1"], "not a loopback address"),
        (["--model", "Antminer S21", "--quirks", "sparkles"], "unknown quirk 'sparkles'"),
        (["--model", "Antminer S21", "--count", "2", "--base", "127.11.240.1",
          "--model", "Antminer S21", "--base", "127.11.240.2"], "is in two groups"),
    ],
)  # fmt: skip
def test_bad_input_is_a_one_line_error(argv, message):
    with pytest.raises(CLIError, match=message):
        _groups(*argv)


@pytest.mark.parametrize(
    ("argv", "message"),
    [
        (["--fault", "hot=1"], "unknown fault 'hot'"),
        (["--fault", "dead=2"], "must be within 0..1"),
        (["--count", "0"], "must be at least 1"),
        (["--web-port", "70000"], "must be within 1..65535"),
    ],
)
def test_bad_options_exit_2(argv, message, capsys):
    with pytest.raises(SystemExit) as exc:
        cli_main(["sim", "--model", "Antminer S21", *argv])
    assert exc.value.code == 2
    assert message in capsys.readouterr().err


def test_permission_denied_hint(capsys, monkeypatch):
    import errno

    import fleetd.cli.sim as sim_cli
    from fleetd.sim.fleet import BindError

    async def refuse(*_args):
        raise BindError("127.1.0.1", 80, OSError(errno.EACCES, "Permission denied"))

    monkeypatch.setattr(sim_cli, "_serve", refuse)
    assert cli_main(["sim", "--model", "Antminer S21"]) == 2
    err = capsys.readouterr().err.strip()
    assert err.count("\n") == 0
    assert err.startswith("fleetd sim: cannot listen on 127.1.0.1:80: Permission denied")
    assert err.endswith("run with --web-port 8080")


def test_list_models(capsys):
    assert cli_main(["sim", "--list-models"]) == 0
    assert "Antminer S19 Pro\t110 TH/s\t3250 W" in capsys.readouterr().out


def test_runs_until_sigterm_and_exits_cleanly():
    base = loopback_host(BLOCK)
    loopback_host(BLOCK)
    env = {**os.environ, "PYTHONUNBUFFERED": "1"}
    proc = subprocess.Popen(
        [sys.executable, "-m", "fleetd", "sim", "--model", "Antminer S19 Pro", "--count", "2",
         "--base", base, "--web-port", "8090"],
        stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, env=env,
    )  # fmt: skip
    try:
        line = proc.stdout.readline()  # type: ignore[union-attr]
        assert line.startswith(f"Antminer S19 Pro x2: {base}-")
        assert "(api 4028 web 8090)" in line
        assert "serving 2 emulated miners" in proc.stdout.readline()  # type: ignore[union-attr]
        with socket.create_connection((base, 4028), timeout=2) as s:
            s.sendall(b'{"command":"version"}')
            data = b""
            while chunk := s.recv(4096):
                data += chunk
        assert json.loads(data[:-1])["VERSION"][0]["Type"] == "Antminer S19 Pro"
        time.sleep(0.1)
        proc.send_signal(signal.SIGTERM)
        out, err = proc.communicate(timeout=10)
    finally:
        if proc.poll() is None:
            proc.kill()
    assert proc.returncode == 0, err
    assert out.strip() == "stopped" and err == ""


@pytest.mark.skipif(os.geteuid() != 0 or not shutil.which("setpriv"), reason="needs root and setpriv")
def test_unprivileged_user_gets_a_one_line_hint_for_port_80():
    base = loopback_host(BLOCK)
    cmd = ["setpriv", "--reuid", "65534", "--regid", "65534", "--clear-groups",
           sys.executable, "-m", "fleetd", "sim", "--model", "Antminer S19 Pro", "--base", base]  # fmt: skip
    proc = subprocess.run(cmd, capture_output=True, text=True, timeout=30, cwd="/tmp")
    if "No module named" in proc.stderr:
        pytest.skip("the unprivileged user cannot import fleetd here")
    assert proc.returncode == 2
    assert proc.stderr == (
        f"fleetd sim: cannot listen on {base}:80: Permission denied (ports below 1024 need root); "
        "run with --web-port 8080\n"
    )
