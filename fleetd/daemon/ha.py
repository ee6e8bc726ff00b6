"""High availability: one active and one standby `fleetd run` on one PostgreSQL, by an advisory lock.

The lock is session-level (pg_try_advisory_lock) on a connection of its own: it lives exactly as long as
that session. The active checks every heartbeat_s that its session still holds it; a failed or timed-out
check means the lock may be gone, and the active steps down at once (polling and commands stop, then the
rest of the daemon). The standby tries to take the lock every heartbeat_s.

Timings, with h = heartbeat_s and T = takeover_s (T >= 4h, checked by the configuration):
- the server ends a session silent for the lease L = T - h (idle_session_timeout, TCP keepalives and
  tcp_user_timeout), which frees the lock of an active that died, hung or lost its network;
- an active that cannot confirm the lock steps down within 2h of its last confirmation (a check every h,
  each given h), well before L, so two instances never act at once;
- the standby takes the lock at most h after the server freed it: within T of the loss.
A process killed outright closes its socket, and the server frees the lock at once.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import re
import socket
import time
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from enum import StrEnum
from typing import TYPE_CHECKING, Any

from fleetd.daemon.events import Event, EventKind

if TYPE_CHECKING:
    import psycopg

    from fleetd.config import HaConfig
    from fleetd.daemon.core import Daemon

log = logging.getLogger("fleetd.ha")


class Role(StrEnum):
    ACTIVE = "active"
    STANDBY = "standby"


@dataclass(frozen=True, slots=True)
class Timings:
    """How often the lock is checked, when the server frees a silent session's lock, when to fence."""

    heartbeat_s: float
    lease_s: float  # the server ends a session silent this long (and so frees its lock)
    fence_s: float  # without a confirmation this long, the active may not send commands

    @classmethod
    def of(cls, heartbeat_s: float, takeover_s: float) -> Timings:
        """The timings of a heartbeat and takeover time (see the module docstring)."""
        return cls(heartbeat_s, takeover_s - heartbeat_s, 2 * heartbeat_s)


def conninfo(url: str) -> str:
    """A libpq URI from a storage URL: postgresql+psycopg://... -> postgresql://..."""
    return re.sub(r"^postgresql\+\w+://", "postgresql://", url)


def split_key(key: int) -> tuple[int, int]:
    """(classid, objid) under which pg_locks shows a bigint advisory lock key."""
    unsigned = key & 0xFFFF_FFFF_FFFF_FFFF
    return unsigned >> 32, unsigned & 0xFFFF_FFFF


def session_settings(t: Timings) -> list[str]:
    """SET statements that make the server end (and unlock) a session whose client went silent."""
    lease_ms = max(1000, int(t.lease_s * 1000))
    idle = max(1, int(t.lease_s / 3))
    return [
        f"SET idle_session_timeout = {lease_ms}",  # PostgreSQL 14+: ends a session idle this long
        f"SET tcp_user_timeout = {lease_ms}",  # unacknowledged data for this long ends the connection
        f"SET tcp_keepalives_idle = {idle}",
        f"SET tcp_keepalives_interval = {max(1, idle // 2)}",
        "SET tcp_keepalives_count = 2",
        f"SET statement_timeout = {max(100, int(t.heartbeat_s * 1000))}",
    ]


_HELD = (
    "SELECT EXISTS (SELECT 1 FROM pg_locks WHERE locktype = 'advisory' AND pid = pg_backend_pid() "
    "AND granted AND objsubid = 1 AND classid::bigint = %s AND objid::bigint = %s)"
)


_HOLDER = (
    "SELECT a.application_name || coalesce(' (connected from ' || host(a.client_addr) || ')', '') "
    "FROM pg_locks l JOIN pg_stat_activity a ON a.pid = l.pid WHERE l.locktype = 'advisory' AND l.granted "
    "AND l.objsubid = 1 AND l.classid::bigint = %s AND l.objid::bigint = %s LIMIT 1"
)


def application_name(host: str, api_listen: str) -> str:
    """The lock session's name in pg_stat_activity: how the standby names the active instance."""
    return f"fleetd-ha {host} api {api_listen}"[:63]  # PostgreSQL keeps 63 bytes


class AdvisoryLock:
    """A session-level advisory lock on a dedicated psycopg connection (autocommit)."""

    def __init__(self, url: str, key: int, timings: Timings, name: str = "fleetd-ha") -> None:
        self.url = conninfo(url)
        self.key = key
        self.timings = timings
        self.name = name
        self._conn: psycopg.AsyncConnection[Any] | None = None
        self._closing: set[asyncio.Task[None]] = set()

    @property
    def connected(self) -> bool:
        return self._conn is not None and not self._conn.closed

    async def _query(self, sql: str, params: tuple[Any, ...] = ()) -> Any:
        """One row's first value, within heartbeat_s; a failure drops the connection (unless the server just
        refused the statement) and raises. Never waits longer: psycopg's own cancellation of a query
        waits for the server, which may be the part that hangs."""
        import psycopg

        conn = self._conn
        assert conn is not None
        task = asyncio.ensure_future(_fetch(conn, sql, params))
        try:
            done, _ = await asyncio.wait({task}, timeout=self.timings.heartbeat_s)
        except asyncio.CancelledError:
            self._abandon(conn, task)
            raise
        if not done:
            self._abandon(conn, task)
            raise TimeoutError(f"no answer within {self.timings.heartbeat_s:g} s")
        try:
            return task.result()
        except psycopg.ProgrammingError:  # e.g. a setting this server does not know; the session is fine
            raise
        except BaseException:
            self._drop()  # the caller acts on the failure now; the session ends in the background
            raise

    def _abandon(self, conn: psycopg.AsyncConnection[Any], task: asyncio.Future[Any]) -> None:
        """Give up on a hung query: close the socket under it (which ends the wait) and forget both."""
        if self._conn is conn:
            self._conn = None
        with contextlib.suppress(Exception):
            conn.pgconn.finish()
        task.cancel()
        self._closing.add(task)  # type: ignore[arg-type]
        task.add_done_callback(_forget(self._closing))

    async def _connect(self) -> None:
        import psycopg

        h = self.timings.heartbeat_s
        idle = max(1, int(self.timings.lease_s / 3))
        conn = await asyncio.wait_for(
            psycopg.AsyncConnection.connect(
                self.url,
                autocommit=True,
                connect_timeout=max(2, int(2 * h)),
                application_name=self.name,
                keepalives=1,
                keepalives_idle=idle,
                keepalives_interval=max(1, idle // 2),
                keepalives_count=2,
            ),
            max(2.0, 2 * h) + 1.0,
        )
        self._conn = conn
        for sql in session_settings(self.timings):
            try:
                await self._query(sql)
            except psycopg.ProgrammingError as exc:  # an older server without it: the others still apply
                log.warning("HA lock connection: %s refused (%s); relying on the other settings", sql, exc)

    async def try_acquire(self) -> bool:
        """Connect if needed and try the lock once; True when this session holds it. Raises on errors."""
        if not self.connected:
            await self._connect()
        return bool(await self._query("SELECT pg_try_advisory_lock(%s)", (self.key,)))

    async def held(self) -> bool:
        """Whether this session still holds the lock (the heartbeat). Raises when the session is gone."""
        if not self.connected:
            return False
        return bool(await self._query(_HELD, split_key(self.key)))

    async def holder(self) -> str | None:
        """The application name (and address) of the session holding the lock; None when none holds it."""
        if not self.connected:
            return None
        found = await self._query(_HOLDER, split_key(self.key))
        return str(found) if found else None

    async def close(self) -> None:
        """End the session, which frees the lock if held."""
        conn, self._conn = self._conn, None
        if conn is not None:
            await _close(conn)

    def _drop(self) -> None:
        conn, self._conn = self._conn, None
        if conn is not None:
            task = asyncio.get_running_loop().create_task(_close(conn))
            self._closing.add(task)
            task.add_done_callback(_forget(self._closing))


def _forget(tasks: set[asyncio.Task[None]]) -> Callable[[asyncio.Future[Any]], None]:
    def done(task: asyncio.Future[Any]) -> None:
        tasks.discard(task)  # type: ignore[arg-type]
        if not task.cancelled():
            task.exception()  # retrieved: an abandoned query's error is expected

    return done


async def _fetch(conn: psycopg.AsyncConnection[Any], sql: str, params: tuple[Any, ...]) -> Any:
    cur = await conn.execute(sql, params)  # type: ignore[arg-type]
    row = await cur.fetchone() if cur.description is not None else None
    return row[0] if row else None


async def _close(conn: psycopg.AsyncConnection[Any]) -> None:
    with contextlib.suppress(Exception):
        await asyncio.wait_for(conn.close(), 2.0)


def _reason(exc: BaseException) -> str:
    if isinstance(exc, TimeoutError):
        return "no answer in time"
    first = (str(exc).splitlines() or [""])[0].strip()
    return f"{type(exc).__name__}: {first}" if first else type(exc).__name__


class HaCoordinator:
    """One instance's role in its pair: runs the Daemon while holding the lock, stops it when it goes.

    `Daemon.start()`/`stop()` delegate here; this calls back into them (with `in_control` set) to start
    the daemon on takeover and stop it on step-down or shutdown.
    """

    def __init__(self, daemon: Daemon, config: HaConfig, url: str) -> None:
        self.daemon = daemon
        self.config = config
        self.timings = Timings.of(config.heartbeat_s, config.takeover_s)
        name = application_name(socket.gethostname(), daemon.config.api.listen)
        self.lock = AdvisoryLock(url, config.key(), self.timings, name)
        self.role = Role.STANDBY
        self.since = time.time()  # when the current role began
        self.takeovers = 0
        self.last_heartbeat_at: float | None = None  # wall clock of the last confirmation (active)
        self.last_attempt_at: float | None = None  # wall clock of the last acquire attempt (standby)
        self.last_error = ""
        self.active_instance: str | None = None  # standby: who holds the lock, as its session names it
        self.in_control = False  # set while this object starts or stops the daemon
        self._confirmed = 0.0  # monotonic time of the last confirmation that the lock is held
        self._task: asyncio.Task[None] | None = None
        self._transition: asyncio.Task[None] | None = None
        self._stopping = False
        self._db_down_said = False

    # --- what others read ----------------------------------------------------------------------------------
    @property
    def active(self) -> bool:
        return self.role is Role.ACTIVE

    def may_command(self) -> bool:
        """Active, and the lock confirmed within fence_s: a command may go out now."""
        return self.active and time.monotonic() - self._confirmed < self.timings.fence_s

    def progressing(self) -> bool:
        """The role loop runs (a standby's health: it is ready to take over)."""
        return self._task is not None and not self._task.done()

    def status(self) -> dict[str, Any]:
        """For /healthz and the status line."""
        return {
            "role": self.role.value,
            "since": self.since,
            "lock_key": self.lock.key,
            "lock_name": self.config.lock_name if self.config.lock_key is None else None,
            "database_connected": self.lock.connected,
            "last_heartbeat_at": self.last_heartbeat_at,
            "last_attempt_at": self.last_attempt_at,
            "heartbeat_s": self.timings.heartbeat_s,
            "takeover_s": self.config.takeover_s,
            "takeovers": self.takeovers,
            "last_error": self.last_error or None,
            "active_instance": None if self.active else self.active_instance,
        }

    def status_line(self) -> str:
        if self.lock.connected:
            who = f" ({self.active_instance})" if self.active_instance else ""
            return f"HA standby: another instance{who} holds lock {self.lock.key}; ready to take over"
        return f"HA standby: database unreachable ({self.last_error or 'connecting'}); retrying"

    # --- lifecycle -----------------------------------------------------------------------------------------
    async def start(self) -> None:
        """Begin as standby; the role loop takes the lock when it can."""
        if self._task is None:
            self._stopping = False
            log.info("HA: starting as standby for lock %d (takeover within %g s)", self.lock.key,
                     self.config.takeover_s)  # fmt: skip
            self._task = asyncio.create_task(self._run(), name="fleetd-ha")

    async def stop(self) -> None:
        """Shut down: stop the daemon if active (polls finish, writes flush), then free the lock."""
        self._stopping = True
        if self._task is not None:
            self._task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._task
            self._task = None
        if self._transition is not None:  # a start or step-down under way finishes first
            with contextlib.suppress(Exception):
                await self._transition
        if self.daemon.started:
            await self._call(self.daemon.stop)
        await self.lock.close()
        self.role = Role.STANDBY

    async def _call(self, fn: Callable[[], Awaitable[None]]) -> None:
        """Run a daemon start/stop to its end, even when the role loop is cancelled meanwhile."""

        async def run() -> None:
            self.in_control = True
            try:
                await fn()
            finally:
                self.in_control = False

        self._transition = asyncio.create_task(run())
        try:
            await asyncio.shield(self._transition)
        finally:
            if self._transition.done():
                self._transition = None

    # --- the role loop -------------------------------------------------------------------------------------
    async def _run(self) -> None:
        h = self.timings.heartbeat_s
        while not self._stopping:
            self.last_attempt_at = time.time()
            try:
                got = await self.lock.try_acquire()
            except Exception as exc:
                self._database_down(exc)
                got = False
            else:
                self._database_up()
                if not got:
                    with contextlib.suppress(Exception):
                        self.active_instance = await self.lock.holder()
            if got:
                reason = await self._serve()
                await self._step_down(reason)
            await asyncio.sleep(h)

    def _database_down(self, exc: BaseException) -> None:
        self.last_error = _reason(exc)
        if not self._db_down_said:
            log.error("HA standby: cannot reach the database for the lock: %s; retrying", self.last_error)
            self._db_down_said = True

    def _database_up(self) -> None:
        if self._db_down_said:
            log.warning("HA standby: the database answers again")
            self._db_down_said = False
        self.last_error = ""

    async def _serve(self) -> str:
        """Active: start the daemon, then check the lock every heartbeat; returns why it was lost."""
        self._confirmed = time.monotonic()
        self.last_heartbeat_at = time.time()
        self.role, self.since = Role.ACTIVE, time.time()
        self.takeovers += 1
        log.warning("HA: took lock %d; this instance is now active", self.lock.key)
        heartbeat = asyncio.create_task(self._heartbeat(), name="fleetd-ha-heartbeat")
        try:
            await self._call(self.daemon.start)
        except Exception as exc:
            heartbeat.cancel()
            log.exception("HA: the daemon failed to start")
            return f"the daemon failed to start: {_reason(exc)}"
        except asyncio.CancelledError:
            heartbeat.cancel()
            raise
        self.daemon.emit(Event(EventKind.HA_ACTIVE, f"took HA lock {self.lock.key}: active", level="warning"))
        try:
            return await heartbeat
        except asyncio.CancelledError:
            heartbeat.cancel()
            raise

    async def _heartbeat(self) -> str:
        while True:
            await asyncio.sleep(self.timings.heartbeat_s)
            try:
                held = await self.lock.held()
            except Exception as exc:
                return f"lock check failed: {_reason(exc)}"
            if not held:
                return "the database no longer shows the lock held by this session"
            self._confirmed = time.monotonic()
            self.last_heartbeat_at = time.time()

    async def _step_down(self, reason: str) -> None:
        """Polling and commands stop first, then the lock's session ends, then the rest of the daemon."""
        self.role, self.since = Role.STANDBY, time.time()
        self.last_error = reason
        await self.daemon.stop_polling_now()
        await self.lock.close()
        msg = (
            f"lost HA lock {self.lock.key} ({reason}): stepped down to standby; polling and commands stopped"
        )
        log.error(msg)
        self.daemon.emit(Event(EventKind.HA_STANDBY, msg, level="error"))
        if self.daemon.started:
            await self._call(self.daemon.stop)
        self.daemon.fresh_state()
