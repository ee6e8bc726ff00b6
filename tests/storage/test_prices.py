"""The price history table and per-hour power sources, on SQLite and PostgreSQL, and from the daemon."""

from __future__ import annotations

from datetime import UTC, datetime
from pathlib import Path

import pytest

from fleetd.config import parse_config
from fleetd.daemon.core import Daemon
from fleetd.daemon.rollups import RollupRow
from fleetd.sim.fleet import Fleet, Group
from fleetd.storage.store import Storage
from tests.conftest import web_port
from tests.daemon.conftest import until

HOUR = 1_795_300_000.0 // 3600 * 3600


def test_price_points_are_stored_once_with_their_interval(db_url: str) -> None:
    store = Storage(db_url)
    store.open()
    try:
        common = {"unit": "USD/MWh", "currency": "USD", "location": "HB_NORTH"}
        store.add_price("electricity", source="ercot", start=HOUR, end=HOUR + 900, value=31.5, **common)
        store.add_price(
            "electricity", source="ercot", start=HOUR, end=HOUR + 900, value=99.0, **common
        )  # dup
        store.add_price(
            "electricity", source="ercot", start=HOUR + 900, end=HOUR + 1800, value=-2.0, **common
        )
        store.add_price(
            "hashprice",
            source="static",
            start=HOUR + 5,
            end=None,
            value=50.0,
            unit="USD/PH/day",
            currency="USD",
        )
        assert store.flush(10)
        # the same point again in a later batch is ignored too
        store.add_price("electricity", source="ercot", start=HOUR, end=HOUR + 900, value=12.0, **common)
        assert store.flush(10)
        el = store.prices(kind="electricity")
        assert [(p["start"], p["end"], p["value"]) for p in el] == [
            (HOUR, HOUR + 900, 31.5),
            (HOUR + 900, HOUR + 1800, -2.0),
        ]
        assert el[0]["location"] == "HB_NORTH" and el[0]["unit"] == "USD/MWh" and el[0]["fetched_at"]
        (hp,) = store.prices(kind="hashprice")
        assert (hp["source"], hp["end"], hp["value"], hp["unit"]) == ("static", None, 50.0, "USD/PH/day")
        assert len(store.prices(since=HOUR + 1)) == 2
    finally:
        store.close()


def test_power_source_of_an_hour_merges_to_mixed(db_url: str) -> None:
    store = Storage(db_url)
    store.open()
    try:
        store.add_rollups([RollupRow("m1", HOUR, 0.5, 1.0, 1.0, 1, power_source="catalog")])
        store.add_rollups([RollupRow("m2", HOUR, 0.5, 1.0, 1.0, 1, power_source="measured")])
        assert store.flush(10)
        store.add_rollups([RollupRow("m1", HOUR, 0.5, 1.0, 1.0, 1, power_source="catalog")])
        store.add_rollups([RollupRow("m2", HOUR, 0.5, 1.0, 1.0, 1, power_source="catalog-sleep")])
        assert store.flush(10)
        got = {r["miner_id"]: (r["energy_kwh"], r["power_source"]) for r in store.rollups()}
        assert got == {"m1": (1.0, "catalog"), "m2": (1.0, "mixed")}
    finally:
        store.close()


async def test_daemon_stores_prices_and_prices_rollups(db_url: str, tmp_path: Path) -> None:
    port = web_port()
    host = "127.22.200.1"
    cfg = parse_config(
        {
            "polling": {"interval_s": 0.2, "jitter_s": 0, "timeout_s": 1},
            "storage": {"url": db_url},
            "miners": [{"host": host, "web_port": port}],
            "economics": {
                "pool_fee": 0.0,
                "hashprice": [{"kind": "static", "per_ph_day": 50.0}],
                "tariff": {"kind": "flat", "price_per_kwh": 0.05},
            },
        }
    )
    async with Fleet([Group("Antminer S19 Pro", 1, host, {"web": port}, ramp_s=0, jitter=0)]):
        d = Daemon(cfg, state_dir=tmp_path)
        await d.start()
        try:
            await until(lambda: d.poller.cycles >= 5 and d.state.up() == 1, what="a few cycles")
            rec = d.state.miners[host]
            assert rec.economics is not None and rec.economics.revenue_per_day
            assert d.state.economics is not None and d.state.economics.total.units == 1
        finally:
            await d.stop()
    store = Storage(db_url)
    store.open()
    try:
        kinds = {(p["kind"], p["source"]) for p in store.prices()}
        assert ("hashprice", "static") in kinds and ("electricity", "flat") in kinds
        rows = store.rollups(miner_id=host)
        assert rows and all(r["cost"] is not None and r["revenue"] is not None for r in rows)
        energy = sum(r["energy_kwh"] for r in rows)
        assert energy > 0 and sum(r["cost"] for r in rows) == pytest.approx(energy * 0.05, rel=0.01)
        assert {r["power_source"] for r in rows} == {"catalog"}  # the stock S19 reports no power
    finally:
        store.close()


def test_upgrade_from_0001_keeps_rollups(db_url: str) -> None:
    from alembic import command
    from alembic.config import Config as AlembicConfig
    from sqlalchemy import DateTime, column, create_engine, insert, table

    from fleetd.storage.store import MIGRATIONS, normalize_url

    engine = create_engine(normalize_url(db_url))
    cfg = AlembicConfig()
    cfg.set_main_option("script_location", str(MIGRATIONS))
    with engine.begin() as conn:
        cfg.attributes["connection"] = conn
        command.upgrade(cfg, "0001")  # a database written by the first release
        old = table(  # the table as 0001 made it, with SQLAlchemy's own datetime storage
            "hourly_rollups",
            *(column(c) for c in ("miner_id", "energy_kwh", "hashes_th", "uptime_s", "samples", "currency")),
            column("hour_start", DateTime(timezone=True)),
        )
        row = {"miner_id": "m1", "energy_kwh": 1.5, "hashes_th": 2.0, "uptime_s": 3.0, "samples": 4}
        conn.execute(
            insert(old).values(row | {"currency": "", "hour_start": datetime.fromtimestamp(HOUR, UTC)})
        )
    engine.dispose()
    store = Storage(db_url)
    store.open()  # migrates to the newest revision
    try:
        (row,) = store.rollups()
        assert (row["energy_kwh"], row["samples"], row["power_source"]) == (1.5, 4, "")
        store.add_rollups([RollupRow("m1", HOUR, 0.5, 0.0, 0.0, 1, power_source="catalog")])
        assert store.flush(10)
        (row,) = store.rollups()
        assert (row["energy_kwh"], row["power_source"]) == (2.0, "catalog")
        assert store.prices() == []
    finally:
        store.close()
