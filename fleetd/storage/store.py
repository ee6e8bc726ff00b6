"""The database: engine, migrations at open, and one writer thread that batches every write.

Storage itself is the queue and the writer thread; batch.py holds what one write transaction does,
queries.py the reads, schema.py the engine and migrations.

The event loop only enqueues (never blocks): inventory, identities, events and rollups go through a
bounded queue; latest state is a dict replaced per miner, so it costs no queue space and only the newest
row of each miner is written. A failed write is reported, kept and retried; polling never waits for it.
"""

from __future__ import annotations

import logging
import queue
import sqlite3
import threading
import time
from collections.abc import Callable, Iterable
from datetime import datetime
from typing import Any

from sqlalchemy import Engine, create_engine, exc
from sqlalchemy.engine import make_url

from fleetd.health.history import HealthHour
from fleetd.model import Identity
from fleetd.records import EventRecord, RollupRow
from fleetd.storage import schema
from fleetd.storage.batch import _Batch, write_batch
from fleetd.storage.queries import InventoryRow, StorageQueries
from fleetd.storage.schema import MIGRATIONS, _dt, normalize_url, redact_url

__all__ = ["MIGRATIONS", "InventoryRow", "Storage", "normalize_url", "redact_url"]

log = logging.getLogger("fleetd.storage")

_TRANSIENT = (exc.OperationalError, exc.InterfaceError, exc.DisconnectionError, exc.TimeoutError)
_MAX_DATA_RETRIES = 3  # a batch the database rejects for its content is salvaged after this many tries
_DATA_RETRY_S = 0.2  # wait between those tries: a refused row is no outage, nothing to back off from
_SALVAGE_FAILURES_MAX = 64  # refused writes per salvage before the rest of a kind is dropped untried
_KINDS = (  # (name in the logs, _Batch field)
    ("inventory", "miners"),
    ("identity history", "identities"),
    ("events", "events"),
    ("rollups", "rollups"),
    ("health history", "health"),
    ("prices", "prices"),
    ("curtailment state", "curtail_state"),
    ("curtailment log", "curtail_log"),
    ("curtailment fleet memory", "curtail_fleet"),
    ("latest state", "latest"),
)
_WHOLE = frozenset({"curtail_fleet"})  # kinds written as one set that replaces the stored one: never split
_WAKE = ("wake", None)


class Storage(StorageQueries):
    """Open with `open()` (blocking: connects and migrates), then enqueue from anywhere; `close()` flushes."""

    def __init__(
        self,
        url: str,
        *,
        queue_size: int = 100_000,
        on_error: Callable[[str], None] | None = None,
        echo: bool = False,
        busy_timeout_s: float = 30.0,
        latest_every_s: float = 0.0,
    ) -> None:
        self.url = normalize_url(url)
        self.busy_timeout_s = busy_timeout_s  # SQLite: how long to wait for another writer's lock
        self.on_error = on_error
        self.echo = echo
        self.engine: Engine | None = None
        self._q: queue.Queue[tuple[str, Any]] = queue.Queue(maxsize=queue_size)
        self._latest: dict[str, tuple[Any, ...]] = {}
        # Latest state is written at most this often (and at flush/close); memory holds the current picture.
        self.latest_every_s = latest_every_s
        self._latest_due = 0.0
        self._force_latest = False
        self._lock = threading.Lock()
        self._done = threading.Condition()
        self._submitted = 0
        self._committed = 0
        self._closing = threading.Event()
        self._close_deadline = 0.0
        self._thread: threading.Thread | None = None
        # Writes lost: the queue full (database down for long), rows the database refuses, or not written
        # by the close deadline.
        self.dropped = 0
        self.failing_since: float | None = None
        self.last_error = ""

    @property
    def queue_depth(self) -> int:
        """Writes waiting for the storage thread."""
        return self._q.qsize()

    @property
    def dialect(self) -> str:
        return self.engine.dialect.name if self.engine is not None else make_url(self.url).get_backend_name()

    # --- opening -------------------------------------------------------------------------------------------
    def open(self) -> None:
        self.engine = schema.connect(self.url, echo=self.echo, busy_timeout_s=self.busy_timeout_s)
        self.migrate()
        self._thread = threading.Thread(target=self._run, name="fleetd-storage", daemon=True)
        self._thread.start()
        log.info("storage ready: %s", redact_url(self.url))

    def migrate(self) -> None:
        """Bring the schema to the newest revision (Alembic scripts shipped in the package)."""
        assert self.engine is not None
        schema.migrate(self.engine)

    # --- enqueueing (never blocks) -------------------------------------------------------------------------
    def _put(self, item: tuple[str, Any]) -> None:
        try:
            self._q.put_nowait(item)
        except queue.Full:
            if item is _WAKE:
                return
            self.dropped += 1
            if self.dropped == 1 or self.dropped % 10_000 == 0:
                log.error("storage queue full: %d writes dropped (database slow or down)", self.dropped)
            return
        with self._done:
            self._submitted += 1

    def upsert_miner(self, row: dict[str, Any]) -> None:
        """Inventory row (id required); only the keys given are updated on an existing miner."""
        self._put(("miner", row))

    def add_identity(
        self, miner_id: str, host: str, ident: Identity, driver: str, at: float | None = None
    ) -> None:
        at_dt = _dt(time.time() if at is None else at)
        facts = {
            "driver": driver or ident.driver,
            "vendor": ident.vendor,
            "model": ident.model,
            "firmware": ident.firmware,
            "serial": ident.serial,
            "mac": ident.mac,
            "hostname": ident.hostname,
        }
        history = {"miner_id": miner_id, "seen_at": at_dt, "api_version": ident.api_version}
        self._put(("identity", history | facts))
        self._put(("miner", {"id": miner_id, "host": host} | facts))

    def add_event(self, ev: EventRecord) -> None:
        row = {
            "at": _dt(ev.at),
            "kind": str(ev.kind),
            "level": ev.level,
            "miner_id": ev.miner_id,
            "message": ev.message,
        }
        self._put(("event", row))

    def add_price(
        self,
        kind: str,
        *,
        source: str,
        start: float,
        end: float | None,
        value: float,
        unit: str,
        currency: str,
        location: str = "",
        fetched_at: float | None = None,
    ) -> None:
        """A price point (hashprice or electricity); one already stored (same kind, source, location, start)
        is kept as first stored."""
        row = {
            "kind": kind,
            "source": source,
            "location": location,
            "start": _dt(start),
            "end": _dt(end),
            "value": value,
            "unit": unit,
            "currency": currency,
            "fetched_at": _dt(time.time() if fetched_at is None else fetched_at),
        }
        self._put(("price", row))

    def set_curtail_state(self, rows: Iterable[dict[str, Any]]) -> None:
        """Per-miner curtailment rows (CurtailState columns, times as unix seconds); newest wins."""
        for r in rows:
            self._put(("curtail_state", _with_datetimes(r) | {"updated_at": _dt(time.time())}))

    def set_curtail_fleet(self, active: dict[str, float]) -> None:
        """The fleet-level rules in force and since when (unix seconds); replaces what is stored."""
        self._put(("curtail_fleet", [{"rule": k, "since": _dt(v)} for k, v in sorted(active.items())]))

    def add_curtail_log(self, rows: Iterable[dict[str, Any]]) -> None:
        """Curtailment log rows (CurtailLogRecord columns, `at` as unix seconds)."""
        for r in rows:
            self._put(("curtail_log", _with_datetimes(r)))

    def write_curtail_controls(self, rows: Iterable[dict[str, Any]], deleted: Iterable[str] = ()) -> None:
        """Write controls now, in one transaction (not queued: the operator is told it is stored): `rows`
        (id, kind, body) replace those with the same id, `deleted` ids go. Raises when the database fails."""
        assert self.engine is not None
        t = schema._CURTAIL_CONTROLS
        rows = [r | {"updated_at": _dt(time.time())} for r in rows]
        gone = {r["id"] for r in rows} | set(deleted)
        with self.engine.begin() as conn:
            if gone:
                conn.execute(t.delete().where(t.c.id.in_(sorted(gone))))
            if rows:
                conn.execute(t.insert(), rows)

    def add_health_hours(self, rows: Iterable[HealthHour]) -> None:
        """Per-miner hourly health sums (summed with what is stored for the same miner and hour)."""
        for r in rows:
            self._put(("health", r))

    def add_rollups(self, rows: Iterable[RollupRow]) -> None:
        for r in rows:
            self._put(("rollup", r))

    def set_latest(self, rows: list[tuple[Any, ...]]) -> None:
        """(miner_id, health, snapshot|None, failures, last_error, last_ok_at) per miner; newest wins."""
        with self._lock:
            for r in rows:
                self._latest[r[0]] = r
        self._put(_WAKE)

    # --- the writer thread ---------------------------------------------------------------------------------
    def _run(self) -> None:
        batch = _Batch()
        delay = 0.5
        while True:
            try:
                wait = 0.0 if batch else 0.02 if self._closing.is_set() else 0.5
                item = self._q.get(timeout=wait)
                batch.add(*item)
            except queue.Empty:
                if not batch and self._closing.is_set():
                    return
            drained = 0
            while drained < 50_000:
                try:
                    batch.add(*self._q.get_nowait())
                    drained += 1
                except queue.Empty:
                    break
            with self._lock:
                if self._latest and (self._force_latest or time.monotonic() >= self._latest_due):
                    batch.latest.update(self._latest)
                    self._latest = {}
                    self._force_latest = False
                    self._latest_due = time.monotonic() + self.latest_every_s
            if not batch:
                continue
            if not batch.has_rows():  # only wake-ups
                self._committed_add(batch.items)
                batch = _Batch()
                continue
            try:
                self._write(batch)
            except Exception as e:
                batch.tries += 1
                self._report(e)
                transient = self._transient(e)
                if not transient and batch.tries >= _MAX_DATA_RETRIES:
                    self._write_salvage(batch)  # keep every row the database accepts, drop the rest
                    self._committed_add(batch.items)
                    batch = _Batch()
                    self.failing_since = None
                    delay = 0.5
                    continue
                # Only an outage backs off: refused rows must not stretch the waits (nor the shutdown).
                wait = delay if transient else _DATA_RETRY_S
                if self._closing.is_set():
                    if time.monotonic() >= self._close_deadline:
                        log.error("storage: %d writes lost at shutdown: %s", batch.items, self.last_error)
                        self.dropped += batch.items
                        self._committed_add(batch.items)
                        return
                    time.sleep(min(wait, 1.0))
                else:
                    self._closing.wait(wait)
                if transient:
                    delay = min(delay * 2, 30.0)
                continue
            if self.failing_since is not None:
                log.warning("storage: writing again after %.0f s of errors", time.time() - self.failing_since)
                self.failing_since = None
            delay = 0.5
            self._committed_add(batch.items)
            batch = _Batch()

    def _transient(self, e: BaseException) -> bool:
        """Errors that go away by themselves (server down, lock held) are retried without limit."""
        if isinstance(e, exc.DBAPIError) and e.connection_invalidated:
            return True
        if isinstance(e, exc.OperationalError) and self.dialect == "sqlite":
            text = str(e.orig).lower()
            return any(w in text for w in ("locked", "busy", "disk", "i/o", "unable to open", "full"))
        return isinstance(e, _TRANSIENT)

    def _write_salvage(self, b: _Batch) -> None:
        """Write each kind of row on its own, and a refused kind in halves down to single rows, so that only
        the rows the database refuses are dropped (and counted), never the others of their batch."""
        budget = [_SALVAGE_FAILURES_MAX]
        for name, field in _KINDS:
            part = _Batch.only(b, field)
            if not part.has_rows():
                continue
            errors: list[str] = []
            lost = self._write_or_split(part, field, budget, errors)
            if lost:
                self.dropped += lost
                log.error("storage: dropping %d %s rows the database refuses: %s", lost, name, errors[0])

    def _write_or_split(self, part: _Batch, field: str, budget: list[int], errors: list[str]) -> int:
        """Rows of `part` (one kind) not written: written whole, else each half on its own, recursively."""
        rows = part.row_count()
        if budget[0] <= 0:  # a kind refused throughout (a dropped table): no use trying row by row
            return rows
        try:
            self._write(part)
            return 0
        except Exception as e:
            budget[0] -= 1
            if not errors:
                errors.append(str(e).splitlines()[0] if str(e) else type(e).__name__)
            if rows <= 1 or field in _WHOLE:
                return rows
        first, second = part.halves(field)
        return self._write_or_split(first, field, budget, errors) + self._write_or_split(
            second, field, budget, errors
        )

    def _committed_add(self, n: int) -> None:
        with self._done:
            self._committed += n
            self._done.notify_all()

    def _report(self, e: BaseException) -> None:
        msg = f"storage write failed ({type(e).__name__}): {str(e).splitlines()[0] if str(e) else ''}"
        self.last_error = msg
        first = self.failing_since is None
        if first:
            self.failing_since = time.time()
            log.error("%s; retrying, polling goes on", msg)
            if self.on_error is not None:
                self.on_error(msg)
        else:
            log.debug(msg)

    def _write(self, b: _Batch) -> None:
        assert self.engine is not None
        write_batch(self.engine, b)

    # --- flushing and closing ------------------------------------------------------------------------------
    def flush(self, timeout: float = 30.0) -> bool:
        """Block until everything enqueued so far is written (or given up); False on timeout."""
        if self._thread is None:
            return True
        with self._lock:
            if self._latest:
                self._force_latest = True
        self._put(_WAKE)
        with self._done:
            target = self._submitted
            return self._done.wait_for(lambda: self._committed >= target, timeout)

    def close(self, timeout: float = 30.0) -> None:
        """Write what is pending (retrying for up to `timeout`), stop the writer, dispose of the engine."""
        if self._thread is not None:
            self._close_deadline = time.monotonic() + timeout
            self.flush(timeout)
            self._closing.set()
            self._put(_WAKE)
            self._thread.join(5.0)
            self._thread = None
        if self.engine is not None:
            self.engine.dispose()
            self.engine = None


def load_inventory_readonly(url: str) -> list[InventoryRow]:
    """The inventory of a SQLite database opened read-only and without locking (its folder may be
    read-only or full); [] for other databases, or a file that is not there."""
    from pathlib import Path

    u = make_url(normalize_url(url))
    if u.get_backend_name() != "sqlite" or not u.database or u.database == ":memory:":
        return []
    path = Path(u.database)
    if not path.is_file():
        return []
    reader = StorageQueries()
    reader.engine = create_engine(
        "sqlite://",
        creator=lambda: sqlite3.connect(f"{path.resolve().as_uri()}?mode=ro&immutable=1", uri=True),
    )
    try:
        return reader.load_inventory()
    finally:
        reader.engine.dispose()


_TIME_COLUMNS = frozenset({"at", "since", "verified_at", "changed_at", "next_attempt_at"})


def _with_datetimes(row: dict[str, Any]) -> dict[str, Any]:
    return {
        k: _dt(v or None) if k in _TIME_COLUMNS and not isinstance(v, datetime) else v for k, v in row.items()
    }
