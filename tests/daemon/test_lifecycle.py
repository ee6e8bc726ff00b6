"""`fleetd run` as a process: SIGTERM with polls in flight, kill -9 and restart, the minimal file."""

from __future__ import annotations

import asyncio
import os
import signal
import socket
import sqlite3
import sys
import time
from pathlib import Path

import pytest

from fleetd.sim.fleet import Fleet, Group, ProcessFleet
from tests.conftest import web_port

ROOT = Path(__file__).resolve().parents[2]


async def _fleetd(*args: str, cwd: Path) -> asyncio.subprocess.Process:
    env = os.environ | {"PYTHONUNBUFFERED": "1"}
    env.pop("NOTIFY_SOCKET", None)
    return await asyncio.create_subprocess_exec(
        sys.executable, "-m", "fleetd", "run", *args, cwd=cwd, env=env,
        stdout=asyncio.subprocess.PIPE, stderr=asyncio.subprocess.STDOUT,
    )  # fmt: skip


async def _wait_line(proc: asyncio.subprocess.Process, text: str, within: float, seen: list[str]) -> None:
    assert proc.stdout is not None
    deadline = time.monotonic() + within
    while time.monotonic() < deadline:
        try:
            raw = await asyncio.wait_for(proc.stdout.readline(), max(0.05, deadline - time.monotonic()))
        except TimeoutError:
            break
        if not raw:
            break
        seen.append(raw.decode(errors="replace").rstrip())
        if text in seen[-1]:
            return
    raise AssertionError(f"no {text!r} in the output:\n" + "\n".join(seen[-30:]))


def _query(db: Path, sql: str) -> list[tuple]:
    with sqlite3.connect(f"file:{db}?mode=ro", uri=True, timeout=10) as conn:
        return conn.execute(sql).fetchall()


def _config(path: Path, hosts: list[str], port: int, **polling: float) -> Path:
    lines = ["[polling]", *(f"{k} = {v}" for k, v in polling.items()), ""]
    for h in hosts:
        lines += ["[[miners]]", f'host = "{h}"', f"web_port = {port}", ""]
    path.write_text("\n".join(lines))
    return path


async def test_sigterm_with_1000_polls_in_flight_exits_in_time_and_flushes(tmp_path: Path) -> None:
    port = web_port()
    groups = [
        Group(
            "Antminer S19 Pro", 800, "127.22.100.1", {"web": port}, faults={"slow": 1.0}, slow_s=0.3, ramp_s=0
        ),
        Group("Antminer S21", 200, "127.22.104.1", {"web": port}, faults={"slow": 1.0}, slow_s=60, ramp_s=0),
    ]
    timeout_s = 4.0
    async with ProcessFleet(groups, processes=2) as miners:
        cfg = _config(tmp_path / "fleetd.toml", [m.host for m in miners], port, interval_s=60, jitter_s=0,
                      timeout_s=timeout_s, connect_timeout_s=2, concurrency=1000)  # fmt: skip
        proc = await _fleetd("--config", str(cfg), "--state-dir", str(tmp_path), "--no-api", cwd=tmp_path)
        seen: list[str] = []
        try:
            await _wait_line(proc, "fleetd ready: 0 up, 0 down of 1000 miners", 30, seen)
            await asyncio.sleep(1.0)  # the first cycle: 1,000 polls in flight, 200 of them never answer
            sent = time.monotonic()
            proc.send_signal(signal.SIGTERM)
            rc = await asyncio.wait_for(proc.wait(), timeout_s + 10)
            took = time.monotonic() - sent
        finally:
            if proc.returncode is None:
                proc.kill()
                await proc.wait()
    assert proc.stdout is not None
    seen += (await proc.stdout.read()).decode(errors="replace").splitlines()
    assert rc == 0, "\n".join(seen[-30:])
    assert took < timeout_s + 3.0, f"stopped in {took:.1f} s"
    assert not [line for line in seen if "Traceback" in line]
    db = tmp_path / "fleetd.db"
    assert _query(db, "SELECT count(*) FROM miners") == [(1000,)]
    health = dict(_query(db, "SELECT health, count(*) FROM latest_state GROUP BY health"))
    assert health.get("up", 0) >= 700, health  # the polls in flight finished and were written
    assert sum(health.values()) == 1000
    assert _query(db, "SELECT count(*) FROM identity_history") == [(health["up"],)]
    kinds = [k for (k,) in _query(db, "SELECT kind FROM events ORDER BY id")]
    assert kinds[0] == "started" and kinds[-1] == "stopped"


async def test_kill_9_then_restart_keeps_inventory_and_history(tmp_path: Path) -> None:
    port = web_port()
    hosts = ["127.22.110.1", "127.22.110.2", "127.22.110.3"]
    db = tmp_path / "fleetd.db"
    async with Fleet([Group("Antminer S19 Pro", 3, hosts[0], {"web": port}, ramp_s=0, jitter=0)]):
        cfg = _config(tmp_path / "fleetd.toml", hosts, port, interval_s=0.3, jitter_s=0, timeout_s=1)
        args = ("--config", str(cfg), "--state-dir", str(tmp_path), "--no-api")
        proc = await _fleetd(*args, cwd=tmp_path)
        seen: list[str] = []
        try:
            await _wait_line(proc, "fleetd ready:", 20, seen)
            deadline = time.monotonic() + 20
            while time.monotonic() < deadline:  # identities are written as soon as the miners answer
                if db.exists() and _query(db, "SELECT count(*) FROM identity_history") == [(3,)]:
                    break
                await asyncio.sleep(0.1)
            await asyncio.sleep(0.5)  # a few more cycles of writes in progress
            proc.kill()  # SIGKILL: no flush, no goodbye
            await proc.wait()
        finally:
            if proc.returncode is None:
                proc.kill()
                await proc.wait()
        before_events = _query(db, "SELECT id, kind, message FROM events ORDER BY id")
        assert _query(db, "SELECT count(*) FROM identity_history") == [(3,)]
        assert ("started",) in [(k,) for _, k, _ in before_events]

        proc = await _fleetd(*args, cwd=tmp_path)
        try:
            await _wait_line(proc, "fleetd ready:", 20, seen)
            await asyncio.sleep(1.0)
            proc.send_signal(signal.SIGTERM)
            assert await asyncio.wait_for(proc.wait(), 15) == 0
        finally:
            if proc.returncode is None:
                proc.kill()
                await proc.wait()
    miners = _query(db, "SELECT id, model FROM miners ORDER BY id")
    assert miners == [(h, "Antminer S19 Pro") for h in hosts]
    assert _query(db, "SELECT count(*) FROM identity_history") == [(3,)]  # same machines: nothing new
    after = _query(db, "SELECT id, kind, message FROM events ORDER BY id")
    assert after[: len(before_events)] == before_events  # history intact
    assert [k for _, k, _ in after].count("started") == 2 and after[-1][1] == "stopped"
    assert dict(_query(db, "SELECT health, count(*) FROM latest_state GROUP BY health")) == {"up": 3}
    assert _query(db, "PRAGMA integrity_check") == [("ok",)]


def _free(host: str, port: int) -> bool:
    with socket.socket() as s:
        s.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)  # as the API server does
        try:
            s.bind((host, port))
        except OSError:
            return False
    return True


async def test_the_issues_minimal_file_runs_unchanged(tmp_path: Path) -> None:
    minimal = '[api]\nlisten = "127.0.0.1:8787"\n\n[[miners]]\nhost = "127.1.0.1"\n\n'
    minimal += '[[discovery]]\ntargets = ["127.1.0.0/24"]\n'
    if not _free("127.0.0.1", 8787):
        pytest.skip("127.0.0.1:8787 is in use by another process")
    (tmp_path / "fleetd.toml").write_text(minimal)
    proc = await _fleetd("--config", "fleetd.toml", cwd=tmp_path)  # state in ./.state, API on 8787
    seen: list[str] = []
    try:
        await _wait_line(proc, "HTTP API on", 20, seen)
        await _wait_line(proc, "discovery of 127.1.0.0/24", 30, seen)
        reader, writer = await asyncio.open_connection("127.0.0.1", 8787)
        writer.write(b"GET /healthz HTTP/1.0\r\nHost: x\r\n\r\n")
        reply = await asyncio.wait_for(reader.read(), 5)
        writer.close()
        assert reply.startswith(b"HTTP/1.") and b" 200 " in reply.split(b"\r\n")[0] + b" "
        proc.send_signal(signal.SIGTERM)
        assert await asyncio.wait_for(proc.wait(), 15) == 0
    finally:
        if proc.returncode is None:
            proc.kill()
            await proc.wait()
    assert (tmp_path / ".state" / "fleetd.db").exists()
    assert not [line for line in seen if "Traceback" in line or "ERROR" in line]


def test_check_config_passes_on_the_example_with_its_secrets_available(tmp_path: Path) -> None:
    import subprocess

    example = str(ROOT / "config" / "fleetd.example.toml")
    secrets = {"FLEETD_MINER_PASSWORD": "s3cret", "ANTMINER_PASSWORD": "a", "WHATSMINER_PASSWORD": "w",
               "LUXOR_API_KEY": "k"}  # fmt: skip
    env = os.environ | secrets
    ok = subprocess.run([sys.executable, "-m", "fleetd", "check-config", example], capture_output=True,
                        text=True, timeout=60, env=env)  # fmt: skip
    assert ok.returncode == 0 and "OK" in ok.stdout, ok.stderr
    bare = {k: v for k, v in env.items() if k not in secrets}
    res = subprocess.run([sys.executable, "-m", "fleetd", "check-config", example], capture_output=True,
                         text=True, timeout=60, env=bare)  # fmt: skip
    assert res.returncode == 2 and "Traceback" not in res.stderr  # names each unreadable secret
    assert "FLEETD_MINER_PASSWORD is not set" in res.stderr and "LUXOR_API_KEY is unset" in res.stderr
    assert "credentials.default.antminer.password: environment variable ANTMINER_PASSWORD" in res.stderr
    assert "credentials.default.whatsminer.password: environment variable WHATSMINER_PASSWORD" in res.stderr
