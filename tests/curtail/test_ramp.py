"""The pure step planner: ramp limits, dwell, one command in flight, retry backoff, idempotence."""

from __future__ import annotations

import pytest

from fleetd.curtail.config import parse_curtailment
from fleetd.curtail.model import RUN, SLEEP, Action, Actual, Decision, MinerView, Reason, RuleKind, Target
from fleetd.curtail.ramp import (
    ControlState,
    failed,
    kw_delta,
    observed,
    plan_step,
    satisfied,
    started,
    succeeded,
)

NOW = 1_800_000_000.0
WHY = Reason(RuleKind.ECONOMIC, "economic", "test")
RUNNING = ControlState(Actual.RUNNING, RUN, NOW - 5000, NOW - 5000)
SLEEPING = ControlState(Actual.SLEEPING, SLEEP, NOW - 5000, NOW - 5000)


def cfg(**kw: object):
    base = {"ramp": {"max_miners": 2, "step_s": 30}, "dwell": {"min_on_s": 600, "min_off_s": 900}}
    return parse_curtailment(base | kw)


def view(mid: str, power_w: float = 3000.0, **kw: object) -> MinerView:
    return MinerView(mid, power_w=power_w, sleep_power_w=20.0, can_sleep=True, **kw)  # type: ignore[arg-type]


def dec(mid: str, target: Target = SLEEP, **kw: object) -> Decision:
    return Decision(mid, target, kw.pop("reason", WHY), True, **kw)  # type: ignore[arg-type]


def ids(plan) -> list[str]:
    return [c.miner_id for c in plan.commands]


def test_at_most_max_miners_per_step_in_decision_order() -> None:
    ds = [dec(f"m{i}") for i in range(5)]
    plan = plan_step(
        ds, {f"m{i}": RUNNING for i in range(5)}, {f"m{i}": view(f"m{i}") for i in range(5)}, cfg(), NOW
    )
    assert ids(plan) == ["m0", "m1"]
    assert plan.waiting == (("m2", "ramp"), ("m3", "ramp"), ("m4", "ramp"))
    assert plan.next_step_at == NOW + 30
    assert all(c.kw_delta == pytest.approx(-2.98) and c.attempt == 1 for c in plan.commands)


def test_kw_limit_per_step_for_restores_too() -> None:
    ds = [dec(f"m{i}", RUN) for i in range(4)]
    states = {f"m{i}": SLEEPING for i in range(4)}
    views = {f"m{i}": view(f"m{i}") for i in range(4)}
    plan = plan_step(ds, states, views, cfg(ramp={"max_miners": 10, "max_kw": 7.0}), NOW)
    assert ids(plan) == ["m0", "m1"]  # 2 x 2.98 kW fit in 7, a third does not: inrush staggered
    assert [w for _, w in plan.waiting] == ["ramp", "ramp"]


def test_one_miner_bigger_than_the_kw_step_still_goes_alone() -> None:
    plan = plan_step(
        [dec("big")], {"big": RUNNING}, {"big": view("big", 9000)}, cfg(ramp={"max_kw": 1.0}), NOW
    )
    assert ids(plan) == ["big"]


def test_sheds_go_before_restores() -> None:
    ds = [dec("up1", RUN), dec("up2", RUN), dec("down1"), dec("down2")]
    states = {"up1": SLEEPING, "up2": SLEEPING, "down1": RUNNING, "down2": RUNNING}
    plan = plan_step(ds, states, {k: view(k) for k in states}, cfg(), NOW)
    assert ids(plan) == ["down1", "down2"]


def test_a_miner_already_right_gets_no_command() -> None:
    plan = plan_step([dec("a"), dec("b", RUN)], {"a": SLEEPING, "b": RUNNING}, {}, cfg(), NOW)
    assert plan.commands == () and plan.waiting == () and plan.next_step_at is None


def test_a_limit_is_right_only_at_the_same_watts() -> None:
    lim = Target(Action.LIMIT, 2500)
    st = ControlState(Actual.LIMITED, Target(Action.LIMIT, 2800))
    assert not satisfied(st, lim) and satisfied(ControlState(Actual.LIMITED, lim), lim)
    plan = plan_step([dec("a", lim)], {"a": st}, {"a": view("a")}, cfg(), NOW)
    assert plan.commands[0].target == lim


def test_dwell_holds_recent_transitions() -> None:
    woke = ControlState(Actual.RUNNING, RUN, NOW - 100, NOW - 100)  # up 100 s of its 600 s
    slept = ControlState(Actual.SLEEPING, SLEEP, NOW - 800, NOW - 800)  # asleep 800 s of its 900 s
    plan = plan_step([dec("w"), dec("s", RUN)], {"w": woke, "s": slept}, {}, cfg(), NOW)
    assert plan.commands == ()
    assert plan.waiting == (("w", "dwell"), ("s", "dwell"))
    assert plan.next_step_at == NOW + 100  # the first dwell to end
    later = plan_step([dec("w"), dec("s", RUN)], {"w": woke, "s": slept}, {}, cfg(), NOW + 500)
    assert ids(later) == ["w", "s"]


def test_never_verified_miner_has_no_dwell() -> None:
    plan = plan_step([dec("n")], {"n": ControlState(Actual.RUNNING)}, {}, cfg(), NOW)
    assert ids(plan) == ["n"]


def test_one_command_in_flight_per_miner() -> None:
    st = started(RUNNING, plan_step([dec("a")], {"a": RUNNING}, {}, cfg(), NOW).commands[0])
    plan = plan_step([dec("a")], {"a": st}, {}, cfg(), NOW)
    assert plan.commands == () and plan.waiting == (("a", "in flight"),)


def test_retry_backoff_doubles_then_unresponsive_and_still_retried() -> None:
    c = cfg(retry={"attempts": 3, "backoff_s": 10, "max_backoff_s": 25})
    st, t = RUNNING, NOW
    delays, attempts = [], []
    for _ in range(4):
        plan = plan_step([dec("a")], {"a": st}, {}, c, t)
        (cmd,) = plan.commands
        attempts.append(cmd.attempt)
        st = failed(started(st, cmd), cmd, "acknowledged but not in effect", c, t)
        delays.append(st.next_attempt_at - t)
        assert plan_step([dec("a")], {"a": st}, {}, c, t + 1).waiting == (("a", "backoff"),)
        t = st.next_attempt_at
    assert attempts == [1, 2, 3, 4]
    assert delays == [10, 20, 25, 25]
    assert st.actual is Actual.UNRESPONSIVE and st.failures == 4 and st.last_error
    ok = succeeded(st, plan_step([dec("a")], {"a": st}, {}, c, t).commands[0], t)
    assert ok.actual is Actual.SLEEPING and ok.failures == 0 and ok.changed_at == t


def test_a_failed_sleep_leaves_the_miner_right_for_run() -> None:
    c = cfg()
    cmd = plan_step([dec("a")], {"a": RUNNING}, {}, c, NOW).commands[0]
    st = failed(started(RUNNING, cmd), cmd, "x", c, NOW)
    plan = plan_step([dec("a", RUN)], {"a": st}, {}, c, NOW + 1)
    assert plan.commands == ()  # already running: the failed sleep left it running; nothing to do
    assert satisfied(st, RUN)


def test_not_controllable_excluded_and_lost_are_listed_not_sent() -> None:
    pin = Reason(RuleKind.OVERRIDE, "pin", "maintenance", {"pin": "maintenance"})
    ds = [dec("nc", controllable=False), dec("ex", reason=pin), dec("lost")]
    views = {"nc": MinerView("nc"), "ex": view("ex"), "lost": view("lost", up=False)}
    plan = plan_step(ds, {k: RUNNING for k in views}, views, cfg(), NOW)
    assert plan.commands == ()
    assert plan.waiting == (("nc", "not controllable"), ("ex", "excluded"), ("lost", "control lost"))


def test_unknown_state_budgets_the_worst_case() -> None:
    v = view("a")
    assert kw_delta(v, ControlState(), RUN) == pytest.approx(2.98)
    assert kw_delta(v, ControlState(), SLEEP) == pytest.approx(-2.98)
    assert kw_delta(v, RUNNING, Target(Action.LIMIT, 2000)) == pytest.approx(-1.0)
    assert kw_delta(MinerView("x"), RUNNING, SLEEP) == 0.0


def test_telemetry_followed() -> None:
    fresh = observed(ControlState(), Actual.RUNNING, NOW)
    assert fresh.actual is Actual.RUNNING and fresh.changed_at == 0.0  # no dwell from a first sight
    manual = observed(RUNNING, Actual.SLEEPING, NOW)
    assert manual.actual is Actual.SLEEPING and manual.changed_at == NOW
    assert observed(RUNNING, None, NOW) == RUNNING
    flying = started(RUNNING, plan_step([dec("a")], {"a": RUNNING}, {}, cfg(), NOW).commands[0])
    assert observed(flying, Actual.SLEEPING, NOW) == flying
    bad = ControlState(Actual.UNRESPONSIVE, SLEEP, failures=3, last_error="x")
    assert observed(bad, Actual.RUNNING, NOW).actual is Actual.UNRESPONSIVE  # still not complying
    fixed = observed(bad, Actual.SLEEPING, NOW)
    assert fixed.actual is Actual.SLEEPING and fixed.failures == 0
