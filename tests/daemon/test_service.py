"""Service behaviour: systemd notify over a real datagram socket, watchdog, SIGHUP reload, SIGTERM, logs."""

from __future__ import annotations

import asyncio
import logging
import os
import signal
import socket
import subprocess
import sys
import time
import uuid
from collections.abc import Iterator
from pathlib import Path

import pytest

from fleetd.config import parse_config
from fleetd.daemon.core import Daemon
from fleetd.daemon.events import EventKind
from fleetd.daemon.service import Notifier, OneLineFormatter, Service, watchdog_interval
from fleetd.sim.fleet import Fleet, Group

from .conftest import subnet, until

ROOT = Path(__file__).resolve().parents[2]


class NotifyListener:
    """Plays systemd: a datagram socket collecting sd_notify messages."""

    def __init__(self, path: str) -> None:
        self.sock = socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM)
        self.sock.bind("\0" + path[1:] if path.startswith("@") else path)
        self.sock.setblocking(False)
        self.path = path
        self.messages: list[dict[str, str]] = []

    def drain(self) -> list[dict[str, str]]:
        while True:
            try:
                data = self.sock.recv(4096)
            except BlockingIOError:
                return self.messages
            self.messages.append(dict(line.split("=", 1) for line in data.decode().splitlines()))

    def has(self, key: str, value: str | None = None) -> bool:
        return any(key in m and (value is None or m[key] == value) for m in self.drain())

    def count(self, key: str) -> int:
        return sum(1 for m in self.drain() if key in m)


@pytest.fixture(params=["path", "abstract"])
def listener(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[NotifyListener]:
    path = str(tmp_path / "notify.sock") if request.param == "path" else f"@fleetd-test-{uuid.uuid4().hex}"
    lst = NotifyListener(path)
    yield lst
    lst.sock.close()


def test_notifier_sends_datagrams(listener: NotifyListener) -> None:
    n = Notifier(listener.path)
    assert n.enabled
    assert n.ready("0 up, 0 down")
    assert n.watchdog() and n.status("hello\nworld")
    msgs = listener.drain()
    assert msgs[0] == {"READY": "1", "STATUS": "0 up, 0 down", "MAINPID": str(os.getpid())}
    assert msgs[1] == {"WATCHDOG": "1"} and msgs[2] == {"STATUS": "hello world"}
    n.close()


def test_notifier_without_systemd_is_a_no_op(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("NOTIFY_SOCKET", raising=False)
    n = Notifier()
    assert not n.enabled and not n.ready("x")


def test_watchdog_interval(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("WATCHDOG_USEC", "30000000")
    monkeypatch.delenv("WATCHDOG_PID", raising=False)
    assert watchdog_interval() == 15.0
    monkeypatch.setenv("WATCHDOG_PID", "1")  # meant for another process
    assert watchdog_interval() is None
    monkeypatch.setenv("WATCHDOG_PID", str(os.getpid()))
    assert watchdog_interval() == 15.0
    monkeypatch.delenv("WATCHDOG_USEC")
    assert watchdog_interval() is None


async def test_ready_status_and_watchdog_only_while_progressing(
    listener: NotifyListener, monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    monkeypatch.setenv("WATCHDOG_USEC", "200000")  # ping every 0.1 s
    monkeypatch.delenv("WATCHDOG_PID", raising=False)
    cfg = parse_config({"polling": {"interval_s": 0.2, "jitter_s": 0, "timeout_s": 0.2}})
    d = Daemon(cfg, state_dir=tmp_path, storage=False)
    svc = Service(d, notifier=Notifier(listener.path), status_every_s=0.05)
    task = asyncio.create_task(svc.run())
    try:
        await until(lambda: listener.has("READY", "1"), what="READY=1")
        ready = next(m for m in listener.messages if "READY" in m)
        assert "0 up, 0 down of 0 miners" in ready["STATUS"]
        await until(lambda: listener.count("WATCHDOG") >= 3, what="watchdog pings")
        # Poll cycles stop making progress: the pings stop, so systemd would restart us.
        d.poller.last_progress_at = time.time() - 3600
        d._stop.set()
        await asyncio.sleep(0.3)
        before = listener.count("WATCHDOG")
        await asyncio.sleep(0.4)
        assert listener.count("WATCHDOG") == before
    finally:
        svc.request_stop()
        await asyncio.wait_for(task, 10)
    assert listener.has("STOPPING", "1")


async def test_sighup_reloads_and_bad_config_keeps_running(
    listener: NotifyListener, tmp_path: Path, ports: dict[str, int]
) -> None:
    net = subnet()
    async with Fleet([Group("Antminer S19 Pro", 2, net + "1", ports, ramp_s=0, jitter=0)]) as miners:
        a, b = (m.host for m in miners)
        path = tmp_path / "fleetd.toml"
        head = '[polling]\ninterval_s = 0.3\njitter_s = 0\ntimeout_s = 1\n[api]\nlisten = "127.0.0.1:8787"\n'
        entry = '[[miners]]\nhost = "{}"\nweb_port = {}\n'
        path.write_text(head + entry.format(a, ports["web"]))
        from fleetd.config import load_config

        d = Daemon(load_config(path), state_dir=tmp_path)
        svc = Service(d, config_path=path, notifier=Notifier(listener.path))
        task = asyncio.create_task(svc.run())
        try:
            await until(lambda: d.state.up() == 1, what="first miner up")
            path.write_text(head + entry.format(a, ports["web"]) + entry.format(b, ports["web"]))
            os.kill(os.getpid(), signal.SIGHUP)
            await until(lambda: svc.reloads == 1, what="reload")
            await until(lambda: d.state.up() == 2, what="second miner up")
            assert listener.has("RELOADING", "1")

            path.write_text(head + '[[miners]]\nhost = "not a host!"\n')
            os.kill(os.getpid(), signal.SIGHUP)
            await until(lambda: any(e.kind is EventKind.CONFIG_REJECTED for e in d.events), what="rejection")
            rejected = next(e for e in d.events if e.kind is EventKind.CONFIG_REJECTED)
            assert "miners[0].host: not an IP address or hostname" in rejected.message
            assert svc.reloads == 1 and set(d.state.miners) == {a, b} and not task.done()

            os.kill(os.getpid(), signal.SIGTERM)  # graceful stop: polls finish, data flushed
            await asyncio.wait_for(task, 15)
        finally:
            if not task.done():
                svc.request_stop()
                await task
    d2 = Daemon(parse_config({}), state_dir=tmp_path)
    await d2.start()
    try:
        assert d2.storage is not None
        kinds = [e["kind"] for e in d2.storage.events(limit=200)]
        assert "config_reloaded" in kinds and "config_rejected" in kinds and "stopped" in kinds
        assert {r["miner_id"] for r in d2.storage.latest()} == {a, b}
    finally:
        await d2.stop()


def test_log_lines_for_a_terminal_and_for_journald() -> None:
    rec = logging.LogRecord("fleetd.poller", logging.WARNING, __file__, 1, "miner %s\ndown", ("x",), None)
    plain = OneLineFormatter(journal=False).format(rec)
    assert plain.endswith("WARNING fleetd.poller: miner x | down") and "\n" not in plain
    assert OneLineFormatter(journal=True).format(rec) == "<4>fleetd.poller: miner x | down"
    try:
        raise ValueError("bad\nthing")
    except ValueError:
        err = logging.LogRecord("fleetd", logging.ERROR, __file__, 1, "oops", (), sys.exc_info())
    line = OneLineFormatter(journal=True).format(err)
    assert line.startswith("<3>fleetd: oops (ValueError: bad | thing at test_service.py:")
    assert "\n" not in line


def test_fleetd_run_under_systemd(tmp_path: Path, listener: NotifyListener) -> None:
    """The real command: READY=1 over $NOTIFY_SOCKET, journald priorities, SIGTERM exits 0."""
    config = tmp_path / "fleetd.toml"
    config.write_text('[api]\nlisten = "127.13.250.1:18787"\n[polling]\ninterval_s = 0.5\n')
    err_path = tmp_path / "stderr"
    with err_path.open("w") as err:
        st = os.fstat(err.fileno())
        env = dict(os.environ, NOTIFY_SOCKET=listener.path, JOURNAL_STREAM=f"{st.st_dev}:{st.st_ino}")
        env.pop("WATCHDOG_USEC", None)
        state = str(tmp_path / "s")
        cmd = [sys.executable, "-m", "fleetd", "run", "--config", str(config), "--state-dir", state]
        proc = subprocess.Popen(cmd, stdout=subprocess.DEVNULL, stderr=err, env=env, cwd=tmp_path)
        try:
            deadline = time.monotonic() + 30
            while not listener.has("READY", "1"):
                assert proc.poll() is None, err_path.read_text()
                assert time.monotonic() < deadline, "no READY=1"
                time.sleep(0.05)
            proc.send_signal(signal.SIGTERM)
            assert proc.wait(30) == 0
        finally:
            if proc.poll() is None:
                proc.kill()
                proc.wait()
    lines = err_path.read_text().splitlines()
    assert lines and all(line.startswith("<") for line in lines), lines
    assert any(line.startswith("<6>fleetd.run: HTTP API on http://127.13.250.1:18787") for line in lines)
    assert (tmp_path / "s" / "fleetd.db").exists()


def test_fleetd_run_bad_config_is_one_line(tmp_path: Path) -> None:
    config = tmp_path / "fleetd.toml"
    config.write_text('[[miners]]\nhost = "10.0.0.1"\nport = 4028\n')
    cmd = [sys.executable, "-m", "fleetd", "run", "--config", str(config)]
    res = subprocess.run(cmd, capture_output=True, text=True, timeout=60)
    assert res.returncode == 2
    err = res.stderr.strip()
    assert err.startswith(f"fleetd run: {config}: miners[0].port: unknown key; did you mean")
    assert "\n" not in err


def test_fleetd_run_without_any_config(tmp_path: Path, listener: NotifyListener) -> None:
    """No config file, no miners: starts, keeps its database in ./.state, stops cleanly."""
    if Path("/etc/fleetd/fleetd.toml").exists():
        pytest.skip("/etc/fleetd/fleetd.toml exists on this machine")
    env = dict(os.environ, NOTIFY_SOCKET=listener.path)
    for var in ("STATE_DIRECTORY", "WATCHDOG_USEC", "JOURNAL_STREAM"):
        env.pop(var, None)
    cmd = [sys.executable, "-m", "fleetd", "run", "--listen", "127.13.250.2:18787"]
    proc = subprocess.Popen(
        cmd, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, env=env, cwd=tmp_path, text=True
    )
    try:
        deadline = time.monotonic() + 30
        while not listener.has("READY", "1"):
            assert proc.poll() is None and time.monotonic() < deadline, "fleetd run did not become ready"
            time.sleep(0.05)
        proc.send_signal(signal.SIGINT)
        _out, err = proc.communicate(timeout=30)
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait()
    assert proc.returncode == 0, err
    assert (tmp_path / ".state" / "fleetd.db").exists()
    assert "no configuration file" in err and "http://127.13.250.2:18787" in err
