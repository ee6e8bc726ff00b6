"""One write transaction: the batch that merges queued writes, and the upserts that store it."""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any

from sqlalchemy import Engine, Table, case, func, insert

from fleetd.health.history import SUMS, HealthHour
from fleetd.model import Snapshot
from fleetd.numbers import count, hashrate_ths, power_w, temp_c
from fleetd.records import MIXED, Health, RollupRow
from fleetd.storage.schema import (
    _CURTAIL_FLEET,
    _CURTAIL_LOG,
    _CURTAIL_STATE,
    _EVENTS,
    _HEALTH,
    _IDENTITY,
    _LATEST,
    _MINERS,
    _PRICES,
    _ROLLUPS,
    _dt,
)

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


class _Batch:
    """Writes merged while waiting for the database."""

    __slots__ = (
        "curtail_fleet",
        "curtail_log",
        "curtail_state",
        "events",
        "health",
        "identities",
        "items",
        "latest",
        "miners",
        "prices",
        "rollups",
        "tries",
    )

    def __init__(self) -> None:
        self.miners: dict[str, dict[str, Any]] = {}
        self.identities: list[dict[str, Any]] = []
        self.events: list[dict[str, Any]] = []
        self.rollups: dict[tuple[str, float], list[Any]] = {}
        self.latest: dict[str, tuple[Any, ...]] = {}
        self.prices: dict[tuple[Any, ...], dict[str, Any]] = {}
        self.curtail_state: dict[str, dict[str, Any]] = {}  # newest row per miner
        self.curtail_log: list[dict[str, Any]] = []
        self.curtail_fleet: list[dict[str, Any]] | None = None  # the newest set of rules in force (all rows)
        self.health: dict[tuple[str, float], HealthHour] = {}  # summed per miner and hour
        self.items = 0
        self.tries = 0

    def __bool__(self) -> bool:
        return bool(self.items or self.latest)

    def has_rows(self) -> bool:
        return bool(
            self.miners
            or self.identities
            or self.events
            or self.rollups
            or self.latest
            or self.prices
            or self.curtail_state
            or self.curtail_log
            or self.curtail_fleet is not None
            or self.health
        )

    def row_count(self) -> int:
        """Rows this batch would write."""
        return len(self.curtail_fleet or ()) + sum(
            len(getattr(self, f))
            for f in (
                "miners",
                "identities",
                "events",
                "rollups",
                "latest",
                "prices",
                "curtail_state",
                "curtail_log",
                "health",
            )
        )

    @staticmethod
    def only(b: _Batch, field: str, rows: Any = None) -> _Batch:
        """A batch of `b`'s rows of one kind (or of `rows`, some of them, of the same container type)."""
        part = _Batch()
        setattr(part, field, getattr(b, field) if rows is None else rows)
        return part

    def halves(self, field: str) -> tuple[_Batch, _Batch]:
        """This batch's rows of one kind split in two batches (to find the rows a database refuses)."""
        rows = getattr(self, field)
        if isinstance(rows, dict):
            items = list(rows.items())
            mid = len(items) // 2
            return _Batch.only(self, field, dict(items[:mid])), _Batch.only(self, field, dict(items[mid:]))
        mid = len(rows) // 2
        return _Batch.only(self, field, rows[:mid]), _Batch.only(self, field, rows[mid:])

    def add(self, kind: str, payload: Any) -> None:
        self.items += 1
        if kind == "miner":
            self.miners.setdefault(payload["id"], {}).update(payload)
        elif kind == "identity":
            self.identities.append(payload)
        elif kind == "event":
            self.events.append(payload)
        elif kind == "curtail_state":
            self.curtail_state[payload["miner_id"]] = payload
        elif kind == "curtail_log":
            self.curtail_log.append(payload)
        elif kind == "curtail_fleet":
            self.curtail_fleet = payload
        elif kind == "price":
            self.prices.setdefault(tuple(payload[k] for k in _PRICE_KEY), payload)
        elif kind == "health":
            h: HealthHour = payload
            old = self.health.get((h.miner_id, h.hour_start))
            self.health[(h.miner_id, h.hour_start)] = h if old is None else old.merged(h)
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


def write_batch(engine: Engine, b: _Batch) -> None:
    """Write one batch in one transaction."""
    now = datetime.now(UTC)
    with engine.begin() as conn:
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
        if b.health:
            rows = [h.to_row() | {"hour_start": _dt(h.hour_start)} for h in b.health.values()]
            _upsert(conn, _HEALTH, rows, ["miner_id", "hour_start"], add=SUMS, keep_old=("board_worst",))
        if b.prices:
            stmt = _insert_for(conn)(_PRICES).on_conflict_do_nothing(index_elements=list(_PRICE_KEY))
            conn.execute(stmt, list(b.prices.values()))
        if b.curtail_state:
            _upsert(conn, _CURTAIL_STATE, list(b.curtail_state.values()), ["miner_id"])
        if b.curtail_log:
            conn.execute(insert(_CURTAIL_LOG), b.curtail_log)
        if b.curtail_fleet is not None:
            conn.execute(_CURTAIL_FLEET.delete())
            if b.curtail_fleet:
                conn.execute(insert(_CURTAIL_FLEET), b.curtail_fleet)
        latest = list(b.latest.values())
        for i in range(0, len(latest), 1000):  # chunks keep the transient row dicts small
            _upsert(conn, _LATEST, [_latest_row(r) for r in latest[i : i + 1000]], ["miner_id"])


def _merge_source(old: str, new: str) -> str:
    return old if new in ("", old) else new if not old else MIXED


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
    keep_old: tuple[str, ...] = (),
) -> None:
    """Insert, or on a key conflict update the other columns; those in `add` are summed instead.

    `add_nullable` columns are summed where both sides have a value; NULL + x is x, x + NULL is x.
    `merge_source` columns keep one value while both sides agree, else become "mixed" ("" is no value).
    `keep_old` columns take the new value unless it is NULL.
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
        elif c in keep_old:
            update[c] = func.coalesce(new, old)
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
        # Impossible figures (NaN, inf, out of range, beyond a 64-bit column) are stored as unknown (NULL).
        fans = [rpm for f in snap_.fans if (rpm := count(f.rpm)) is not None]
        pool = next((p.url for p in snap_.pools if p.active), "")
        row.update(
            polled_at=_dt(snap_.polled_at or last_ok_at),
            is_mining=snap_.is_mining,
            mode=str(snap_.mode),
            hashrate_ths=hashrate_ths(snap_.hashrate_ths),
            hashrate_avg_ths=hashrate_ths(snap_.hashrate_avg_ths),
            expected_hashrate_ths=hashrate_ths(snap_.expected_hashrate_ths),
            power_w=power_w(snap_.power_w),
            power_limit_w=power_w(snap_.power_limit_w),
            temp_c=temp_c(snap_.temp_c),
            env_temp_c=temp_c(snap_.env_temp_c),
            fans_min_rpm=min(fans) if fans else None,
            faults=len(snap_.errors),
            uptime_s=count(snap_.uptime_s),
            pool_url=pool,
        )
    return row
