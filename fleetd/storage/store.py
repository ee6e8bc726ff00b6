"""The database: engine, migrations at open, and one writer thread that batches every write.

The event loop only enqueues (never blocks): inventory, identities, events and rollups go through a
bounded queue; latest state is a dict replaced per miner, so it costs no queue space and only the newest
row of each miner is written. A failed write is reported, kept and retried; polling never waits for it.
"""

from __future__ import annotations

import logging
import queue
import threading
import time
from collections.abc import Callable, Iterable
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from alembic import command
from alembic.config import Config as AlembicConfig
from alembic.runtime.migration import MigrationContext
from sqlalchemy import Engine, Table, case, create_engine, event, exc, func, insert, select
from sqlalchemy.engine import make_url

from fleetd.daemon.events import Event
from fleetd.daemon.rollups import MIXED, RollupRow
from fleetd.daemon.state import Health
from fleetd.model import Identity, Snapshot
from fleetd.storage.tables import EventRecord, HourlyRollup, IdentityRecord, LatestState, Miner, PriceRecord

log = logging.getLogger("fleetd.storage")

MIGRATIONS = Path(__file__).parent / "migrations"
_MINERS: Table = Miner.__table__  # type: ignore[attr-defined]
_IDENTITY: Table = IdentityRecord.__table__  # type: ignore[attr-defined]
_LATEST: Table = LatestState.__table__  # type: ignore[attr-defined]
_ROLLUPS: Table = HourlyRollup.__table__  # type: ignore[attr-defined]
_EVENTS: Table = EventRecord.__table__  # type: ignore[attr-defined]
_PRICES: Table = PriceRecord.__table__  # type: ignore[attr-defined]
_PRICE_KEY = ("kind", "source", "location", "start")
_MINER_DEFAULTS: dict[str, Any] = {
    "host": "",
    "api_port": 4028,
    "site": "",
    "rack": "",
    "position": "",
    "source": "config",
    "nominal_power_w": None,
    "driver": "",
    "vendor": "",
    "model": "",
    "firmware": "",
    "serial": "",
    "mac": "",
    "hostname": "",
}
_TRANSIENT = (exc.OperationalError, exc.InterfaceError, exc.DisconnectionError, exc.TimeoutError)
_MAX_DATA_RETRIES = 3  # a batch the database rejects for its content is dropped after this many tries
_WAKE = ("wake", None)


@dataclass(frozen=True, slots=True)
class InventoryRow:
    """A stored miner, as the daemon needs it at start."""

    id: str
    host: str
    api_port: int
    source: str
    site: str
    rack: str
    position: str
    nominal_power_w: float | None
    driver: str
    identity: Identity | None


def _dt(ts: float | None) -> datetime | None:
    return None if ts is None else datetime.fromtimestamp(ts, UTC)


def _ts(value: datetime | None) -> float | None:
    if value is None:
        return None
    return (value if value.tzinfo else value.replace(tzinfo=UTC)).timestamp()


def normalize_url(url: str) -> str:
    """postgresql:// means psycopg 3 (the driver fleetd installs)."""
    if url.startswith(("postgresql://", "postgres://")):
        return "postgresql+psycopg://" + url.split("://", 1)[1]
    return url


def redact_url(url: str) -> str:
    try:
        return make_url(url).render_as_string(hide_password=True)
    except Exception:
        return "<unparsable url>"


class _Batch:
    """Writes merged while waiting for the database."""

    __slots__ = ("events", "identities", "items", "latest", "miners", "prices", "rollups", "tries")

    def __init__(self) -> None:
        self.miners: dict[str, dict[str, Any]] = {}
        self.identities: list[dict[str, Any]] = []
        self.events: list[dict[str, Any]] = []
        self.rollups: dict[tuple[str, float], list[Any]] = {}
        self.latest: dict[str, tuple[Any, ...]] = {}
        self.prices: dict[tuple[Any, ...], dict[str, Any]] = {}
        self.items = 0
        self.tries = 0

    def __bool__(self) -> bool:
        return bool(self.items or self.latest)

    def has_rows(self) -> bool:
        return bool(
            self.miners or self.identities or self.events or self.rollups or self.latest or self.prices
        )

    @staticmethod
    def only(b: _Batch, field: str) -> _Batch:
        part = _Batch()
        setattr(part, field, getattr(b, field))
        return part

    def add(self, kind: str, payload: Any) -> None:
        self.items += 1
        if kind == "miner":
            self.miners.setdefault(payload["id"], {}).update(payload)
        elif kind == "identity":
            self.identities.append(payload)
        elif kind == "event":
            self.events.append(payload)
        elif kind == "price":
            self.prices.setdefault(tuple(payload[k] for k in _PRICE_KEY), payload)
        elif kind == "rollup":
            r: RollupRow = payload
            acc = self.rollups.setdefault((r.miner_id, r.hour_start), [0.0, 0.0, 0.0, 0, None, None, "", ""])
            acc[0] += r.energy_kwh
            acc[1] += r.hashes_th
            acc[2] += r.uptime_s
            acc[3] += r.samples
            if r.revenue is not None:
                acc[4] = (acc[4] or 0.0) + r.revenue
            if r.cost is not None:
                acc[5] = (acc[5] or 0.0) + r.cost
            acc[6] = r.currency or acc[6]
            acc[7] = _merge_source(acc[7], r.power_source)


class Storage:
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
        self.dropped = 0  # writes lost because the queue was full (database down for long)
        self.failing_since: float | None = None
        self.last_error = ""

    @property
    def dialect(self) -> str:
        return self.engine.dialect.name if self.engine is not None else make_url(self.url).get_backend_name()

    # --- opening -------------------------------------------------------------------------------------------
    def open(self) -> None:
        url = make_url(self.url)
        kwargs: dict[str, Any] = {"echo": self.echo}
        if url.get_backend_name() == "sqlite":
            if url.database and url.database != ":memory:":
                Path(url.database).parent.mkdir(parents=True, exist_ok=True)
            kwargs["connect_args"] = {"check_same_thread": False, "timeout": self.busy_timeout_s}
        else:
            kwargs["pool_pre_ping"] = True
        engine = create_engine(self.url, **kwargs)
        if url.get_backend_name() == "sqlite":
            event.listen(engine, "connect", _sqlite_pragmas(int(self.busy_timeout_s * 1000)))
        self.engine = engine
        self.migrate()
        self._thread = threading.Thread(target=self._run, name="fleetd-storage", daemon=True)
        self._thread.start()
        log.info("storage ready: %s", redact_url(self.url))

    def migrate(self) -> None:
        """Bring the schema to the newest revision (Alembic scripts shipped in the package)."""
        assert self.engine is not None
        cfg = AlembicConfig()
        cfg.set_main_option("script_location", str(MIGRATIONS))
        with self.engine.begin() as conn:
            before = MigrationContext.configure(conn).get_current_revision()
            cfg.attributes["connection"] = conn
            command.upgrade(cfg, "head")
            after = MigrationContext.configure(conn).get_current_revision()
        if before != after:
            log.info("database schema migrated from %s to %s", before or "empty", after)

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

    def add_event(self, ev: Event) -> None:
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
                if not self._transient(e) and batch.tries >= _MAX_DATA_RETRIES:
                    self._write_salvage(batch)  # keep what the database accepts, drop the rest
                    self._committed_add(batch.items)
                    batch = _Batch()
                    self.failing_since = None
                    continue
                if self._closing.is_set():
                    if time.monotonic() >= self._close_deadline:
                        log.error("storage: %d writes lost at shutdown: %s", batch.items, self.last_error)
                        self._committed_add(batch.items)
                        return
                    time.sleep(min(delay, 1.0))
                else:
                    self._closing.wait(delay)
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
        """Write each kind of row on its own, so one refused kind does not lose the others."""
        parts = [
            ("inventory", _Batch.only(b, "miners")),
            ("identity history", _Batch.only(b, "identities")),
            ("events", _Batch.only(b, "events")),
            ("rollups", _Batch.only(b, "rollups")),
            ("prices", _Batch.only(b, "prices")),
            ("latest state", _Batch.only(b, "latest")),
        ]
        for name, part in parts:
            if not part.has_rows():
                continue
            try:
                self._write(part)
            except Exception as e:
                log.error("storage: dropping %s rows the database refuses: %s", name, str(e).splitlines()[0])

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
        now = datetime.now(UTC)
        with self.engine.begin() as conn:
            if b.miners:
                _upsert_miners(conn, list(b.miners.values()), now)
            if b.identities:
                conn.execute(insert(_IDENTITY), b.identities)
            if b.events:
                conn.execute(insert(_EVENTS), b.events)
            if b.rollups:
                rows = [
                    {
                        "miner_id": mid,
                        "hour_start": _dt(hour),
                        "energy_kwh": a[0],
                        "hashes_th": a[1],
                        "uptime_s": a[2],
                        "samples": int(a[3]),
                        "revenue": a[4],
                        "cost": a[5],
                        "currency": a[6],
                        "power_source": a[7],
                    }
                    for (mid, hour), a in b.rollups.items()
                ]
                _upsert(
                    conn,
                    _ROLLUPS,
                    rows,
                    ["miner_id", "hour_start"],
                    add=("energy_kwh", "hashes_th", "uptime_s", "samples"),
                    add_nullable=("revenue", "cost"),
                    merge_source=("power_source",),
                )
            if b.prices:
                stmt = _insert_for(conn)(_PRICES).on_conflict_do_nothing(index_elements=list(_PRICE_KEY))
                conn.execute(stmt, list(b.prices.values()))
            latest = list(b.latest.values())
            for i in range(0, len(latest), 1000):  # chunks keep the transient row dicts small
                _upsert(conn, _LATEST, [_latest_row(r) for r in latest[i : i + 1000]], ["miner_id"])

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

    # --- reading (blocking; from async code use asyncio.to_thread) -----------------------------------------
    def load_inventory(self) -> list[InventoryRow]:
        assert self.engine is not None
        out = []
        with self.engine.connect() as conn:
            for r in conn.execute(select(_MINERS)).mappings():
                ident = None
                if r["vendor"] or r["model"]:
                    ident = Identity(
                        vendor=r["vendor"],
                        model=r["model"],
                        firmware=r["firmware"],
                        serial=r["serial"],
                        mac=r["mac"],
                        hostname=r["hostname"],
                        driver=r["driver"],
                        host=r["host"],
                    )
                out.append(
                    InventoryRow(
                        r["id"],
                        r["host"],
                        r["api_port"],
                        r["source"],
                        r["site"],
                        r["rack"],
                        r["position"],
                        r["nominal_power_w"],
                        r["driver"],
                        ident,
                    )
                )
        return out

    def _rows(self, stmt: Any) -> list[dict[str, Any]]:
        assert self.engine is not None
        with self.engine.connect() as conn:
            return [_plain(dict(r)) for r in conn.execute(stmt).mappings()]

    def miners(self) -> list[dict[str, Any]]:
        return self._rows(select(_MINERS).order_by(_MINERS.c.id))

    def latest(self, miner_id: str | None = None) -> list[dict[str, Any]]:
        return self._rows(_filtered(select(_LATEST).order_by(_LATEST.c.miner_id), _LATEST, miner_id=miner_id))

    def identity_history(self, miner_id: str) -> list[dict[str, Any]]:
        """Oldest first."""
        t = _IDENTITY
        return self._rows(select(t).where(t.c.miner_id == miner_id).order_by(t.c.seen_at, t.c.id))

    def events(
        self, *, limit: int = 100, miner_id: str | None = None, kind: str | None = None
    ) -> list[dict[str, Any]]:
        """Newest first."""
        t = _EVENTS
        stmt = select(t).order_by(t.c.at.desc(), t.c.id.desc()).limit(limit)
        return self._rows(_filtered(stmt, t, miner_id=miner_id, kind=kind))

    def prices(self, *, kind: str | None = None, since: float | None = None) -> list[dict[str, Any]]:
        """Oldest first."""
        t = _PRICES
        stmt = select(t).order_by(t.c.start, t.c.id)
        return self._rows(_filtered(stmt, t, kind=kind, since=("start", since)))

    def rollups(self, *, miner_id: str | None = None, since: float | None = None) -> list[dict[str, Any]]:
        t = _ROLLUPS
        stmt = select(t).order_by(t.c.hour_start, t.c.miner_id)
        return self._rows(_filtered(stmt, t, miner_id=miner_id, since=("hour_start", since)))


def _filtered(stmt: Any, table: Table, since: tuple[str, float | None] = ("", None), **equal: Any) -> Any:
    """`stmt` where each given column equals its value (None: no condition), and `since` column >= time."""
    for column, value in equal.items():
        if value is not None:
            stmt = stmt.where(table.c[column] == value)
    column, ts = since
    return stmt if ts is None else stmt.where(table.c[column] >= _dt(ts))


def _merge_source(old: str, new: str) -> str:
    return old if new in ("", old) else new if not old else MIXED


def _plain(row: dict[str, Any]) -> dict[str, Any]:
    """Datetimes become unix seconds, so rows read the same from SQLite and PostgreSQL."""
    return {k: _ts(v) if isinstance(v, datetime) else v for k, v in row.items()}


def _sqlite_pragmas(busy_ms: int) -> Callable[[Any, Any], None]:
    def on_connect(dbapi_conn: Any, _record: Any) -> None:
        cur = dbapi_conn.cursor()
        cur.execute("PRAGMA journal_mode=WAL")
        cur.execute("PRAGMA synchronous=NORMAL")  # durable at checkpoints; WAL keeps the file consistent
        cur.execute(f"PRAGMA busy_timeout={busy_ms}")
        cur.close()

    return on_connect


def _insert_for(conn: Any) -> Any:
    if conn.dialect.name == "postgresql":
        from sqlalchemy.dialects.postgresql import insert as dialect_insert
    else:
        from sqlalchemy.dialects.sqlite import insert as dialect_insert
    return dialect_insert


def _upsert(
    conn: Any,
    table: Table,
    rows: list[dict[str, Any]],
    keys: list[str],
    *,
    add: tuple[str, ...] = (),
    add_nullable: tuple[str, ...] = (),
    merge_source: tuple[str, ...] = (),
) -> None:
    """Insert, or on a key conflict update the other columns; those in `add` are summed instead.

    `add_nullable` columns are summed where both sides have a value; NULL + x is x, x + NULL is x.
    `merge_source` columns keep one value while both sides agree, else become "mixed" ("" is no value).
    """
    stmt = _insert_for(conn)(table)
    update: dict[str, Any] = {}
    for c in rows[0]:
        if c in keys:
            continue
        old, new = table.c[c], stmt.excluded[c]
        if c in add:
            update[c] = old + new
        elif c in add_nullable:
            update[c] = case((new.is_(None), old), else_=func.coalesce(old, 0.0) + new)
        elif c in merge_source:
            update[c] = case((old == new, old), (new == "", old), (old == "", new), else_=MIXED)
        else:
            update[c] = new
    conn.execute(stmt.on_conflict_do_update(index_elements=keys, set_=update), rows)


def _upsert_miners(conn: Any, rows: list[dict[str, Any]], now: datetime) -> None:
    # Rows carry different subsets of columns (labels, identity); each subset updates only its own.
    groups: dict[tuple[str, ...], list[dict[str, Any]]] = {}
    for r in rows:
        groups.setdefault(tuple(sorted(r)), []).append(r)
    insert_ = _insert_for(conn)
    for keys, group in groups.items():
        full = [_MINER_DEFAULTS | r | {"first_seen": now, "updated_at": now} for r in group]
        stmt = insert_(_MINERS)
        update = {c: stmt.excluded[c] for c in (*keys, "updated_at") if c != "id"}
        conn.execute(stmt.on_conflict_do_update(index_elements=["id"], set_=update), full)


def _latest_row(r: tuple[Any, ...]) -> dict[str, Any]:
    mid, health, snap, failures, last_error, last_ok_at = r
    snap_: Snapshot | None = snap
    row: dict[str, Any] = {
        "miner_id": mid,
        "health": str(health.value if isinstance(health, Health) else health),
        "failures": failures,
        "last_error": last_error[:500],
        "last_ok_at": _dt(last_ok_at),
        "polled_at": None,
        "is_mining": None,
        "mode": "",
        "hashrate_ths": None,
        "hashrate_avg_ths": None,
        "expected_hashrate_ths": None,
        "power_w": None,
        "power_limit_w": None,
        "temp_c": None,
        "env_temp_c": None,
        "fans_min_rpm": None,
        "faults": 0,
        "uptime_s": None,
        "pool_url": "",
    }
    if snap_ is not None:
        fans = [f.rpm for f in snap_.fans if f.rpm is not None]
        pool = next((p.url for p in snap_.pools if p.active), "")
        row.update(
            polled_at=_dt(snap_.polled_at or last_ok_at),
            is_mining=snap_.is_mining,
            mode=str(snap_.mode),
            hashrate_ths=snap_.hashrate_ths,
            hashrate_avg_ths=snap_.hashrate_avg_ths,
            expected_hashrate_ths=snap_.expected_hashrate_ths,
            power_w=snap_.power_w,
            power_limit_w=snap_.power_limit_w,
            temp_c=snap_.temp_c,
            env_temp_c=snap_.env_temp_c,
            fans_min_rpm=min(fans) if fans else None,
            faults=len(snap_.errors),
            uptime_s=snap_.uptime_s,
            pool_url=pool,
        )
    return row
