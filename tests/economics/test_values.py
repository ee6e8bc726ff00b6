"""Price history replay and last-good tracking."""

from __future__ import annotations

import pytest

from fleetd.economics.values import HashpriceValue, LastGood, PriceHistory, PricePoint


def pp(start: float, price: float, length: float = 900.0) -> PricePoint:
    return PricePoint(start, start + length, price, "USD", "test")


def test_history_replays_by_time_and_replaces_by_start() -> None:
    h = PriceHistory()
    assert h.add([pp(1800, 30.0), pp(0, 10.0), pp(900, 20.0)]) == 3
    assert h.add([pp(900, 25.0)]) == 0  # a correction replaces the published value
    assert [p.per_mwh for p in h.between(0, 2700)] == [10.0, 25.0, 30.0]
    assert h.at(0).per_mwh == 10.0 and h.at(899.9).per_mwh == 10.0 and h.at(900).per_mwh == 25.0
    assert h.at(2700) is None and h.at(-1) is None
    assert h.latest().per_mwh == 30.0 and len(h) == 3
    h.add([pp(5000, 50.0)])
    assert h.at(3000) is None  # a gap is a gap, not the previous price


def test_history_is_bounded() -> None:
    h = PriceHistory(max_points=4)
    h.add([pp(i * 900, float(i)) for i in range(10)])
    assert len(h) == 4 and h.between(0, 1e9)[0].per_mwh == 6.0


def test_last_good_keeps_value_and_age() -> None:
    t = LastGood[HashpriceValue](max_age_s=600)
    r = t.reading(1000.0)
    assert r.missing and r.stale and r.error == "no value yet"
    t.ok(HashpriceValue(45.0, "USD", 1000.0, "x"), 1000.0)
    assert t.reading(1100.0).usable and t.reading(1100.0).age_s == 100.0
    t.fail("x: HTTP 500")
    r = t.reading(1700.0)
    assert r.value.per_ph_day == 45.0 and r.stale and r.age_s == 700.0 and r.error == "x: HTTP 500"
    assert t.failures == 1
    assert r.value.unit == "USD/PH/day"
    assert pp(0, 60.0).per_kwh == pytest.approx(0.06) and pp(0, 1).unit == "USD/MWh"
