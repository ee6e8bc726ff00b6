"""The schema bootstrap: table handles, the engine (SQLite pragmas), Alembic migrations, URL helpers."""

from __future__ import annotations

import logging
from collections.abc import Callable
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from alembic import command
from alembic.config import Config as AlembicConfig
from alembic.runtime.migration import MigrationContext
from sqlalchemy import Engine, Table, create_engine, event
from sqlalchemy.engine import make_url

from fleetd.storage.tables import (
    CurtailControl,
    CurtailFleet,
    CurtailLogRecord,
    CurtailState,
    EventRecord,
    HealthHourly,
    HourlyRollup,
    IdentityRecord,
    LatestState,
    Miner,
    PriceRecord,
)

log = logging.getLogger("fleetd.storage")

MIGRATIONS = Path(__file__).parent / "migrations"
_MINERS: Table = Miner.__table__  # type: ignore[attr-defined]
_IDENTITY: Table = IdentityRecord.__table__  # type: ignore[attr-defined]
_LATEST: Table = LatestState.__table__  # type: ignore[attr-defined]
_ROLLUPS: Table = HourlyRollup.__table__  # type: ignore[attr-defined]
_EVENTS: Table = EventRecord.__table__  # type: ignore[attr-defined]
_PRICES: Table = PriceRecord.__table__  # type: ignore[attr-defined]
_CURTAIL_STATE: Table = CurtailState.__table__  # type: ignore[attr-defined]
_CURTAIL_LOG: Table = CurtailLogRecord.__table__  # type: ignore[attr-defined]
_CURTAIL_CONTROLS: Table = CurtailControl.__table__  # type: ignore[attr-defined]
_CURTAIL_FLEET: Table = CurtailFleet.__table__  # type: ignore[attr-defined]
_HEALTH: Table = HealthHourly.__table__  # type: ignore[attr-defined]


def _dt(ts: float | None) -> datetime | None:
    return None if ts is None else datetime.fromtimestamp(ts, UTC)


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


def connect(url_text: str, *, echo: bool, busy_timeout_s: float) -> Engine:
    """An engine for `url_text`; SQLite gets its folder made, WAL and `busy_timeout_s` on every connection."""
    url = make_url(url_text)
    kwargs: dict[str, Any] = {"echo": echo}
    if url.get_backend_name() == "sqlite":
        if url.database and url.database != ":memory:":
            Path(url.database).parent.mkdir(parents=True, exist_ok=True)
        kwargs["connect_args"] = {"check_same_thread": False, "timeout": busy_timeout_s}
    else:
        kwargs["pool_pre_ping"] = True
    engine = create_engine(url_text, **kwargs)
    if url.get_backend_name() == "sqlite":
        event.listen(engine, "connect", _sqlite_pragmas(int(busy_timeout_s * 1000)))
    return engine


def migrate(engine: Engine) -> None:
    """Bring the schema to the newest revision (Alembic scripts shipped in the package)."""
    cfg = AlembicConfig()
    cfg.set_main_option("script_location", str(MIGRATIONS))
    with engine.begin() as conn:
        before = MigrationContext.configure(conn).get_current_revision()
        cfg.attributes["connection"] = conn
        command.upgrade(cfg, "head")
        after = MigrationContext.configure(conn).get_current_revision()
    if before != after:
        log.info("database schema migrated from %s to %s", before or "empty", after)


def _sqlite_pragmas(busy_ms: int) -> Callable[[Any, Any], None]:
    def on_connect(dbapi_conn: Any, _record: Any) -> None:
        cur = dbapi_conn.cursor()
        cur.execute("PRAGMA journal_mode=WAL")
        cur.execute("PRAGMA synchronous=NORMAL")  # durable at checkpoints; WAL keeps the file consistent
        cur.execute(f"PRAGMA busy_timeout={busy_ms}")
        cur.close()

    return on_connect
