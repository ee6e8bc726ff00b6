"""Flat and time-of-use tariffs, and the OpenEI URDB import."""

from __future__ import annotations

import copy
from datetime import UTC, date, datetime
from zoneinfo import ZoneInfo

import pytest

from fleetd.economics.tariffs import FlatTariff, TouRule, tou_from_rules
from fleetd.economics.urdb import UrdbError, fixed_charge_per_day, tariff_from_urdb

DENVER = ZoneInfo("America/Denver")


def at(y: int, mo: int, d: int, h: int, minute: int = 0, tz: ZoneInfo = DENVER) -> float:
    return datetime(y, mo, d, h, minute, tzinfo=tz).timestamp()


def summer_peak():
    return tou_from_rules(
        {"offpeak": 40.0, "shoulder": 70.0, "peak": 110.0},
        [
            TouRule("shoulder", days="weekday", hours=tuple(range(7, 22))),
            TouRule("peak", months=(6, 7, 8, 9), days="weekday", hours=(14, 15, 16, 17, 18)),
            TouRule("shoulder", months=(12,), days="weekend", hours=(18, 19)),
        ],
        "offpeak",
        timezone="America/Denver",
        holidays=[date(2025, 7, 4)],
    )


def test_flat_tariff() -> None:
    p = FlatTariff(60.0).price_at(1_700_000_123.0)
    assert p.per_mwh == 60.0 and p.per_kwh == pytest.approx(0.06)
    assert p.covers(1_700_000_123.0) and p.end - p.start == 3600


def test_tou_month_by_hour_weekday_weekend() -> None:
    t = summer_peak()
    assert t.price_at(at(2025, 7, 15, 15)).per_mwh == 110.0  # Tuesday in July, 15:00 local
    assert t.price_at(at(2025, 7, 15, 15)).source == "tou:peak"
    assert t.price_at(at(2025, 7, 15, 13, 59)).per_mwh == 70.0
    assert t.price_at(at(2025, 7, 15, 19)).per_mwh == 70.0
    assert t.price_at(at(2025, 7, 15, 23)).per_mwh == 40.0
    assert t.price_at(at(2025, 7, 19, 15)).per_mwh == 40.0  # Saturday
    assert t.price_at(at(2025, 1, 14, 15)).per_mwh == 70.0  # January weekday: no peak
    assert t.price_at(at(2025, 12, 13, 18)).per_mwh == 70.0  # December weekend evening
    assert t.price_at(at(2025, 12, 15, 18)).per_mwh == 70.0  # December weekday evening (shoulder rule)


def test_tou_holiday_uses_weekend_schedule() -> None:
    t = summer_peak()
    assert t.price_at(at(2025, 7, 4, 15)).per_mwh == 40.0  # Friday, Independence Day
    assert t.price_at(at(2025, 7, 3, 15)).per_mwh == 110.0


def test_tou_uses_local_time_across_dst() -> None:
    t = summer_peak()
    # 21:00 UTC is 15:00 MDT in July (peak) but 14:00 MST in... January has no peak; use September/November
    assert t.price_at(datetime(2025, 9, 16, 20, tzinfo=UTC).timestamp()).per_mwh == 110.0  # 14:00 MDT
    assert t.price_at(datetime(2025, 9, 16, 19, tzinfo=UTC).timestamp()).per_mwh == 70.0  # 13:00 MDT
    p = t.price_at(at(2025, 7, 15, 15, 30))
    assert p.start == at(2025, 7, 15, 15) and p.end == at(2025, 7, 15, 16)
    # the repeated 01:00 hour on 2025-11-02 is two separate one-hour intervals
    first = t.price_at(datetime(2025, 11, 2, 7, 30, tzinfo=UTC).timestamp())
    second = t.price_at(datetime(2025, 11, 2, 8, 30, tzinfo=UTC).timestamp())
    assert second.start - first.start == 3600


def test_tou_rule_errors() -> None:
    with pytest.raises(ValueError, match="default"):
        tou_from_rules({"a": 1.0}, [], "b")
    with pytest.raises(ValueError, match="unknown period"):
        tou_from_rules({"a": 1.0}, [TouRule("b")], "a")
    with pytest.raises(ValueError, match="month"):
        tou_from_rules({"a": 1.0}, [TouRule("a", months=(13,))], "a")


def urdb_record() -> dict:
    weekday = [[0] * 24 for _ in range(12)]
    for month in (5, 6, 7, 8):  # June-September (0-based months)
        for hour in range(14, 19):
            weekday[month][hour] = 1
    return {
        "items": [
            {
                "label": "5f1a2b3c4d5e6f7a8b9c0d1e",
                "utility": "Example Electric Co",
                "name": "Large General Service - Time of Use",
                "startdate": 1672531200,
                "sector": "Commercial",
                "energyratestructure": [
                    [
                        {"max": 50000, "unit": "kWh", "rate": 0.052, "adj": 0.004},
                        {"unit": "kWh", "rate": 0.061},
                    ],
                    [{"unit": "kWh", "rate": 0.121, "adj": 0.004}],
                ],
                "energyweekdayschedule": weekday,
                "energyweekendschedule": [[0] * 24 for _ in range(12)],
                "fixedchargefirstmeter": 30.44,
                "fixedchargeunits": "$/month",
                "flatdemandstructure": [[{"rate": 12.5}]],
                "flatdemandmonths": [0] * 12,
            }
        ]
    }


def test_urdb_rate_plus_adj_of_first_tier_and_schedules() -> None:
    t = tariff_from_urdb(urdb_record(), timezone="America/Chicago")
    chicago = ZoneInfo("America/Chicago")
    assert t.rates_per_mwh == pytest.approx((56.0, 125.0))
    assert t.price_at(at(2025, 7, 15, 15, tz=chicago)).per_mwh == pytest.approx(125.0)
    assert t.price_at(at(2025, 7, 19, 15, tz=chicago)).per_mwh == pytest.approx(56.0)  # weekend
    assert t.price_at(at(2025, 3, 11, 15, tz=chicago)).per_mwh == pytest.approx(56.0)
    assert t.source == "urdb:Large General Service - Time of Use"
    assert t.fixed_per_day == pytest.approx(30.44 * 12 / 365.25)


def test_urdb_bare_record_and_fixed_charge_units() -> None:
    rec = urdb_record()["items"][0]
    assert tariff_from_urdb(rec, timezone="UTC").rates_per_mwh == pytest.approx((56.0, 125.0))
    assert fixed_charge_per_day({"fixedchargefirstmeter": 2.0, "fixedchargeunits": "$/day"}) == 2.0
    assert fixed_charge_per_day({}) == 0.0
    with pytest.raises(UrdbError, match="fixedchargeunits"):
        fixed_charge_per_day({"fixedchargefirstmeter": 2.0, "fixedchargeunits": "$/kW"})


@pytest.mark.parametrize(
    ("mutate", "message"),
    [
        (lambda r: r.pop("energyratestructure"), "energyratestructure"),
        (lambda r: r["energyweekdayschedule"].pop(), "energyweekdayschedule"),
        (lambda r: r["energyweekendschedule"][0].__setitem__(3, 7), "undefined periods"),
        (lambda r: r["energyratestructure"][0][0].__setitem__("unit", "kWh daily"), "not supported"),
        (lambda r: r["energyratestructure"].__setitem__(1, []), "no tiers"),
        (lambda r: r["energyratestructure"][0][0].__setitem__("rate", "abc"), "not a number"),
    ],
)
def test_urdb_malformed(mutate, message: str) -> None:
    payload = copy.deepcopy(urdb_record())
    mutate(payload["items"][0])
    with pytest.raises(UrdbError, match=message):
        tariff_from_urdb(payload, timezone="UTC")
    with pytest.raises(UrdbError, match="no items"):
        tariff_from_urdb({"items": []}, timezone="UTC")
