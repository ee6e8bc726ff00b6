"""Stand-ins for `fleetd.curtail.policy.decide` and `fleetd.curtail.ramp.plan_step` until they land.

Minimal on purpose: `decide` knows only the economic and price strike rules (no pins, schedules, power
caps or fail-safe); `plan_step` sends every command at once (no ramp, dwell or backoff). Same signatures
and types as the real ones; `fleetd.backtest.rules` is the one place that chooses.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from fnmatch import fnmatchcase
from types import MappingProxyType

from fleetd.curtail.config import CurtailmentConfig, EconomicRule, PriceStrikeRule, Scope
from fleetd.curtail.model import (
    RUN,
    SLEEP,
    Action,
    Actual,
    Controls,
    Decision,
    FleetMemory,
    MinerMemory,
    MinerView,
    Plan,
    PriceView,
    Reason,
    RuleKind,
    Target,
)
from fleetd.curtail.ramp import Command, ControlState, StepPlan

_DEFAULT = Reason(RuleKind.DEFAULT, "default", "no rule applies: run")


def in_scope(scope: Scope, m: MinerView) -> bool:
    return (
        (not scope.sites or m.site in scope.sites)
        and (not scope.models or any(fnmatchcase(m.model, pat) for pat in scope.models))
        and (not scope.racks or m.rack in scope.racks)
        and (not scope.miners or m.id in scope.miners)
    )


def _strike_active(rule: PriceStrikeRule, prices: PriceView, was_active: bool) -> bool:
    recent = [p.usd_per_mwh for p in prices.history] or (
        [prices.now_usd_per_mwh] if prices.now_usd_per_mwh is not None else []
    )
    if not recent:
        return was_active
    if not was_active:
        if rule.high_strike_usd_per_mwh is not None and recent[-1] > rule.high_strike_usd_per_mwh:
            return True
        last = recent[-rule.for_intervals :]
        return len(last) == rule.for_intervals and all(p > rule.strike_usd_per_mwh for p in last)
    resume = (
        rule.resume_below_usd_per_mwh
        if rule.resume_below_usd_per_mwh is not None
        else rule.strike_usd_per_mwh
    )
    last = recent[-rule.resume_after_intervals :]
    return not (len(last) == rule.resume_after_intervals and all(p < resume for p in last))


def decide(
    miners: Sequence[MinerView],
    prices: PriceView,
    config: CurtailmentConfig,
    controls: Controls,
    memory: Mapping[str, MinerMemory],
    fleet: FleetMemory,
    now: float,
) -> Plan:
    """Price strikes first (any stop wins), then the economic rules; otherwise run."""
    strikes = [r for r in config.rules if isinstance(r, PriceStrikeRule)]
    economic = [r for r in config.rules if isinstance(r, EconomicRule)]
    active: dict[str, float] = {}
    for r in strikes:
        if _strike_active(r, prices, r.name in fleet.active):
            active[r.name] = fleet.active.get(r.name, now)
    price = prices.now_usd_per_mwh
    decisions, new_memory, load_w = [], {}, 0.0
    for m in miners:
        mem = memory.get(m.id) or MinerMemory()
        target, reason, streaks = RUN, _DEFAULT, dict(mem.streaks)
        for r in strikes:
            if r.name in active and in_scope(r.scope, m):
                target = SLEEP
                reason = Reason(
                    RuleKind.PRICE_STRIKE,
                    r.name,
                    f"price ${price:,.2f}/MWh above strike ${r.strike_usd_per_mwh:,.2f}/MWh",
                    {"price_usd_per_mwh": price, "strike_usd_per_mwh": r.strike_usd_per_mwh},
                )
                break
        for r in economic:
            if not in_scope(r.scope, m) or m.profit_per_day is None:
                continue
            asleep = (
                mem.target.action is Action.SLEEP and mem.reason is not None and mem.reason.rule == r.name
            )
            below = m.profit_per_day < r.threshold_usd_per_day
            above = m.profit_per_day > r.threshold_usd_per_day + r.hysteresis_usd_per_day
            streaks[f"{r.name}:below"] = streaks.get(f"{r.name}:below", 0) + 1 if below else 0
            streaks[f"{r.name}:above"] = streaks.get(f"{r.name}:above", 0) + 1 if above else 0
            stays = asleep and streaks[f"{r.name}:above"] < r.resume_confirm
            if target is RUN and (stays or (not asleep and streaks[f"{r.name}:below"] >= r.confirm)):
                target = SLEEP
                reason = Reason(
                    RuleKind.ECONOMIC,
                    r.name,
                    f"profit ${m.profit_per_day:,.2f}/day below threshold "
                    f"${r.threshold_usd_per_day:,.2f}/day",
                    {"profit_per_day": m.profit_per_day, "threshold_usd_per_day": r.threshold_usd_per_day},
                )
        if not m.controllable:
            target = RUN
        changed = target != mem.target
        since = now if changed or not mem.since else mem.since
        decisions.append(Decision(m.id, target, reason, changed, m.controllable))
        new_memory[m.id] = MinerMemory(target, since, reason, MappingProxyType(streaks))
        load_w += m.sleep_power_w if target is SLEEP else (m.power_w or 0.0)
    return Plan(
        tuple(decisions),
        new_memory,
        FleetMemory(MappingProxyType(active)),
        active_rules=tuple(active),
        load_kw=load_w / 1000,
    )


_MATCHES = {Action.RUN: Actual.RUNNING, Action.SLEEP: Actual.SLEEPING, Action.LIMIT: Actual.LIMITED}


def plan_step(
    decisions: Sequence[Decision],
    states: Mapping[str, ControlState],
    views: Mapping[str, MinerView],
    config: CurtailmentConfig,
    now: float,
) -> StepPlan:
    """Every controllable miner not already in its target gets its command now."""
    commands = []
    for d in decisions:
        st = states.get(d.miner_id) or ControlState()
        if not d.controllable or (st.actual is _MATCHES[d.target.action] and st.target == d.target):
            continue
        v = views.get(d.miner_id)
        run_w = (v.power_w or 0.0) if v else 0.0
        sleep_w = v.sleep_power_w if v else 0.0
        delta = _power(d.target, run_w, sleep_w) - _power(st.target or RUN, run_w, sleep_w)
        commands.append(Command(d.miner_id, d.target, st.failures + 1, delta / 1000))
    return StepPlan(tuple(commands))


def _power(t: Target, run_w: float, sleep_w: float) -> float:
    if t.action is Action.SLEEP:
        return sleep_w
    if t.action is Action.LIMIT and t.power_limit_w is not None:
        return min(run_w, float(t.power_limit_w))
    return run_w
