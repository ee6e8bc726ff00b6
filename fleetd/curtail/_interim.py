"""A stand-in `decide` (economic rule and pins only) until fleetd/curtail/policy.py lands.

The daemon and the tests call it through fleetd.curtail.decide (fleetd/curtail/__init__.py), so swapping
in the real policy is one import.
"""

from __future__ import annotations

import fnmatch
import math
from collections.abc import Mapping, Sequence
from types import MappingProxyType

from fleetd.curtail.config import CurtailmentConfig, EconomicRule, Scope
from fleetd.curtail.model import (
    RUN,
    SLEEP,
    Action,
    Controls,
    Decision,
    FleetMemory,
    MinerMemory,
    MinerView,
    Pin,
    PinAction,
    Plan,
    PriceView,
    Reason,
    RuleKind,
    Target,
)


def _in_scope(scope: Scope, m: MinerView) -> bool:
    return (
        (not scope.sites or m.site in scope.sites)
        and (not scope.models or any(fnmatch.fnmatch(m.model, p) for p in scope.models))
        and (not scope.racks or m.rack in scope.racks)
        and (not scope.miners or m.id in scope.miners)
    )


def _pin_matches(pin: Pin, m: MinerView, now: float) -> bool:
    if pin.until is not None and pin.until <= now:
        return False
    if not (pin.miners or pin.sites or pin.models):
        return True
    return m.id in pin.miners or m.site in pin.sites or any(fnmatch.fnmatch(m.model, p) for p in pin.models)


def _pins(config: CurtailmentConfig, controls: Controls) -> list[Pin]:
    from_config = [
        Pin(p.action, tuple(p.miners), tuple(p.sites), tuple(p.models), note=p.note, id=f"config-{i}")
        for i, p in enumerate(config.pins)
    ]
    return [*controls.pins, *from_config]  # runtime pins first: the operator's latest word wins


def _economic(
    rule: EconomicRule, m: MinerView, mem: MinerMemory, streaks: dict[str, int]
) -> tuple[Target, Reason | None]:
    profit = m.profit_per_day
    if profit is None or not math.isfinite(profit):
        streaks[rule.name] = 0
        return mem.target, mem.reason  # no figure: keep what was decided
    low, high = rule.threshold_usd_per_day, rule.threshold_usd_per_day + rule.hysteresis_usd_per_day
    values: dict[str, float | str | None] = {"profit_per_day": profit, "threshold": low, "resume_above": high}
    if mem.target.action is Action.SLEEP:
        n = streaks[rule.name] = streaks.get(rule.name, 0) + 1 if profit > high else 0
        if n >= rule.resume_confirm:
            streaks[rule.name] = 0
            text = f"profit ${profit:.2f}/day above ${high:.2f}/day for {n} checks"
            return RUN, Reason(RuleKind.ECONOMIC, rule.name, text, MappingProxyType(values))
        text = f"profit ${profit:.2f}/day; resumes above ${high:.2f}/day ({n}/{rule.resume_confirm} checks)"
        return SLEEP, Reason(RuleKind.ECONOMIC, rule.name, text, MappingProxyType(values))
    n = streaks[rule.name] = streaks.get(rule.name, 0) + 1 if profit < low else 0
    if n >= rule.confirm:
        streaks[rule.name] = 0
        text = f"profit ${profit:.2f}/day below threshold ${low:.2f}/day for {n} checks"
        return SLEEP, Reason(RuleKind.ECONOMIC, rule.name, text, MappingProxyType(values))
    text = f"profit ${profit:.2f}/day; sleeps below ${low:.2f}/day ({n}/{rule.confirm} checks)"
    return RUN, Reason(RuleKind.ECONOMIC, rule.name, text, MappingProxyType(values))


_DEFAULT = Reason(RuleKind.DEFAULT, "default", "no rule applies: run")


def decide(
    miners: Sequence[MinerView],
    prices: PriceView,
    config: CurtailmentConfig,
    controls: Controls,
    memory: Mapping[str, MinerMemory],
    fleet: FleetMemory,
    now: float,
) -> Plan:
    """Pins, then the fail-safe (stale prices), then the first economic rule in scope; otherwise run."""
    pins = _pins(config, controls)
    rules = [r for r in config.rules if isinstance(r, EconomicRule)]
    failsafe = f"electricity price stale (fail-safe: {config.failsafe})" if prices.stale else ""
    decisions: list[Decision] = []
    new_memory: dict[str, MinerMemory] = {}
    active: set[str] = set()
    for m in miners:
        mem = memory.get(m.id) or MinerMemory()
        streaks = dict(mem.streaks)
        pin = next((p for p in pins if _pin_matches(p, m, now)), None)
        reason: Reason | None
        if pin is not None:
            target = {PinAction.RUN: RUN, PinAction.SLEEP: SLEEP}.get(pin.action, mem.target)
            text = f"pinned to {pin.action.value}" + (f": {pin.note}" if pin.note else "")
            reason = Reason(RuleKind.OVERRIDE, "pin", text, MappingProxyType({"pin": pin.action.value}))
        elif failsafe or not m.up:
            why = failsafe or "control path lost"
            target = {"curtail": SLEEP, "run": RUN}.get(config.failsafe, mem.target)
            reason = Reason(RuleKind.FAILSAFE, "failsafe", f"{why}: {config.failsafe} -> {target}")
        else:
            rule = next((r for r in rules if _in_scope(r.scope, m)), None)
            target, reason = (mem.target, mem.reason) if rule is None else _economic(rule, m, mem, streaks)
            if rule is not None and target.action is Action.SLEEP:
                active.add(rule.name)
        reason = reason or _DEFAULT
        changed = target != mem.target
        since = now if changed or not mem.since else mem.since
        new_memory[m.id] = MinerMemory(target, since, reason, MappingProxyType(streaks))
        decisions.append(Decision(m.id, target, reason, changed, m.controllable))
    eff = {m.id: m.efficiency_j_per_th or 0.0 for m in miners}
    # Shed the least efficient first, restore the most efficient first.
    decisions.sort(
        key=lambda d: (0, -eff[d.miner_id]) if d.target.action is Action.SLEEP else (1, eff[d.miner_id])
    )
    return Plan(tuple(decisions), MappingProxyType(new_memory), fleet, tuple(sorted(active)), failsafe)
