"""Two Daemons of one HA pair in one process, on the real PostgreSQL, polling emulated miners."""

from __future__ import annotations

import asyncio
import socket
import time
from collections.abc import AsyncIterator, Callable
from contextlib import asynccontextmanager
from pathlib import Path
from typing import Any

import aiohttp
import psycopg
import pytest

from fleetd.api import ApiServer
from fleetd.config import parse_config
from fleetd.daemon.core import Daemon
from fleetd.daemon.ha import Role
from fleetd.sim.fleet import Fleet, Group
from tests.conftest import loopback_host, web_port

from .conftest import CONNINFO, terminate_lock_sessions

pytestmark = pytest.mark.postgres

HEARTBEAT_S, TAKEOVER_S = 0.3, 1.5


def _config(url: str, lock_name: str, hosts: list[str], **ha: Any) -> Any:
    port = web_port()
    return parse_config(
        {
            "storage": {"url": url},
            "ha": {
                "enabled": True,
                "lock_name": lock_name,
                "heartbeat_s": HEARTBEAT_S,
                "takeover_s": TAKEOVER_S,
            }
            | ha,
            "polling": {"interval_s": 0.3, "jitter_s": 0.0, "timeout_s": 1.0, "connect_timeout_s": 0.5},
            "miners": [{"host": h, "web_port": port} for h in hosts],
        }
    )


async def _until(cond: Callable[[], bool], within: float, what: str) -> float:
    """Seconds it took for `cond` to hold."""
    t0 = time.monotonic()
    while not cond():
        if time.monotonic() - t0 > within:
            raise AssertionError(f"timed out after {within} s waiting for {what}")
        await asyncio.sleep(0.02)
    return time.monotonic() - t0


@asynccontextmanager
async def _api(d: Daemon) -> AsyncIterator[str]:
    server = ApiServer.for_daemon(d, listen=f"{loopback_host(90)}:0")
    await server.start()
    try:
        yield server.url
    finally:
        await server.stop()


def _check_health_schema(body: dict[str, Any]) -> None:
    import jsonschema

    from fleetd.api.openapi import openapi_document

    doc = openapi_document("test")
    schema = {"$ref": "#/components/schemas/Health", "components": doc["components"]}
    jsonschema.Draft202012Validator(schema).validate(body)


async def _get(url: str) -> tuple[int, Any]:
    async with aiohttp.ClientSession() as s, s.get(url) as r:
        body = await r.json() if r.content_type == "application/json" else await r.text()
        return r.status, body


def _events(url: str) -> list[str]:
    schema = url.split("search_path%3D")[1]
    with psycopg.connect(CONNINFO, autocommit=True) as conn:
        return [k for (k,) in conn.execute(f'SELECT kind FROM "{schema}".events ORDER BY id').fetchall()]


async def test_one_active_standby_takes_over_when_the_active_loses_the_database(
    pg_url: str, lock_name: str, tmp_path: Path
) -> None:
    hosts = [loopback_host(90) for _ in range(3)]
    port = web_port()
    groups = [Group("Antminer S19 Pro", 1, h, {"web": port}, ramp_s=0, jitter=0) for h in hosts]
    cfg = _config(pg_url, lock_name, hosts)
    a = Daemon(cfg, state_dir=tmp_path / "a")
    b = Daemon(cfg, state_dir=tmp_path / "b")
    async with Fleet(groups):
        await a.start()
        try:
            await _until(lambda: a.ha is not None and a.ha.active, 10, "A to take the lock")
            await b.start()
            await _until(lambda: a.state.last_cycle is not None and a.state.up() == 3, 10, "A to poll")
            assert b.ha is not None and b.ha.role is Role.STANDBY
            await _until(lambda: b.ha is not None and b.ha.lock.connected, 5, "B to reach the database")
            await asyncio.sleep(3 * HEARTBEAT_S)  # B tried and failed a few times
            assert not b.ha.active and not b.started and b.storage is None
            assert b.state.miners == {} and b.state.last_cycle is None  # B polls nothing
            # B names A as its lock session shows it: the host and A's API address
            assert b.ha.active_instance is not None
            assert b.ha.active_instance.startswith(f"fleetd-ha {socket.gethostname()}"[:63])
            assert f"api {cfg.api.listen}" in b.ha.active_instance
            line = b.status_line()
            assert b.progressing() and line.startswith(
                f"HA standby: another instance ({b.ha.active_instance})"
            )
            assert line.endswith(f"holds lock {b.ha.lock.key}; ready to take over")
            assert not b.may_command() and a.may_command()

            async with _api(a) as a_url, _api(b) as b_url:
                status, body = await _get(a_url + "/healthz")
                assert status == 200 and body["status"] == "ok" and body["ha"]["role"] == "active"
                status, body = await _get(b_url + "/healthz")
                assert status == 200 and body["status"] == "standby" and body["ha"]["role"] == "standby"
                assert body["ha"]["lock_key"] == cfg.ha.key() and body["miners"] == 0
                _check_health_schema(body)
                assert (await _get(b_url + "/healthz?role=active"))[0] == 503
                assert (await _get(a_url + "/healthz?role=active"))[0] == 200
                assert (await _get(b_url + "/healthz?role=standby"))[0] == 200
                assert (await _get(b_url + "/healthz?role=boss"))[0] == 400
                _, text = await _get(b_url + "/metrics")
                assert (
                    'fleetd_ha_role{role="standby"} 1' in text and 'fleetd_ha_role{role="active"} 0' in text
                )
                _, text = await _get(a_url + "/metrics")
                assert 'fleetd_ha_role{role="active"} 1' in text

                # A's lock session ends (as if A lost the database): A stops, B takes over
                cycles_before = a.poller.cycles
                assert terminate_lock_sessions(cfg.ha.key()) == 1
                took = await _until(
                    lambda: b.ha is not None and b.ha.active, TAKEOVER_S + 2, "B to take over"
                )
                assert took <= TAKEOVER_S
                await _until(
                    lambda: a.ha is not None and not a.ha.active and not a.state.miners, 10, "A to step down"
                )
                assert a._task is None and a.storage is None
                assert a.state.miners == {}  # no stale miners shown or exported by the standby
                assert a.poller.cycles == 0 and cycles_before > 0  # a fresh poller that never runs
                assert not a.may_command()
                await _until(lambda: b.state.up() == 3, 10, "B to poll")
                status, body = await _get(a_url + "/healthz")
                assert status == 200 and body["status"] == "standby" and body["ha"]["takeovers"] == 1
                status, body = await _get(b_url + "/healthz")
                assert status == 200 and body["ha"]["role"] == "active" and body["up"] == 3
                _check_health_schema(body)
                _, text = await _get(a_url + "/metrics")
                assert 'fleetd_ha_role{role="standby"} 1' in text
                assert "fleetd_miner_up{" not in text  # the old active exports no per-miner series
        finally:
            await a.stop()
            await b.stop()
    kinds = _events(pg_url)
    assert kinds.count("ha_active") == 2 and "ha_standby" in kinds
    assert kinds.count("miner_added") == 0  # B resumed A's stored inventory (configured miners only here)


async def test_a_stopped_active_hands_over_after_it_has_stopped(
    pg_url: str, lock_name: str, tmp_path: Path
) -> None:
    cfg = _config(pg_url, lock_name, [])
    pair = [Daemon(cfg, state_dir=tmp_path / "a"), Daemon(cfg, state_dir=tmp_path / "b")]
    await asyncio.gather(*(d.start() for d in pair))  # started together: exactly one wins
    try:
        await _until(lambda: any(d.ha is not None and d.ha.active for d in pair), 10, "one to take the lock")
        await asyncio.sleep(2 * HEARTBEAT_S)
        active = [d for d in pair if d.ha is not None and d.ha.active]
        assert len(active) == 1
        first, other = active[0], next(d for d in pair if d is not active[0])
        await first.stop()  # SIGTERM: the lock goes with its session, after its polls and writes
        assert first.ha is not None and not first.ha.active and not first.ha.lock.connected
        await _until(lambda: other.ha is not None and other.ha.active, TAKEOVER_S, "the other to take over")
    finally:
        for d in pair:
            await d.stop()


async def test_a_standby_without_a_database_keeps_trying(tmp_path: Path, lock_name: str) -> None:
    cfg = _config(f"postgresql://postgres@{loopback_host(90)}:5432/test", lock_name, [])
    d = Daemon(cfg, state_dir=tmp_path)
    await d.start()
    try:
        await _until(lambda: d.ha is not None and bool(d.ha.last_error), 10, "a failed attempt")
        assert d.ha is not None and not d.ha.active and not d.started
        assert d.progressing()  # ready to take over as soon as the database is back: not a stuck daemon
        assert d.status_line().startswith("HA standby: database unreachable")
    finally:
        await d.stop()
    assert d.ha is not None and d.ha._task is None


async def test_reload_in_standby_keeps_the_file_for_takeover(
    pg_url: str, lock_name: str, tmp_path: Path
) -> None:
    cfg = _config(pg_url, lock_name, [])
    holder = Daemon(cfg, state_dir=tmp_path / "a")
    d = Daemon(cfg, state_dir=tmp_path / "b")
    await holder.start()
    try:
        await _until(lambda: holder.ha is not None and holder.ha.active, 10, "the holder to take the lock")
        await d.start()
        new = _config(pg_url, lock_name, [loopback_host(90)], heartbeat_s=0.5, takeover_s=2.0)
        later = await d.reload(new)
        assert later == ["ha"]
        assert d.config.miners == new.miners and d.config.ha == cfg.ha
        assert d.state.miners == {} and not d.started
    finally:
        await d.stop()
        await holder.stop()


def _lock_backend_pid(key: int) -> int:
    from fleetd.daemon.ha import split_key

    with psycopg.connect(CONNINFO, autocommit=True) as conn:
        (pid,) = conn.execute(
            "SELECT pid FROM pg_locks WHERE locktype = 'advisory' AND granted AND objsubid = 1 "
            "AND classid::bigint = %s AND objid::bigint = %s",
            split_key(key),
        ).fetchone()
    return pid


def _local_process(pid: int) -> bool:
    return Path(f"/proc/{pid}/cmdline").is_file() and b"postgres" in Path(f"/proc/{pid}/cmdline").read_bytes()


async def test_an_active_whose_lock_check_hangs_steps_down_before_anyone_can_take_over(
    pg_url: str, lock_name: str, tmp_path: Path
) -> None:
    """The lock's server process stops answering (as behind a dead link): no confirmation, no polling."""
    import os
    import signal

    hosts = [loopback_host(90)]
    groups = [Group("Antminer S19 Pro", 1, hosts[0], {"web": web_port()}, ramp_s=0, jitter=0)]
    cfg = _config(pg_url, lock_name, hosts)
    a = Daemon(cfg, state_dir=tmp_path / "a")
    b = Daemon(cfg, state_dir=tmp_path / "b")
    async with Fleet(groups):
        await a.start()
        backend = 0
        try:
            await _until(lambda: a.ha is not None and a.ha.active and a.state.up() == 1, 10, "A to poll")
            await b.start()
            backend = _lock_backend_pid(cfg.ha.key())
            if not _local_process(backend):
                pytest.skip("the PostgreSQL server runs elsewhere: cannot stop its backend")
            os.kill(backend, signal.SIGSTOP)
            took = await _until(lambda: a.ha is not None and not a.ha.active, 5, "A to step down")
            assert took <= 2 * HEARTBEAT_S + 0.5
            await _until(lambda: a._task is None, 5, "A's poll loop to end")
            assert not a.may_command()
            assert b.ha is not None and not b.ha.active  # the stopped session still holds the lock
            os.kill(backend, signal.SIGCONT)  # it reads A's goodbye and ends: the lock is free
            backend = 0
            await _until(lambda: b.ha is not None and b.ha.active, TAKEOVER_S, "B to take over")
            await _until(lambda: b.state.up() == 1, 10, "B to poll")
        finally:
            if backend:
                os.kill(backend, signal.SIGCONT)
            await a.stop()
            await b.stop()
