"""Economic rule: threshold, confirmations, hysteresis band, unknown and stale profit."""

from __future__ import annotations

from fleetd.curtail.model import Action, RuleKind

from .helpers import Runner, config, miner

ECON = {"kind": "economic", "confirm": 3, "resume_confirm": 2, "hysteresis_usd_per_day": 0.5}


def test_sleeps_only_after_confirm_consecutive_checks() -> None:
    r = Runner(config(ECON))
    losing = [miner("a", profit_per_day=-0.4), miner("b", profit_per_day=1.0)]
    for _ in range(2):
        d = r.step(losing)
        assert d["a"].target.action is Action.RUN and not d["a"].changed
        assert "of 3 checks" in d["a"].reason.text
    d = r.step(losing)
    assert d["a"].target.action is Action.SLEEP and d["a"].changed
    assert d["a"].reason.kind is RuleKind.ECONOMIC and d["a"].reason.rule == "economic"
    assert d["a"].reason.values["profit_usd_per_day"] == -0.4
    assert d["a"].reason.values["threshold_usd_per_day"] == 0.0
    assert d["a"].reason.text == "profit -$0.40/day below threshold $0.00/day for 3 checks"
    assert d["b"].target.action is Action.RUN
    d = r.step(losing)
    assert d["a"].target.action is Action.SLEEP and not d["a"].changed


def test_a_profitable_check_resets_the_confirmation() -> None:
    r = Runner(config(ECON))
    for p in (-1.0, -1.0, 0.1, -1.0, -1.0):
        d = r.step([miner("a", profit_per_day=p)])
    assert d["a"].target.action is Action.RUN
    assert r.step([miner("a", profit_per_day=-1.0)])["a"].target.action is Action.SLEEP


def test_resumes_only_above_threshold_plus_hysteresis_after_resume_confirm() -> None:
    r = Runner(config(ECON))
    for _ in range(3):
        r.step([miner("a", profit_per_day=-1.0)])
    # inside the band (0 < profit <= 0.5): stays asleep however long it lasts
    for _ in range(5):
        d = r.step([miner("a", profit_per_day=0.4)])
        assert d["a"].target.action is Action.SLEEP
    d = r.step([miner("a", profit_per_day=0.6)])
    assert d["a"].target.action is Action.SLEEP and "1 of 2 checks to resume" in d["a"].reason.text
    d = r.step([miner("a", profit_per_day=0.6)])
    assert d["a"].target.action is Action.RUN and d["a"].changed and "resuming" in d["a"].reason.text


def test_state_survives_a_restart_through_memory_streaks() -> None:
    r = Runner(config(ECON))
    for _ in range(3):
        r.step([miner("a", profit_per_day=-1.0)])
    restarted = Runner(config(ECON), memory=dict(r.memory), now=r.now)
    assert restarted.step([miner("a", profit_per_day=0.3)])["a"].target.action is Action.SLEEP


def test_unknown_or_stale_profit_keeps_the_target() -> None:
    r = Runner(config(ECON))
    for _ in range(3):
        r.step([miner("a", profit_per_day=-1.0), miner("b")])
    for bad in (None, float("nan"), float("inf"), 1e300, "12"):
        d = r.step([miner("a", profit_per_day=bad), miner("b", profit_per_day=bad)])
        assert d["a"].target.action is Action.SLEEP and not d["a"].changed
        assert d["b"].target.action is Action.RUN and not d["b"].changed
        assert "unknown: keeping the current target" in d["a"].reason.text
    d = r.step([miner("a", profit_per_day=5.0, stale_economics=True)])
    assert d["a"].target.action is Action.SLEEP and "stale prices" in d["a"].reason.text


def test_custom_threshold_and_scope() -> None:
    rule = dict(ECON, threshold_usd_per_day=1.0, confirm=1, scope={"models": ["*S19*"]})
    r = Runner(config(rule))
    d = r.step([miner("a", profit_per_day=0.5), miner("b", profit_per_day=0.5, model="Whatsminer M50S")])
    assert d["a"].target.action is Action.SLEEP
    assert d["b"].target.action is Action.RUN and d["b"].reason.kind is RuleKind.DEFAULT
