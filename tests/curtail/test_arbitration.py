"""Arbitration (pin, then any stop, then economics), pins of every kind and their expiry, the fail-safes."""

from __future__ import annotations

import pytest

from fleetd.curtail.model import Action, Controls, DemandEvent, Pin, PinAction, RuleKind

from .helpers import T0, Runner, config, miner, prices

ECONOMIC = {"kind": "economic", "name": "eco", "confirm": 1, "resume_confirm": 1}
STRIKE = {
    "kind": "price_strike",
    "name": "strike",
    "strike_usd_per_mwh": 100.0,
    "high_strike_usd_per_mwh": 300.0,
}


def _pin(action: PinAction, until: float | None = None, **scope: tuple[str, ...]) -> Pin:
    return Pin(action, until=until, source="api", id=f"p-{action.value}", **scope)


def test_a_pin_wins_then_any_stop_then_economics() -> None:
    losing, earning, pinned = miner("a", profit_per_day=-1.0), miner("b"), miner("c", profit_per_day=-1.0)
    r = Runner(config(ECONOMIC, STRIKE), Controls(pins=(_pin(PinAction.RUN, miners=("c",)),)))
    d = r.step([losing, earning, pinned], prices(at=r.now))
    assert d["a"].target.action is Action.SLEEP and d["a"].reason.kind is RuleKind.ECONOMIC
    assert d["b"].target.action is Action.RUN and d["b"].reason.kind is RuleKind.ECONOMIC
    assert d["c"].target.action is Action.RUN and d["c"].reason.rule == "pin"  # the pin beats economics
    d = r.step([losing, earning, pinned], prices(at=r.now, history=[350.0]))  # over the high strike
    assert d["b"].target.action is Action.SLEEP and d["b"].reason.kind is RuleKind.PRICE_STRIKE  # a stop
    assert d["a"].reason.kind is RuleKind.PRICE_STRIKE  # beats economics, whatever it says
    assert d["c"].target.action is Action.RUN and d["c"].reason.rule == "pin"  # and the pin beats the stop


def test_a_sleep_pin_beats_profit_and_ends_at_its_until() -> None:
    until = T0 + 90
    r = Runner(config(ECONOMIC), Controls(pins=(_pin(PinAction.SLEEP, until=until, sites=("tx1",)),)))
    d = r.step([miner("a"), miner("b", site="ok2")], dt=60)
    assert d["a"].target.action is Action.SLEEP and "pinned to sleep by api" in d["a"].reason.text
    assert d["a"].reason.values["until"] == until
    assert d["b"].target.action is Action.RUN and d["b"].reason.kind is RuleKind.ECONOMIC  # out of scope
    d = r.step([miner("a"), miner("b", site="ok2")], dt=60)  # T0 + 60: still pinned
    assert d["a"].target.action is Action.SLEEP
    d = r.step([miner("a"), miner("b", site="ok2")])  # T0 + 120: the pin has ended
    assert d["a"].target.action is Action.RUN and d["a"].reason.kind is RuleKind.ECONOMIC and d["a"].changed


@pytest.mark.parametrize("action", [PinAction.EXCLUDE, PinAction.MAINTENANCE])
def test_exclude_and_maintenance_keep_the_last_target_and_send_nothing(action: PinAction) -> None:
    r = Runner(config(ECONOMIC))
    d = r.step([miner("a", profit_per_day=-1.0)])
    assert d["a"].target.action is Action.SLEEP
    r.controls = Controls(pins=(_pin(action, models=("Antminer S19*",)),))
    d = r.step([miner("a", profit_per_day=5.0)])  # economics would wake it: the pin keeps it as it was
    assert d["a"].target.action is Action.SLEEP and not d["a"].changed
    word = "in maintenance" if action is PinAction.MAINTENANCE else "excluded from curtailment"
    assert d["a"].reason.rule == "pin" and word in d["a"].reason.text and "sent nothing" in d["a"].reason.text


def test_a_pin_beats_a_demand_response_event() -> None:
    ev = DemandEvent(target_kw=3.5, start=T0 - 1, end=T0 + 3600, source="api", id="e1")
    fleet = [miner("a"), miner("b", efficiency_j_per_th=35.0)]  # b is the worse one: shed first
    r = Runner(config(), Controls(pins=(_pin(PinAction.RUN, miners=("b",)),), events=(ev,)))
    d = r.step(fleet)
    assert d["b"].target.action is Action.RUN and d["b"].reason.rule == "pin"
    assert d["a"].target.action is Action.SLEEP and d["a"].reason.kind is RuleKind.POWER_CAP


def test_stale_price_fail_safe_hold_keeps_each_miner_as_it_was() -> None:
    r = Runner(config(ECONOMIC, STRIKE, failsafe="hold", price_stale_s=600))
    fleet = [miner("a", profit_per_day=-1.0), miner("b")]
    d = r.step(fleet)
    assert d["a"].target.action is Action.SLEEP and d["b"].target.action is Action.RUN
    flipped = [miner("a", profit_per_day=5.0), miner("b", profit_per_day=-5.0)]
    d = r.step(flipped, prices(at=r.now - 700))  # 700 s old: stale
    assert d["a"].target.action is Action.SLEEP and d["b"].target.action is Action.RUN  # nothing moves
    assert d["a"].reason.kind is RuleKind.FAILSAFE and "fail-safe hold" in d["a"].reason.text
    assert r.last is not None and "700 s old" in r.last.failsafe
    d = r.step(flipped, prices(None, at=r.now))
    assert "electricity price missing" in d["a"].reason.text  # no price at all says so
    d = r.step(flipped, prices(at=r.now))  # fresh again: economics decides
    assert d["a"].target.action is Action.RUN and d["b"].target.action is Action.SLEEP
    assert r.last is not None and r.last.failsafe == ""


def test_stale_price_fail_safe_curtail_and_run() -> None:
    fleet = [miner("a"), miner("b", profit_per_day=-1.0)]
    r = Runner(config(ECONOMIC, failsafe="curtail", price_stale_s=600))
    r.step(fleet)
    d = r.step(fleet, prices(at=r.now, stale=True))
    assert all(x.target.action is Action.SLEEP and x.reason.kind is RuleKind.FAILSAFE for x in d.values())
    r = Runner(config(ECONOMIC, failsafe="run", price_stale_s=600))
    d = r.step(fleet)
    assert d["b"].target.action is Action.SLEEP
    d = r.step(fleet, prices(at=r.now, stale=True))
    assert all(x.target.action is Action.RUN and x.reason.kind is RuleKind.FAILSAFE for x in d.values())


@pytest.mark.parametrize(
    ("mode", "after"), [("hold", Action.SLEEP), ("run", Action.RUN), ("curtail", Action.SLEEP)]
)
def test_a_lost_miner_keeps_its_target_then_the_fail_safe_applies(mode: str, after: Action) -> None:
    r = Runner(config(ECONOMIC, failsafe=mode, control_lost_s=300))
    d = r.step([miner("a", profit_per_day=-1.0), miner("b")], dt=200)
    assert d["a"].target.action is Action.SLEEP
    lost = [miner("a", up=False, profit_per_day=5.0), miner("b", up=False)]
    d = r.step(lost, dt=200)  # silent for 0 s: keeps its target
    assert d["a"].target.action is Action.SLEEP and "keeping target" in d["a"].reason.text
    d = r.step(lost, dt=200)  # 200 s
    assert d["a"].target.action is Action.SLEEP and d["b"].target.action is Action.RUN
    d = r.step(lost)  # 400 s: past control_lost_s
    assert d["a"].target.action is after and d["a"].reason.kind is RuleKind.FAILSAFE
    assert f"fail-safe {mode}" in d["a"].reason.text
    assert d["b"].target.action is (Action.SLEEP if mode == "curtail" else Action.RUN)
    assert r.last is not None and "out of contact" in r.last.failsafe
