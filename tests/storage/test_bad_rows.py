"""One miner's impossible figures never cost the others their rows: stored as NULL where a column cannot
hold them, and a row the database refuses is dropped alone (and counted), never its batch's other rows."""

from __future__ import annotations

import pytest

from fleetd.daemon.events import Event, EventKind
from fleetd.daemon.rollups import RollupRow
from fleetd.daemon.state import Health
from fleetd.model import Fan, Pool, Snapshot
from fleetd.storage import store as store_module
from fleetd.storage.store import Storage
from tests.exporters.synthetic import BAD_FLOATS, bad_snapshot, raising_snapshot

HOUR = 1_795_300_000.0 // 3600 * 3600
BIG = 10**30


def _open(url: str, **kw: object) -> Storage:
    store = Storage(url, **kw)  # type: ignore[arg-type]
    store.open()
    return store


def _good(n: int) -> list[tuple[object, ...]]:
    return [
        (
            f"m{i:03d}",
            Health.UP,
            Snapshot(
                hashrate_ths=100.0 + i,
                power_w=3000.0 + i,
                is_mining=True,
                fans=(Fan(0, 5000 + i),),
                pools=(Pool(0, "stratum+tcp://pool:3333", active=True),),
                uptime_s=600 + i,
                polled_at=HOUR,
            ),
            0,
            "",
            HOUR,
        )
        for i in range(n)
    ]


def _check_good(store: Storage, n: int) -> None:
    rows = {r["miner_id"]: r for r in store.latest()}
    for i in range(n):
        r = rows[f"m{i:03d}"]
        assert (r["hashrate_ths"], r["power_w"], r["fans_min_rpm"], r["uptime_s"]) == (
            100.0 + i, 3000.0 + i, 5000 + i, 600 + i
        )  # fmt: skip


def test_latest_state_of_impossible_figures_is_null_and_the_others_are_written(db_url: str) -> None:
    store = _open(db_url, latest_every_s=0)
    try:
        bad = [(f"bad-{k}", Health.UP, bad_snapshot(v, HOUR), 0, "", HOUR) for k, v in BAD_FLOATS.items()]
        store.set_latest(_good(30)[:15] + bad + _good(30)[15:])
        assert store.flush(30)
        _check_good(store, 30)
        rows = {r["miner_id"]: r for r in store.latest()}
        for mid, *_ in bad:
            r = rows[mid]
            assert r["health"] == "up" and r["hashrate_ths"] is None and r["uptime_s"] is None, r
            assert r["power_w"] is None and r["fans_min_rpm"] is None, r
        assert store.dropped == 0
    finally:
        store.close()


def test_a_refused_row_is_dropped_alone_and_counted(db_url: str) -> None:
    store = _open(db_url, latest_every_s=0)
    try:
        unreadable = ("bad-raising", Health.UP, raising_snapshot(HOUR), 0, "", HOUR)
        overflow = ("bad-failures", Health.DOWN, None, BIG, "", HOUR)  # 10**30 fits no column
        good = _good(40)
        store.set_latest([*good[:10], unreadable, *good[10:30], overflow, *good[30:]])
        store.add_rollups(
            [RollupRow("m001", HOUR, 0.5, 10.0, 30.0, 2), RollupRow("bad", HOUR, 0.5, 1, 1, BIG)]
        )
        store.add_event(Event(EventKind.STARTED, "kept"))
        assert store.flush(30)
        _check_good(store, 40)
        assert {r["miner_id"] for r in store.latest()} == {m for m, *_ in good}
        assert [r["miner_id"] for r in store.rollups()] == ["m001"]
        assert [e["message"] for e in store.events()] == ["kept"]
        assert store.dropped == 3  # the unreadable snapshot, the overflowing counter, the overflowing rollup
        store.set_latest(good[:5])  # and writing goes on as usual
        assert store.flush(10) and store.dropped == 3
    finally:
        store.close()


def test_refused_rows_do_not_stretch_the_shutdown(db_url: str, monkeypatch: pytest.MonkeyPatch) -> None:
    """Batch after batch of refused rows used to grow the outage backoff (0.5 s doubling up to 30 s), so that
    the writes pending at shutdown were still waiting when close() gave up: ~18 s and writes lost."""
    store = _open(db_url, latest_every_s=0)
    overflow = ("bad-failures", Health.DOWN, None, BIG, "", HOUR)
    for _ in range(3):  # three batches in a row refused for their content
        store.set_latest([overflow])
        assert store.flush(30)
    store.set_latest([*_good(5), overflow])
    store.add_event(Event(EventKind.STOPPED, "pending at shutdown"))
    store.close(timeout=10.0)  # everything pending written (or dropped alone) within close()'s own limit
    assert store.dropped == 4  # the four refused rows, nothing lost at shutdown
    reader = _open(db_url)
    try:
        _check_good(reader, 5)
        assert [e["message"] for e in reader.events()] == ["pending at shutdown"]
    finally:
        reader.close()


def test_a_kind_refused_throughout_is_not_retried_row_by_row(
    db_url: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(store_module, "_SALVAGE_FAILURES_MAX", 8)
    store = _open(db_url)
    try:
        from sqlalchemy import text

        assert store.engine is not None
        with store.engine.begin() as conn:
            conn.execute(text("DROP TABLE events"))
        for i in range(200):
            store.add_event(Event(EventKind.STARTED, f"lost {i}"))
        store.upsert_miner({"id": "m1", "host": "10.0.0.1"})  # same batch: must survive
        assert store.flush(30)
        assert [m["id"] for m in store.miners()] == ["m1"] and store.dropped == 200
    finally:
        store.close()
