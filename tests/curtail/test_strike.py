"""Price strike: windows from history (Foreman semantics), high strike, resume, gaps, restarts."""

from __future__ import annotations

from fleetd.curtail.model import Action, FleetMemory, RuleKind

from .helpers import T0, Runner, config, miner, prices

STRIKE = {
    "kind": "price_strike",
    "strike_usd_per_mwh": 80.0,
    "for_intervals": 2,
    "high_strike_usd_per_mwh": 150.0,
    "resume_after_intervals": 4,
}
FLEET = [miner("a"), miner("b", site="ok1")]


def act(history: list[float | None], was_active: bool = False, rule: dict | None = None) -> Action:
    r = Runner(config(rule or STRIKE))
    if was_active:
        r.fleet = FleetMemory({"price_strike": T0 - 3600})
    return r.step([miner("a")], prices(history=history))["a"].target.action


def test_needs_for_intervals_consecutive_intervals_above() -> None:
    assert act([50, 90]) is Action.RUN
    assert act([90, 50, 90]) is Action.RUN
    assert act([50, 90, 95]) is Action.SLEEP
    assert act([80, 80, 80]) is Action.RUN  # at the strike is not above it


def test_high_strike_sleeps_at_once() -> None:
    assert act([50, 151]) is Action.SLEEP
    r = Runner(config(STRIKE))
    d = r.step(FLEET, prices(history=[40, 200]))
    assert all(x.target.action is Action.SLEEP for x in d.values())
    assert d["a"].reason.kind is RuleKind.PRICE_STRIKE
    assert "above high strike $150.00/MWh" in d["a"].reason.text
    assert r.last is not None and r.last.active_rules == ("price_strike",)


def test_resume_after_intervals_below() -> None:
    assert act([90, 90, 70, 70, 70]) is Action.SLEEP
    assert act([90, 90, 70, 70, 70, 70]) is Action.RUN
    assert act([90, 90, 70, 70, 85, 70, 70, 70]) is Action.SLEEP  # a spike restarts the count


def test_resume_below_sets_a_band() -> None:
    rule = dict(STRIKE, resume_below_usd_per_mwh=60.0, resume_after_intervals=1)
    assert act([90, 90, 70, 70, 70], rule=rule) is Action.SLEEP  # 70 is not below 60
    assert act([90, 90, 70, 59], rule=rule) is Action.RUN


def test_a_gap_or_bad_value_breaks_the_run() -> None:
    assert act([90, None, 90]) is Action.RUN
    assert act([90, float("nan"), 90]) is Action.RUN
    assert act([90, 90, 70, 70, float("inf"), 70, 70]) is Action.SLEEP  # cannot resume on garbage


def test_short_history_keeps_an_active_strike_from_fleet_memory() -> None:
    assert act([70, 70], was_active=True) is Action.SLEEP
    assert act([70, 70, 70, 70], was_active=True) is Action.RUN
    assert act([70, 70], was_active=False) is Action.RUN


def test_survives_restart_from_history_alone() -> None:
    r = Runner(config(STRIKE))
    assert r.step(FLEET, prices(history=[90, 90, 75]))["a"].target.action is Action.SLEEP


def test_scope_limits_the_strike() -> None:
    r = Runner(config(dict(STRIKE, scope={"sites": ["tx1"]})))
    d = r.step(FLEET, prices(history=[200]))
    assert d["a"].target.action is Action.SLEEP and d["b"].target.action is Action.RUN


def test_fleet_memory_records_since() -> None:
    r = Runner(config(STRIKE))
    r.step(FLEET, prices(history=[200], at=T0))
    since = r.fleet.active["price_strike"]
    r.step(FLEET, prices(history=[200, 200], at=T0 + 900))
    assert r.fleet.active["price_strike"] == since == T0
