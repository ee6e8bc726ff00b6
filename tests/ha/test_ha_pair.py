"""Two real `fleetd run` processes on the real PostgreSQL: one polls, the other takes over when it goes.

Every connection the emulated miners accept is attributed to the daemon process that opened it (its
socket, duplicated out of the process with pidfd_getfd, has the connection's client address), so the test
sees exactly which daemon polled which miner when.
"""

from __future__ import annotations

import asyncio
import ctypes
import os
import signal
import socket
import sys
import time
from pathlib import Path
from typing import Any

import aiohttp
import psycopg
import pytest

from fleetd.config import HaConfig
from fleetd.sim.fleet import Fleet, Group
from fleetd.sim.server import Connection
from tests.conftest import loopback_host, web_port

from .conftest import CONNINFO, terminate_lock_sessions

pytestmark = pytest.mark.postgres

HEARTBEAT_S, TAKEOVER_S = 0.5, 3.0
API_PORT = 18787
_SYS_PIDFD_GETFD = 438


class Attribution:
    """Which process opened each connection the emulators accept: (monotonic time, owner, miner)."""

    def __init__(self) -> None:
        self.pids: dict[str, int] = {}
        self.records: list[tuple[float, str | None, str]] = []
        self._libc = ctypes.CDLL(None, use_errno=True)

    def owner(self, peer: Any) -> str | None:
        for name, pid in list(self.pids.items()):
            try:
                fds = os.listdir(f"/proc/{pid}/fd")
                pidfd = os.pidfd_open(pid)
            except OSError:  # exited
                continue
            try:
                for fd in fds:
                    try:
                        if not os.readlink(f"/proc/{pid}/fd/{fd}").startswith("socket:"):
                            continue
                    except OSError:
                        continue
                    dup = self._libc.syscall(_SYS_PIDFD_GETFD, pidfd, int(fd), 0)
                    if dup < 0:
                        err = ctypes.get_errno()
                        if err == 1:  # EPERM: the test cannot look into its own children
                            raise PermissionError("pidfd_getfd refused: cannot attribute connections")
                        continue
                    s = socket.socket(fileno=dup)
                    try:
                        if s.getsockname() == peer:
                            return name
                    except OSError:
                        pass
                    finally:
                        s.close()
            finally:
                os.close(pidfd)
        return None

    def seen(self, transport: asyncio.BaseTransport) -> None:
        peer = transport.get_extra_info("peername")
        miner = transport.get_extra_info("sockname")[0]
        self.records.append((time.monotonic(), self.owner(tuple(peer)), miner))

    def blocks(self) -> list[tuple[str | None, float, float]]:
        """The records as runs of one owner: (owner, first, last)."""
        runs: list[tuple[str | None, float, float]] = []
        for t, owner, _ in sorted(self.records):
            if owner is None:
                continue
            if runs and runs[-1][0] == owner:
                runs[-1] = (owner, runs[-1][1], t)
            else:
                runs.append((owner, t, t))
        return runs


class Instance:
    """One `fleetd run` process with its output collected."""

    def __init__(self, name: str, cfg: Path, state_dir: Path, api: str) -> None:
        self.name, self.cfg, self.state_dir, self.api = name, cfg, state_dir, api
        self.proc: asyncio.subprocess.Process | None = None
        self.lines: list[str] = []
        self._reader: asyncio.Task[None] | None = None

    async def start(self) -> int:
        env = os.environ | {"PYTHONUNBUFFERED": "1"}
        env.pop("NOTIFY_SOCKET", None)
        self.proc = await asyncio.create_subprocess_exec(
            sys.executable, "-m", "fleetd", "run", "--config", str(self.cfg),
            "--state-dir", str(self.state_dir), "--listen", f"{self.api}:{API_PORT}", env=env,
            stdout=asyncio.subprocess.PIPE, stderr=asyncio.subprocess.STDOUT,
        )  # fmt: skip
        self._reader = asyncio.create_task(self._read())
        return self.proc.pid

    async def _read(self) -> None:
        assert self.proc is not None and self.proc.stdout is not None
        while raw := await self.proc.stdout.readline():
            self.lines.append(raw.decode(errors="replace").rstrip())

    async def health(self) -> dict[str, Any] | None:
        try:
            async with (
                aiohttp.ClientSession(timeout=aiohttp.ClientTimeout(total=2)) as s,
                s.get(f"http://{self.api}:{API_PORT}/healthz") as r,
            ):
                return await r.json()
        except (aiohttp.ClientError, TimeoutError):
            return None

    async def metrics(self) -> str:
        async with aiohttp.ClientSession() as s, s.get(f"http://{self.api}:{API_PORT}/metrics") as r:
            return await r.text()

    async def until(self, cond: Any, within: float, what: str) -> float:
        """Seconds until /healthz satisfies `cond`."""
        t0 = time.monotonic()
        while True:
            body = await self.health()
            if body is not None and cond(body):
                return time.monotonic() - t0
            if time.monotonic() - t0 > within:
                raise AssertionError(
                    f"{self.name}: no {what} within {within} s; last /healthz: {body}\n" + self.log()
                )
            await asyncio.sleep(0.05)

    def log(self) -> str:
        return "\n".join(self.lines[-40:])

    async def stop(self, sig: int = signal.SIGTERM) -> int:
        assert self.proc is not None
        if self.proc.returncode is None:
            self.proc.send_signal(sig)
        rc = await asyncio.wait_for(self.proc.wait(), 30)
        if self._reader is not None:
            await self._reader
        return rc


def _role(role: str) -> Any:
    return lambda body: body.get("ha", {}).get("role") == role


def _polled(n: int) -> Any:
    return lambda body: body.get("ha", {}).get("role") == "active" and body.get("up") == n


def _events(url: str) -> list[str]:
    schema = url.split("search_path%3D")[1]
    with psycopg.connect(CONNINFO, autocommit=True) as conn:
        return [k for (k,) in conn.execute(f'SELECT kind FROM "{schema}".events ORDER BY id').fetchall()]


async def test_kill_9_the_active_and_the_standby_takes_over_never_polling_beside_it(
    pg_url: str, lock_name: str, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    port = web_port()
    hosts = [loopback_host(91) for _ in range(3)]
    groups = [Group("Antminer S19 Pro", 1, h, {"web": port}, ramp_s=0, jitter=0) for h in hosts]
    targets = ", ".join(f'"{h}"' for h in hosts)
    cfg = tmp_path / "fleetd.toml"
    cfg.write_text(
        f'[storage]\nurl = "{pg_url}"\n\n'
        f'[ha]\nenabled = true\nlock_name = "{lock_name}"\n'
        f"heartbeat_s = {HEARTBEAT_S}\ntakeover_s = {TAKEOVER_S}\n\n"
        "[polling]\ninterval_s = 0.5\njitter_s = 0\ntimeout_s = 1\nconnect_timeout_s = 0.5\n\n"
        f"[[discovery]]\ntargets = [{targets}]\nweb_port = {port}\ninterval_s = 600\n"
    )
    seen = Attribution()
    made = Connection.connection_made

    def connection_made(self: Connection, transport: asyncio.BaseTransport) -> None:
        made(self, transport)
        seen.seen(transport)

    monkeypatch.setattr(Connection, "connection_made", connection_made)
    a = Instance("A", cfg, tmp_path / "a", loopback_host(91))
    b = Instance("B", cfg, tmp_path / "b", loopback_host(91))
    async with Fleet(groups):
        try:
            seen.pids["A"] = await a.start()
            await a.until(_polled(3), 30, "active role with 3 miners up (discovered)")
            seen.pids["B"] = await b.start()
            await b.until(lambda body: body["status"] == "standby", 30, "standby status")
            await asyncio.sleep(4 * HEARTBEAT_S)  # B tries the lock a few times meanwhile
            standby = await b.health()
            assert standby is not None and standby["miners"] == 0 and standby["ha"]["takeovers"] == 0
            text = await b.metrics()
            assert 'fleetd_ha_role{role="standby"} 1' in text and "fleetd_cycles_total 0\n" in text

            # 1. A loses its database session: A steps down, B takes over
            lost_at = time.monotonic()
            assert terminate_lock_sessions(HaConfig(lock_name=lock_name).key()) == 1
            took_b = await b.until(_role("active"), TAKEOVER_S + 5, "takeover after A lost the database")
            await a.until(_role("standby"), 10, "step-down after losing the database")
            await b.until(_polled(3), 10, "3 miners up")
            await asyncio.sleep(1.0)  # a few cycles of B's

            # 2. kill -9 the active B: A takes over again
            assert b.proc is not None
            killed_at = time.monotonic()
            b.proc.kill()
            took_a = await a.until(_role("active"), TAKEOVER_S + 5, "takeover after B was killed")
            await a.until(_polled(3), 10, "3 miners up again")
            await asyncio.sleep(1.0)
            assert await a.stop() == 0, a.log()
            await b.stop()
        finally:
            for inst in (a, b):
                if inst.proc is not None and inst.proc.returncode is None:
                    inst.proc.kill()
                    await inst.proc.wait()

    runs = seen.blocks()
    print(f"takeover after a lost session {took_b:.2f} s, after kill -9 {took_a:.2f} s; {len(seen.records)} "
          f"connections: " + ", ".join(f"{o} {t1 - t0:.1f} s" for o, t0, t1 in runs))  # fmt: skip
    assert took_b <= TAKEOVER_S, f"B took over {took_b:.2f} s after A lost its session"
    assert took_a <= TAKEOVER_S, f"A took over {took_a:.2f} s after B was killed"
    unknown = [r for r in seen.records if r[1] is None]
    # A client that gave up before the emulator got to accept its connection (a loaded machine) has no
    # socket left to find; a standby that polled would show in many attributed connections.
    assert len(unknown) <= max(1, len(seen.records) // 4), (
        f"{len(unknown)} of {len(seen.records)} not attributed"
    )
    assert [owner for owner, _, _ in runs] == ["A", "B", "A"], runs  # never both: one poller at a time
    (_, _, a_last), (_, b_first, b_last), (_, a_again, _) = runs
    assert lost_at < b_first and a_last < b_first
    assert b_last < a_again and killed_at < a_again
    for owner in ("A", "B"):  # each active polled every miner
        assert {m for _, o, m in seen.records if o == owner} == set(hosts)
    for inst in (a, b):
        assert not [line for line in inst.lines if "Traceback" in line], inst.log()
    kinds = _events(pg_url)
    assert kinds.count("miner_added") == 3, kinds  # B and A again resumed the stored inventory
    assert kinds.count("ha_active") == 3 and kinds.count("ha_standby") >= 1, kinds
