"""The plausibility check: impossible figures become None with a fault naming them; the rest passes."""

from __future__ import annotations

import math
from typing import Any

import orjson
import pytest
from fleetd.drivers.plausible import IMPLAUSIBLE, LIMITS, MAX_ITEMS, checked, checked_reading

from fleetd import numbers
from fleetd.model import Component, Fan, Fault, Hashboard, Identity, Pool, Reading, Snapshot

GOOD = Snapshot(
    hashrate_ths=110.0,
    hashrate_avg_ths=109.5,
    power_w=3250.0,
    hashboards=tuple(Hashboard(i, 36.6, chips=114, chip_temp_c=78.0, board_temp_c=65.0) for i in range(3)),
    fans=tuple(Fan(i, 5800) for i in range(4)),
    pools=(Pool(0, "stratum+tcp://pool:3333", accepted=13458, rejected=2),),
    uptime_s=86_400,
    temp_c=78.0,
    hw_errors=69,
    psu={"input_power_w": 3276.0, "serial": "X1", "fan_rpm": 9060.0},
)
BAD = (math.nan, math.inf, -math.inf, 1e300, -1e308, 10**30, -500, "110", [1])


def test_plausible_snapshot_is_returned_as_is() -> None:
    assert checked(GOOD) is GOOD
    reading = Reading(Identity("antminer", "S19"), GOOD)
    assert checked_reading(reading) is reading


def _faults(s: Snapshot) -> list[Fault]:
    return [f for f in s.errors if f.code == IMPLAUSIBLE]


@pytest.mark.parametrize("bad", BAD, ids=repr)
@pytest.mark.parametrize("field", ["hashrate_ths", "power_w", "uptime_s", "temp_c", "hw_errors"])
def test_snapshot_figure(field: str, bad: Any) -> None:
    s = checked(Snapshot(**{field: bad}, errors=(Fault("E1", "vendor fault"),)))  # type: ignore[arg-type]
    assert getattr(s, field) is None
    (fault,) = _faults(s)
    assert fault.message.startswith(f"{field}: ")
    assert s.errors[0].code == "E1"  # the firmware's own faults stay
    assert checked(s) is s  # once is enough
    orjson.dumps(s.to_dict())


def test_messages_say_which_field_and_why() -> None:
    boards = (Hashboard(0, 36.0), Hashboard(1, 36.0, chip_temp_c=1e300), Hashboard(2, math.nan, chips=10**30))
    s = checked(Snapshot(hashboards=boards, fans=(Fan(0, -1),), psu={"input_voltage_v": math.inf}))
    messages = {f.message: f.component for f in _faults(s)}
    assert messages == {
        "hashboards[1].chip_temp_c: 1e+300 out of range [-40, 200]": Component.TEMPERATURE,
        "hashboards[2].hashrate_ths: nan is not a finite number": Component.BOARD,
        "hashboards[2].chips: 1e+30 out of range [0, 10000]": Component.BOARD,
        "fans[0].rpm: -1 out of range [0, 50000]": Component.FAN,
        "psu.input_voltage_v: inf is not a finite number": Component.PSU,
    }
    assert s.hashboards[1].chip_temp_c is None and s.hashboards[1].hashrate_ths == 36.0
    assert (s.hashboards[2].hashrate_ths, s.hashboards[2].chips) == (None, None)
    assert s.fans[0].rpm is None and s.psu == {"input_voltage_v": None}


def test_pool_counters_and_indexes() -> None:
    s = checked(Snapshot(pools=(Pool(10**30, "u", accepted=10**30, rejected=-1, stale=5),)))
    (p,) = s.pools
    assert (p.index, p.accepted, p.rejected, p.stale) == (0, 0, 0, 5)
    assert len(_faults(s)) == 3
    orjson.dumps(s.to_dict())


def test_integers_beyond_any_float() -> None:
    s = checked(Snapshot(hw_errors=10**400, uptime_s=-(10**400)))
    assert (s.hw_errors, s.uptime_s) == (None, None)
    assert [f.message for f in _faults(s)] == [
        "uptime_s: -2**1329 out of range [0, 6.3072e+08]",
        "hw_errors: 2**1329 out of range [0, 1e+15]",
    ]


def test_strings_where_numbers_belong() -> None:
    s = checked(Snapshot(hashrate_ths="fast"))  # type: ignore[arg-type]
    assert s.hashrate_ths is None
    assert _faults(s)[0].message == "hashrate_ths: str 'fast' is not a number"


def test_huge_lists_are_cut() -> None:
    many = MAX_ITEMS["fans"] * 100
    fans = tuple(Fan(i % 1000, 5000) for i in range(many))
    s = checked(Snapshot(fans=fans, errors=(Fault("x", "y"),) * 10_000))
    assert len(s.fans) == MAX_ITEMS["fans"] and len(s.errors) <= MAX_ITEMS["errors"]
    assert any(f.message.startswith(f"fans: {many} reported") for f in _faults(s))
    assert checked(s) is s


def test_what_the_drivers_keep_the_views_keep_too() -> None:
    """A figure the drivers' check lets through is never one that fleetd.numbers (the views) drops."""
    views = {
        "hashrate_ths": numbers.hashrate_ths,
        "hashrate_avg_ths": numbers.hashrate_ths,
        "expected_hashrate_ths": numbers.hashrate_ths,
        "power_w": numbers.power_w,
        "power_limit_w": numbers.power_w,
        "temp_c": numbers.temp_c,
        "env_temp_c": numbers.temp_c,
        "chip_temp_c": numbers.temp_c,
        "board_temp_c": numbers.temp_c,
        "inlet_temp_c": numbers.temp_c,
        "outlet_temp_c": numbers.temp_c,
    }
    for where in ("snapshot", "board"):
        for name, (lo, hi) in LIMITS[where].items():
            if name in views:
                assert views[name](float(lo)) is not None and views[name](float(hi)) is not None, name
    assert LIMITS["fan"]["rpm"][1] <= numbers.MAX_RPM
