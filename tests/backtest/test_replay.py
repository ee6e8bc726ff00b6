"""The replay, through the real policy and step planner, on inputs small enough to check by hand.

Hashprice $48/PH/day and no fees: a 100 TH/s miner earns $4.80/day, $0.20 an hour; a 1 kW miner uses
1 kWh an hour, which costs price/1000 dollars. Every interval here is one hour unless said otherwise.
"""

from __future__ import annotations

from typing import Any

import pytest

from fleetd.backtest.prices import Interval, PriceSeries
from fleetd.backtest.replay import BacktestError, FleetModel, replay
from fleetd.curtail.config import parse_curtailment

T0 = 1_754_265_600.0  # 2025-08-04T00:00Z
HP = 48.0
A = FleetModel("Model A", 1, hashrate_ths=100.0, power_w=1000.0)  # $4.80/day revenue
B = FleetModel("Model B", 1, hashrate_ths=50.0, power_w=1000.0)  # $2.40/day revenue: breakeven at $100/MWh


def series(prices: list[float], step: float = 3600.0) -> PriceSeries:
    return PriceSeries(
        tuple(Interval(T0 + k * step, T0 + (k + 1) * step, p) for k, p in enumerate(prices)), "csv"
    )


def config(*rules: dict[str, Any], **kw: Any):
    return parse_curtailment({"rules": list(rules), **kw})


def strike(at: float, **kw: Any) -> dict[str, Any]:
    return {"kind": "price_strike", "name": "strike", "strike_usd_per_mwh": at, **kw}


def economic(**kw: Any) -> dict[str, Any]:
    return {
        "kind": "economic",
        "name": "econ",
        "confirm": 1,
        "resume_confirm": 1,
        "hysteresis_usd_per_day": 0,
        **kw,
    }


def test_strike_sleeps_the_fleet_through_the_spike_with_known_money():
    fleet = [FleetModel("Model A", 2, hashrate_ths=100.0, power_w=1000.0)]
    r = replay(series([50, 300, 300, 50]), fleet, config(strike(100)), hashprice_usd_per_ph_day=HP)
    assert r.hours == 4 and r.miners == 2
    assert r.uptime == pytest.approx(0.5)  # asleep 2 of 4 hours
    assert r.baseline.energy_mwh == pytest.approx(0.008) and r.actual.energy_mwh == pytest.approx(0.004)
    # always on: 2 kW x (50 + 300 + 300 + 50) $/MWh x 1 h; curtailed: 2 kW x (50 + 50)
    assert r.baseline.energy_cost == pytest.approx(1.4) and r.actual.energy_cost == pytest.approx(0.2)
    assert r.baseline.revenue == pytest.approx(1.6) and r.actual.revenue == pytest.approx(0.8)
    assert r.cost_saved == pytest.approx(1.2) and r.cost_saved_share == pytest.approx(1.2 / 1.4)
    assert r.revenue_lost == pytest.approx(0.8) and r.revenue_lost_share == pytest.approx(0.5)
    assert r.baseline.profit == pytest.approx(0.2) and r.actual.profit == pytest.approx(0.6)
    assert r.net_gain == pytest.approx(0.4)
    assert r.curtailed_hours == pytest.approx(2.0)
    assert (r.switches_max, r.switches_mean) == (2, 2.0)  # one sleep, one wake each
    assert r.decisions == 4 and r.commands == 4
    (rule,) = r.by_rule
    assert rule.rule == "strike" and rule.miner_hours == pytest.approx(4.0)
    assert rule.cost_saved == pytest.approx(1.2) and rule.revenue_lost == pytest.approx(0.8)
    assert rule.net == pytest.approx(0.4)
    assert [s.curtailed_share for s in r.samples] == [0.0, 1.0, 1.0, 0.0]
    assert [s.load_mw for s in r.samples] == pytest.approx([0.002, 0.0, 0.0, 0.002])


def test_economic_rule_per_model_sleeps_the_least_efficient_first():
    # $150/MWh costs $3.60/day per kW: B loses, A still earns; $250 ($6.00/day): both lose.
    r = replay(series([50, 150, 250, 50]), [A, B], config(economic()), hashprice_usd_per_ph_day=HP)
    a, b = r.by_model
    assert (a.name, a.uptime, b.name, b.uptime) == ("Model A", 0.75, "Model B", 0.5)
    assert r.uptime == pytest.approx(5 / 8)
    assert a.baseline.energy_cost == pytest.approx(0.5) and a.actual.energy_cost == pytest.approx(0.25)
    assert b.baseline.energy_cost == pytest.approx(0.5) and b.actual.energy_cost == pytest.approx(0.1)
    assert a.baseline.revenue == pytest.approx(0.8) and a.actual.revenue == pytest.approx(0.6)
    assert b.baseline.revenue == pytest.approx(0.4) and b.actual.revenue == pytest.approx(0.2)
    assert (a.switches_max, b.switches_max) == (2, 2)
    (rule,) = r.by_rule
    assert rule.rule == "econ" and rule.miner_hours == pytest.approx(3.0)
    assert rule.cost_saved == pytest.approx(0.65) and rule.revenue_lost == pytest.approx(0.4)


def test_sleep_power_is_paid_for_while_asleep():
    fleet = [FleetModel("Model A", 1, hashrate_ths=100.0, power_w=1000.0, sleep_power_w=100.0)]
    r = replay(series([50, 300]), fleet, config(strike(100)), hashprice_usd_per_ph_day=HP)
    assert r.actual.energy_mwh == pytest.approx(0.0011)  # 1 kWh running, then 0.1 kWh asleep
    assert r.actual.energy_cost == pytest.approx(0.05 + 0.03)
    assert r.by_rule[0].cost_saved == pytest.approx(0.27)  # (1.0 - 0.1) kWh at $300/MWh


def test_minimum_off_time_holds_a_miner_asleep_through_a_short_dip():
    prices = [50, 300, 50, 300, 50, 50]  # 15-minute intervals
    quick = config(strike(100), dwell={"min_on_s": 0, "min_off_s": 0})
    held = config(strike(100), dwell={"min_on_s": 1800, "min_off_s": 1800})
    r_quick = replay(series(prices, 900.0), [A], quick, hashprice_usd_per_ph_day=HP)
    r_held = replay(series(prices, 900.0), [A], held, hashprice_usd_per_ph_day=HP)
    assert r_quick.switches_max == 4  # asleep, awake, asleep, awake
    assert r_held.switches_max == 2  # the wake at 00:30 waits for 00:45, when the price is up again
    assert [s.curtailed_share for s in r_quick.samples] == [0, 1, 0, 1, 0, 0]
    assert [s.curtailed_share for s in r_held.samples] == [0, 1, 1, 1, 0, 0]
    assert r_held.uptime < r_quick.uptime


def test_hysteresis_band_stops_flapping_around_breakeven():
    prices = [110, 90, 110, 90, 110, 90, 110, 90]  # model B's profit: -$0.24/day, +$0.24/day, ...
    no_dwell = {"min_on_s": 0, "min_off_s": 0}
    flappy = config(economic(), dwell=no_dwell)
    banded = config(economic(hysteresis_usd_per_day=0.5), dwell=no_dwell)
    r_flappy = replay(series(prices), [B], flappy, hashprice_usd_per_ph_day=HP)
    r_banded = replay(series(prices), [B], banded, hashprice_usd_per_ph_day=HP)
    assert r_flappy.switches_max == 8  # off at every $110, on at every $90
    assert r_banded.switches_max == 1  # asleep at the first $110; +$0.24 never clears the $0.50 band
    assert r_banded.uptime == 0.0


def test_confirmations_ignore_a_price_that_does_not_last():
    prices = [110, 90, 110, 90, 110, 110, 110, 90]
    r = replay(
        series(prices), [B], config(economic(confirm=3), dwell={"min_off_s": 0}), hashprice_usd_per_ph_day=HP
    )
    assert r.switches_max == 2  # only the three $110 hours in a row put it to sleep
    assert [s.curtailed_share for s in r.samples] == [0, 0, 0, 0, 0, 0, 1, 0]


def test_ramp_spreads_the_shed_over_steps():
    fleet = [FleetModel("Model A", 10, hashrate_ths=100.0, power_w=1000.0)]
    cfg = config(strike(100), ramp={"max_miners": 4, "step_s": 300})
    r = replay(series([50, 300]), fleet, cfg, hashprice_usd_per_ph_day=HP)
    # 4 miners asleep at 01:00, 8 from 01:05, all 10 from 01:10: 4x60 + 4x55 + 2x50 miner-minutes asleep
    assert r.by_rule[0].miner_hours == pytest.approx((4 * 60 + 4 * 55 + 2 * 50) / 60)
    assert r.commands == 10


def test_empty_inputs_are_errors():
    with pytest.raises(BacktestError, match="price history is empty"):
        replay(PriceSeries((), "csv"), [A], config(strike(100)), hashprice_usd_per_ph_day=HP)
    with pytest.raises(BacktestError, match="fleet is empty"):
        replay(series([50]), [], config(strike(100)), hashprice_usd_per_ph_day=HP)
