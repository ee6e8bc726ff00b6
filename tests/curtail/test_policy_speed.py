"""The speed-ups of decide() (memoised verdicts, per-scope profiles, reused decisions) change no answer."""

from __future__ import annotations

from typing import Any

from fleetd.curtail import policy
from fleetd.curtail.model import Controls, DemandEvent, FleetMemory, Pin, PinAction, Plan
from fleetd.curtail.rules import overrides
from tests.curtail.helpers import T0, by_id, config, miner, prices


def _canon(plan: Plan) -> Any:
    return repr(
        (
            [
                (d.miner_id, str(d.target), d.reason.to_dict(), d.changed, d.controllable)
                for d in plan.decisions
            ],
            {k: (str(m.target), m.since, m.reason, dict(m.streaks)) for k, m in sorted(plan.memory.items())},
            dict(plan.fleet.active),
            plan.active_rules,
            plan.failsafe,
            plan.load_kw,
            plan.target_kw,
        )
    )


def _fleet(k: int) -> list[Any]:
    out = []
    for i in range(24):
        profit: Any = [2.0, -1.0, 0.0, -0.0, 1, 0.1 * (k % 3) - 0.1][i % 6]
        out.append(
            miner(
                f"m{i:02d}",
                site=("tx1", "tx2", "ok1")[i % 3],
                model=("Antminer S19 Pro", "Whatsminer M50S", "Antminer S21")[
                    i % 3 if i < 12 else (i + 1) % 3
                ],
                rack=("r1", "r2")[i % 2],
                up=not (i == 5 and 2 <= k <= 6),
                profit_per_day=profit,
                can_limit=i % 4 == 0,
                can_sleep=i % 7 != 0,
                min_power_limit_w=1000 if i % 4 == 0 else None,
                stale_economics=i == 9 and k % 2 == 1,
            )
        )
    return out


CFG = config(
    {"kind": "economic", "name": "econ", "confirm": 2, "resume_confirm": 2},
    {
        "kind": "economic",
        "name": "rack",
        "scope": {"racks": ["r2"]},
        "threshold_usd_per_day": 0.5,
        "confirm": 1,
    },
    {"kind": "economic", "name": "ids", "scope": {"miners": ["m01", "m07"]}, "threshold_usd_per_day": 5.0},
    {"kind": "price_strike", "name": "strike", "strike_usd_per_mwh": 90, "scope": {"sites": ["tx2"]}},
    {"kind": "power_cap", "name": "cap", "scope": {"models": ["Antminer*"]}, "target_kw": 20.0},
    pins=[{"action": "run", "models": ["*S21"]}],
    control_lost_s=120,
)
CONTROLS = Controls(
    pins=(
        Pin(PinAction.SLEEP, miners=("m03", "m04"), source="api", id="a"),
        Pin(PinAction.EXCLUDE, sites=("ok1",), models=("whatsminer*",), source="api", id="b"),
    ),
    events=(DemandEvent(30.0, T0, T0 + 3600, "api", ("tx1",), "dr"),),
)


def _passes(cold: bool) -> list[str]:
    memory: Any = {}
    fleet = FleetMemory()
    out = []
    for k in range(10):
        now = T0 + 60 * k
        pv = prices(at=now, history=[40, 95 if k in (3, 4, 7) else 40], stale=k == 8)
        if cold:  # every pass from scratch: no compiled config, no memo, no pins cache, no last decisions
            policy._cache.clear()
            overrides._last.clear()
        plan = policy.decide(_fleet(k), pv, CFG, CONTROLS, memory, fleet, now)
        out.append(_canon(plan))
        memory, fleet = plan.memory, plan.fleet
    return out


def test_warm_caches_give_the_same_plans_as_cold_ones():
    assert _passes(cold=False) == _passes(cold=True)


def test_an_unchanged_pass_reuses_the_decisions_and_memory():
    miners = [miner(f"m{i}", profit_per_day=1.5) for i in range(5)]
    cfg = config({"kind": "economic", "name": "econ"})
    first = policy.decide(miners, prices(at=T0), cfg, Controls(), {}, FleetMemory(), T0)
    again = policy.decide(miners, prices(at=T0 + 60), cfg, Controls(), first.memory, first.fleet, T0 + 60)
    assert all(a is b for a, b in zip(first.decisions, again.decisions, strict=True))
    assert all(again.memory[k] is first.memory[k] for k in first.memory)


def test_zero_and_negative_zero_profit_keep_their_own_text():
    cfg = config({"kind": "economic", "name": "econ", "confirm": 5})
    plan = policy.decide(
        [miner("a", profit_per_day=0.0), miner("b", profit_per_day=-0.0)],
        prices(),
        cfg,
        Controls(),
        {},
        FleetMemory(),
        T0,
    )
    d = by_id(plan)
    assert d["a"].reason.text != d["b"].reason.text  # "$0.00" and "$-0.00", as before memoisation


def test_id_pins_win_over_scope_pins_and_others_fall_through():
    controls = Controls(
        pins=(
            Pin(PinAction.RUN, sites=("tx1",), source="api", id="site"),
            Pin(PinAction.SLEEP, miners=("m1",), source="api", id="one"),
        )
    )
    cfg = config({"kind": "price_strike", "name": "strike", "strike_usd_per_mwh": 10})
    d = by_id(policy.decide([miner("m1"), miner("m2")], prices(40.0), cfg, controls, {}, FleetMemory(), T0))
    assert d["m1"].reason.values["id"] == "one" and d["m1"].target.action.value == "sleep"
    assert d["m2"].reason.values["id"] == "site" and d["m2"].target.action.value == "run"
