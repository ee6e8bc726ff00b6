"""A unit with impossible figures (NaN, inf, 1e300) is incomplete in the fleet's economics: the totals stay
what the other units make; and a snapshot's impossible hashrate or power earns and costs nothing known."""

from __future__ import annotations

import pytest

from fleetd.economics.unit import economics, fleet_economics, unit_hashrate_ths, unit_power
from fleetd.model import Snapshot


def test_fleet_totals_leave_out_units_with_impossible_figures() -> None:
    good = [economics(110.0, 3250.0, 55.0, 45.0, model="S19") for _ in range(3)]
    clean = fleet_economics(good)
    bad = [economics(v, v, 55.0, 45.0, model="S19") for v in (float("nan"), float("inf"), 1e300, -1e308)]
    fe = fleet_economics(good + bad)
    assert fe.total.revenue_per_day == pytest.approx(clean.total.revenue_per_day)
    assert fe.total.power_cost_per_day == pytest.approx(clean.total.power_cost_per_day)
    assert fe.total.hashrate_ths == pytest.approx(clean.total.hashrate_ths)
    assert fe.total.incomplete == len(bad) and fe.total.units == len(good) + len(bad)


@pytest.mark.parametrize("value", [float("nan"), float("inf"), -5.0, 1e300, 10**30])
def test_impossible_snapshot_figures_are_no_hashrate_and_no_measured_power(value: float) -> None:
    snap = Snapshot(hashrate_ths=value, hashrate_avg_ths=value, power_w=value, is_mining=True)
    assert unit_hashrate_ths(snap) == 0.0
    assert unit_power(snap, None, None, 3000.0) == (3000.0, "configured")
