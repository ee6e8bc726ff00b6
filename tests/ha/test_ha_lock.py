"""The advisory lock on the real PostgreSQL: exclusive, freed with its session, settings applied."""

from __future__ import annotations

import asyncio

import psycopg
import pytest

from fleetd.config import HaConfig
from fleetd.daemon.ha import AdvisoryLock, Timings
from tests.conftest import loopback_host

from .conftest import terminate_lock_sessions

pytestmark = pytest.mark.postgres

T = Timings.of(0.5, 3.0)


async def _acquired(lock: AdvisoryLock, within: float = 5.0) -> bool:
    """The server frees a lock once the old session's backend has ended, a moment after the client left."""
    for _ in range(int(within / 0.05)):
        if await lock.try_acquire():
            return True
        await asyncio.sleep(0.05)
    return False


def _lock(url: str, name: str) -> AdvisoryLock:
    return AdvisoryLock(url, HaConfig(lock_name=name).key(), T)


async def test_one_session_holds_it_until_its_session_ends(pg_url: str, lock_name: str) -> None:
    a, b = _lock(pg_url, lock_name), _lock(pg_url, lock_name)
    try:
        assert await a.try_acquire()
        assert await a.try_acquire()  # re-entrant within the session
        assert not await b.try_acquire()
        assert await a.held() and not await b.held()
        await a.close()
        assert not a.connected and not await a.held()
        assert await _acquired(b) and await b.held()
    finally:
        await a.close()
        await b.close()


async def test_other_names_are_other_locks(pg_url: str, lock_name: str) -> None:
    a, b = _lock(pg_url, lock_name), _lock(pg_url, lock_name + "-2")
    try:
        assert await a.try_acquire() and await b.try_acquire()
    finally:
        await a.close()
        await b.close()


async def test_a_terminated_session_fails_the_heartbeat_and_frees_the_lock(
    pg_url: str, lock_name: str
) -> None:
    a, b = _lock(pg_url, lock_name), _lock(pg_url, lock_name)
    try:
        assert await a.try_acquire()
        assert terminate_lock_sessions(a.key) == 1
        with pytest.raises(psycopg.Error):
            await a.held()
        assert not a.connected
        assert await _acquired(b)
    finally:
        await a.close()
        await b.close()


async def test_the_server_ends_a_silent_session_and_frees_its_lock(pg_url: str, lock_name: str) -> None:
    """An active that hangs or loses its network goes silent: the server frees its lock after the lease."""
    key = HaConfig(lock_name=lock_name).key()
    a = AdvisoryLock(pg_url, key, Timings(heartbeat_s=0.5, lease_s=1.0, fence_s=1.0))
    b = _lock(pg_url, lock_name)
    try:
        assert await a.try_acquire()
        assert a._conn is not None
        cur = await a._conn.execute("SHOW idle_session_timeout")
        assert (await cur.fetchone())[0] in ("1s", "1000ms")
        assert not await b.try_acquire()
        await asyncio.sleep(1.2)  # silent for longer than the lease
        assert await _acquired(b, 3.0)
        with pytest.raises(psycopg.Error):
            await a.held()
    finally:
        await a.close()
        await b.close()


async def test_an_unreachable_database_raises() -> None:
    lock = AdvisoryLock(f"postgresql://postgres@{loopback_host(90)}:5432/test", 1, T)
    with pytest.raises((psycopg.Error, OSError, TimeoutError)):
        await lock.try_acquire()
    assert not lock.connected
