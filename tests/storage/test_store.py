"""Storage on SQLite and PostgreSQL: migrations, every table, batching, restart, errors retried."""

from __future__ import annotations

import sqlite3
import threading
import time
from pathlib import Path

import pytest
from sqlalchemy import inspect, text

from fleetd.daemon.events import Event, EventKind
from fleetd.daemon.rollups import RollupRow
from fleetd.daemon.state import Health
from fleetd.model import Fan, Identity, Pool, Snapshot
from fleetd.storage.store import Storage

S19 = Identity("antminer", "Antminer S19 Pro", firmware="2023-01", serial="SN1", mac="AA:BB", driver="am")
HOUR = 1_795_300_000.0 // 3600 * 3600


def _open(url: str, **kw: object) -> Storage:
    store = Storage(url, **kw)  # type: ignore[arg-type]
    store.open()
    return store


def test_migrations_create_every_table(db_url: str) -> None:
    store = _open(db_url)
    try:
        assert store.engine is not None
        names = set(inspect(store.engine).get_table_names())
        tables = {"miners", "identity_history", "latest_state", "hourly_rollups", "events", "alembic_version"}
        tables |= {"prices", "curtail_state", "curtail_log", "health_hourly"}
        tables |= {"curtail_controls", "curtail_fleet"}
        assert tables <= names
        with store.engine.connect() as conn:
            assert conn.execute(text("SELECT version_num FROM alembic_version")).scalar() == "0005"
        store.migrate()  # applying again is a no-op
    finally:
        store.close()


def test_curtailment_fleet_memory_is_replaced_as_a_whole(db_url: str) -> None:
    store = _open(db_url)
    try:
        store.set_curtail_fleet({"strike": HOUR, "failsafe": HOUR + 60})
        assert store.flush(10)
        assert store.curtail_fleet() == {"strike": HOUR, "failsafe": HOUR + 60}
        store.set_curtail_fleet({"failsafe": HOUR + 60})
        store.set_curtail_fleet({"strike": HOUR + 900})  # the newest set wins, in the same batch too
        assert store.flush(10)
        assert store.curtail_fleet() == {"strike": HOUR + 900}
        store.set_curtail_fleet({})
        assert store.flush(10) and store.curtail_fleet() == {}
    finally:
        store.close()


def test_roundtrip_of_every_table(db_url: str) -> None:
    store = _open(db_url)
    try:
        store.upsert_miner({"id": "m1", "host": "10.0.0.1", "site": "hall", "rack": "A", "source": "config"})
        store.add_identity("m1", "10.0.0.1", S19, "antminer", at=HOUR + 5)
        store.add_event(Event(EventKind.MINER_DOWN, "m1 is down", "m1", "warning", at=HOUR + 6))
        store.add_rollups([RollupRow("m1", HOUR, 0.5, 1000, 30, 2), RollupRow("m1", HOUR, 0.25, 10, 5, 1)])
        snap = Snapshot(
            hashrate_ths=110.0,
            power_w=3250.0,
            is_mining=True,
            fans=(Fan(0, 5800), Fan(1, 5600)),
            pools=(Pool(0, "stratum+tcp://pool:3333", active=True),),
            polled_at=HOUR + 7,
        )
        store.set_latest([("m1", Health.UP, snap, 0, "", HOUR + 7)])
        assert store.flush(10)

        (m,) = store.miners()
        assert (m["host"], m["site"], m["rack"], m["model"], m["serial"]) == (
            "10.0.0.1", "hall", "A", "Antminer S19 Pro", "SN1"
        )  # fmt: skip
        (h,) = store.identity_history("m1")
        assert (h["model"], h["firmware"]) == ("Antminer S19 Pro", "2023-01")
        assert h["seen_at"] == pytest.approx(HOUR + 5)
        (e,) = store.events()
        assert (e["kind"], e["miner_id"], e["level"]) == ("miner_down", "m1", "warning")
        (r,) = store.rollups(miner_id="m1")
        assert r["hour_start"] == pytest.approx(HOUR)
        assert (r["energy_kwh"], r["hashes_th"], r["uptime_s"], r["samples"]) == (0.75, 1010.0, 35.0, 3)
        assert r["revenue"] is None and r["cost"] is None
        (latest,) = store.latest()
        assert latest["health"] == "up" and latest["hashrate_ths"] == 110.0 and latest["fans_min_rpm"] == 5600
        assert latest["pool_url"] == "stratum+tcp://pool:3333"

        # Later writes top up rollups and replace latest state; labels update without losing identity.
        store.add_rollups([RollupRow("m1", HOUR, 0.25, 0.0, 0.0, 1, revenue=0.5, cost=0.02, currency="USD")])
        store.add_rollups([RollupRow("m1", HOUR, 0.0, 0.0, 0.0, 0, revenue=0.25, currency="USD")])
        store.set_latest([("m1", Health.DOWN, None, 3, "no answer", HOUR + 7)])
        store.upsert_miner({"id": "m1", "host": "10.0.0.1", "rack": "B"})
        assert store.flush(10)
        (r,) = store.rollups()
        assert r["energy_kwh"] == 1.0 and r["currency"] == "USD"
        assert r["revenue"] == pytest.approx(0.75) and r["cost"] == pytest.approx(0.02)
        (latest,) = store.latest("m1")
        assert latest["health"] == "down" and latest["last_error"] == "no answer"
        (m,) = store.miners()
        assert m["rack"] == "B" and m["model"] == "Antminer S19 Pro" and m["first_seen"] is not None
    finally:
        store.close()


def test_restart_keeps_inventory_and_history(db_url: str) -> None:
    store = _open(db_url)
    store.upsert_miner({"id": "m1", "host": "10.0.0.1", "source": "discovery", "api_port": 14028})
    store.add_identity("m1", "10.0.0.1", S19, "antminer")
    store.add_event(Event(EventKind.STARTED, "hello"))
    store.close()  # close flushes

    store = _open(db_url)
    try:
        (row,) = store.load_inventory()
        assert (row.id, row.source, row.api_port, row.driver) == ("m1", "discovery", 14028, "antminer")
        assert row.identity is not None and row.identity.key() == S19.key()
        assert len(store.identity_history("m1")) == 1
        assert [e["message"] for e in store.events()] == ["hello"]
    finally:
        store.close()


def test_enqueueing_never_blocks_and_batches(db_url: str) -> None:
    store = _open(db_url)
    try:
        t0 = time.perf_counter()
        for i in range(2000):
            store.add_event(Event(EventKind.MINER_UP, f"up {i}", f"m{i}"))
        store.set_latest([(f"m{i}", Health.UP, None, 0, "", None) for i in range(2000)])
        enqueue_s = time.perf_counter() - t0
        assert store.flush(30)
        assert len(store.events(limit=5000)) == 2000 and len(store.latest()) == 2000
        assert enqueue_s < 5.0  # generous: enqueueing is in-memory only
    finally:
        store.close()


def test_sqlite_uses_wal(tmp_path: Path) -> None:
    store = _open(f"sqlite:///{tmp_path / 'x.db'}")
    store.close()
    assert sqlite3.connect(tmp_path / "x.db").execute("PRAGMA journal_mode").fetchone()[0] == "wal"


def test_locked_database_is_reported_retried_and_nothing_lost(tmp_path: Path) -> None:
    path = tmp_path / "fleetd.db"
    errors: list[str] = []
    store = _open(f"sqlite:///{path}", busy_timeout_s=0.05, on_error=errors.append)
    try:
        locker = sqlite3.connect(path, timeout=0.05, isolation_level=None, check_same_thread=False)
        locker.execute("BEGIN EXCLUSIVE")  # another writer holds the database
        store.add_event(Event(EventKind.MINER_UP, "while locked", "m1"))
        store.set_latest([("m1", Health.UP, None, 0, "", None)])
        assert not store.flush(1.5)  # cannot write yet
        assert errors and "OperationalError" in errors[0] and len(errors) == 1  # reported once, not per retry
        assert store.failing_since is not None
        threading.Timer(0.2, locker.rollback).start()
        assert store.flush(30)
        assert store.failing_since is None
        assert [e["message"] for e in store.events()] == ["while locked"]
        assert store.latest("m1")[0]["health"] == "up"
        locker.close()
    finally:
        store.close()


def test_rejected_batch_is_dropped_after_retries(db_url: str) -> None:
    store = _open(db_url)
    try:
        assert store.engine is not None
        with store.engine.begin() as conn:
            conn.execute(text("DROP TABLE events"))
        store.add_event(Event(EventKind.STARTED, "lost"))
        store.upsert_miner({"id": "m1", "host": "10.0.0.1"})  # same batch: must survive
        assert store.flush(30)  # given up after a few tries, not retried forever
        store.upsert_miner({"id": "m2", "host": "10.0.0.2"})
        assert store.flush(10)
        assert [m["id"] for m in store.miners()] == ["m1", "m2"]
    finally:
        store.close()
