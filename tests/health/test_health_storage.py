"""Hourly health sums in SQLite and PostgreSQL: summed per miner and hour, read back as points."""

from __future__ import annotations

from collections.abc import Iterator

import pytest

from fleetd.health.history import SUMS, HealthHour, points
from fleetd.storage.store import Storage
from tests.storage.conftest import db_url  # noqa: F401 (the fixture: SQLite, and PostgreSQL where it runs)

HOUR = 1_795_300_000.0 // 3600 * 3600


@pytest.fixture
def store(db_url: str) -> Iterator[Storage]:  # noqa: F811
    s = Storage(db_url)
    s.open()
    try:
        yield s
    finally:
        s.close()


def _hour(mid: str, at: float, samples: int, temp: float, worst: int | None) -> HealthHour:
    sums = dict.fromkeys(SUMS, 0.0) | {
        "samples": samples,
        "chip_temp_sum_c": temp * samples,
        "chip_temp_n": samples,
        "restarts": 1,
    }
    return HealthHour(mid, at, tuple(sums[k] for k in SUMS), worst)


def test_health_hours_are_summed_and_read_back(store: Storage) -> None:
    store.add_health_hours([_hour("a", HOUR, 10, 70.0, 1), _hour("a", HOUR + 3600, 10, 71.0, 1)])
    store.add_health_hours([_hour("b", HOUR, 5, 60.0, None)])
    assert store.flush()
    store.add_health_hours([_hour("a", HOUR, 10, 72.0, None)])  # a later flush of the same hour
    assert store.flush()
    rows = store.health_hours()
    assert [(r["miner_id"], r["hour_start"], r["samples"]) for r in rows] == [
        ("a", HOUR, 20),
        ("b", HOUR, 5),
        ("a", HOUR + 3600, 10),
    ]
    a = points(rows)["a"]
    assert a[0].chip_temp_c == pytest.approx(71.0) and a[0].restarts == 2 and a[0].board_worst == 1
    assert [r["miner_id"] for r in store.health_hours(since=HOUR + 1)] == ["a"]
    assert len(store.health_hours(miner_id="b")) == 1
