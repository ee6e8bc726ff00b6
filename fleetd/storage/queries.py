"""The reads (blocking; from async code use asyncio.to_thread): inventory at start, rows for CLI and API."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

from sqlalchemy import Engine, Table, select

from fleetd.model import Identity
from fleetd.storage.schema import (
    _CURTAIL_CONTROLS,
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


def _ts(value: datetime | None) -> float | None:
    if value is None:
        return None
    return (value if value.tzinfo else value.replace(tzinfo=UTC)).timestamp()


class StorageQueries:
    """The read side of Storage (mixed into it)."""

    engine: Engine | None

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

    def health_hours(
        self, *, since: float | None = None, miner_id: str | None = None
    ) -> list[dict[str, Any]]:
        """Hourly health sums (hour_start as unix seconds), oldest first."""
        t = _HEALTH
        stmt = select(t).order_by(t.c.hour_start, t.c.miner_id)
        return self._rows(_filtered(stmt, t, miner_id=miner_id, since=("hour_start", since)))

    def curtail_states(self) -> list[dict[str, Any]]:
        """Every miner's stored curtailment state (times as unix seconds)."""
        return self._rows(select(_CURTAIL_STATE).order_by(_CURTAIL_STATE.c.miner_id))

    def curtail_controls(self) -> list[dict[str, Any]]:
        """The operator's stored curtailment controls: id, kind, body (JSON), updated_at (unix seconds)."""
        return self._rows(select(_CURTAIL_CONTROLS).order_by(_CURTAIL_CONTROLS.c.id))

    def curtail_fleet(self) -> dict[str, float]:
        """The stored fleet-level curtailment memory: rule name -> in force since (unix seconds)."""
        return {str(r["rule"]): float(r["since"]) for r in self._rows(select(_CURTAIL_FLEET))}

    def curtail_log(
        self, *, limit: int = 100, miner_id: str | None = None, kind: str | None = None
    ) -> list[dict[str, Any]]:
        """Newest first."""
        t = _CURTAIL_LOG
        stmt = select(t).order_by(t.c.at.desc(), t.c.id.desc()).limit(limit)
        return self._rows(_filtered(stmt, t, miner_id=miner_id, kind=kind))


def _filtered(stmt: Any, table: Table, since: tuple[str, float | None] = ("", None), **equal: Any) -> Any:
    """`stmt` where each given column equals its value (None: no condition), and `since` column >= time."""
    for column, value in equal.items():
        if value is not None:
            stmt = stmt.where(table.c[column] == value)
    column, ts = since
    return stmt if ts is None else stmt.where(table.c[column] >= _dt(ts))


def _plain(row: dict[str, Any]) -> dict[str, Any]:
    """Datetimes become unix seconds, so rows read the same from SQLite and PostgreSQL."""
    return {k: _ts(v) if isinstance(v, datetime) else v for k, v in row.items()}
