"""Power cap / demand response: keep a scope's estimated load at or under a kW target.

Shedding takes the running miners with the highest J/TH first; restoring takes the lowest J/TH first and
only while the estimate stays under the target, so a miner shed to meet the target is not restored until
its full running power fits again (no flapping at the edge).

Power limit versus sleep: the model assumes hashrate proportional to power under a limit (constant J/TH)
down to the firmware's minimum limit. Real hashboards get more efficient when underclocked, so the model
understates what a limit keeps: a conservative choice. Under it a limit loses hashrate/power_w per watt shed
and a sleep hashrate/(power_w - sleep_power_w), never less, so with `prefer_power_limit` a miner that can
take a limit (minimum known) is limited, as little as needed, instead of slept. One exception: when its
minimum limit is too close to its full power to cover the need, the rest would come from the next, more
efficient miner; it is slept instead when its remaining hashrate at the minimum is no more than that rest
costs at the next miner's J/TH (a lower bound, so the choice leans to limiting). Once every candidate is
limited and the load is still over, the limited ones are slept, highest J/TH first.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field

from fleetd.curtail.config import PowerCapRule
from fleetd.curtail.model import RUN, SLEEP, Action, DemandEvent, MinerView, Reason, RuleKind, Target
from fleetd.curtail.rules.schedule import Calendar
from fleetd.numbers import MAX_POWER_W, number


@dataclass(slots=True)
class Candidate:
    """A running, controllable miner with known running power that the cap may shed or restore."""

    m: MinerView
    run_w: float
    sleep_w: float | None  # None: cannot be slept (no capability or unusable figure)
    eff: float | None
    current: Target  # RUN, or the cap target remembered from the last pass
    index: int  # position in the policy's per-miner arrays


@dataclass(slots=True)
class CapResult:
    target_w: float
    load_w: float  # estimated load of the scope after this pass
    changes: dict[int, tuple[Target, Reason]] = field(default_factory=dict)


def effective_target(
    rule: PowerCapRule,
    calendar: Calendar | None,
    events: tuple[DemandEvent, ...],
    scope_sites: frozenset[str],
    now: float,
) -> tuple[float, str, frozenset[str]] | None:
    """The tightest target in force (kW), where it comes from, and the sites it covers (empty: all).

    The config target applies inside the rule's windows (always without windows); an active demand-response
    event applies when its sites overlap the rule's (either empty: everything).
    """
    best: tuple[float, str, frozenset[str]] | None = None
    in_window = calendar is None or not calendar.windows or calendar.active(now) is not None
    if rule.target_kw is not None and in_window:
        best = (rule.target_kw, "config", frozenset())
    for ev in events:
        kw = number(ev.target_kw, 0.0, MAX_POWER_W * 1e6)
        if kw is None or not ev.start <= now < ev.end:
            continue
        sites = frozenset(ev.sites)
        if sites and scope_sites and not sites & scope_sites:
            continue
        if best is None or kw < best[0]:
            best = (kw, f"demand response {ev.source} {ev.id}".rstrip(), sites)
    return best


def estimate_w(target: Target, run_w: float, sleep_w: float | None) -> float:
    if target.action is Action.RUN:
        return run_w
    if target.action is Action.SLEEP:
        return sleep_w if sleep_w is not None else 0.0
    w = target.power_limit_w
    return min(float(w), run_w) if w is not None else run_w


def allocate(
    rule: PowerCapRule, target_kw: float, source: str, fixed_w: float, candidates: list[Candidate]
) -> CapResult:
    limit_w = max(0.0, (target_kw - rule.margin_kw) * 1000.0)
    load = fixed_w + sum(estimate_w(c.current, c.run_w, c.sleep_w) for c in candidates)
    result = CapResult(target_kw * 1000.0, load)
    base_values: dict[str, float | str | None] = {
        "target_kw": target_kw,
        "margin_kw": rule.margin_kw,
        "source": source,
        "rule": rule.name,
    }
    if load > limit_w:
        load = _shed(rule, limit_w, load, candidates, result, base_values)
    else:
        load = _restore(limit_w, load, candidates, result, base_values)
    result.load_w = load
    return result


def _shed_order(c: Candidate) -> tuple[float, str]:
    return (-c.eff if c.eff is not None else math.inf, c.m.id)


def _shed(
    rule: PowerCapRule,
    limit_w: float,
    load: float,
    candidates: list[Candidate],
    result: CapResult,
    base: dict[str, float | str | None],
) -> float:
    target_kw = limit_w / 1000.0 + rule.margin_kw
    for c in candidates:  # those already shed stay shed
        if c.current is not RUN:
            result.changes[c.index] = (c.current, _reason(c, c.current, load, base, "kept shed"))
    running = sorted((c for c in candidates if c.current is RUN), key=_shed_order)
    for i, c in enumerate(running):
        if load <= limit_w:
            break
        need = load - limit_w
        target = _limit_for(rule, c, need)
        nxt = running[i + 1] if i + 1 < len(running) else None
        if target is not None and _sleep_is_cheaper(c, target, need, nxt):
            target = SLEEP
        if target is None:
            if c.sleep_w is None:
                continue
            target = SLEEP
        new_w = estimate_w(target, c.run_w, c.sleep_w)
        text = f"load {load / 1000:,.1f} kW over cap {target_kw:,.1f} kW"
        load -= c.run_w - new_w
        result.changes[c.index] = (target, _reason(c, target, load, base, text))
    if load > limit_w:  # every runner shed or limited: sleep limited miners, highest J/TH first
        limited = sorted(
            (c for c in candidates if c.sleep_w is not None and _target_of(result, c).action is Action.LIMIT),
            key=_shed_order,
        )
        for c in limited:
            if load <= limit_w:
                break
            before = estimate_w(_target_of(result, c), c.run_w, c.sleep_w)
            text = f"load {load / 1000:,.1f} kW over cap {target_kw:,.1f} kW with every miner limited"
            load -= before - (c.sleep_w or 0.0)
            result.changes[c.index] = (SLEEP, _reason(c, SLEEP, load, base, text))
    return load


def _restore(
    limit_w: float,
    load: float,
    candidates: list[Candidate],
    result: CapResult,
    base: dict[str, float | str | None],
) -> float:
    shed = sorted(
        (c for c in candidates if c.current is not RUN),
        key=lambda c: (c.eff if c.eff is not None else math.inf, c.m.id),
    )
    blocked = False
    for c in shed:
        delta = c.run_w - estimate_w(c.current, c.run_w, c.sleep_w)
        if not blocked and load + delta <= limit_w:
            load += delta  # restored: the miner's own rules decide it again
            continue
        blocked = True  # strictly lowest J/TH first: nobody jumps the queue
        text = f"restoring would take the load to {(load + delta) / 1000:,.1f} kW, over the cap"
        result.changes[c.index] = (c.current, _reason(c, c.current, load, base, text))
    return load


def _target_of(result: CapResult, c: Candidate) -> Target:
    hit = result.changes.get(c.index)
    return hit[0] if hit is not None else c.current


def _limit_for(rule: PowerCapRule, c: Candidate, need_w: float) -> Target | None:
    m = c.m
    if not (rule.prefer_power_limit or c.sleep_w is None) or not m.can_limit:
        return None
    lo = number(m.min_power_limit_w, 1.0, MAX_POWER_W)
    if lo is None or lo >= c.run_w:
        return None
    w = max(lo, math.ceil(c.run_w - need_w))
    hi = number(m.max_power_limit_w, lo, MAX_POWER_W)
    if hi is not None:
        w = min(w, hi)
    if w >= c.run_w:
        return None
    return Target(Action.LIMIT, int(w))


def _sleep_is_cheaper(c: Candidate, limit: Target, need_w: float, following: Candidate | None) -> bool:
    """Whether sleeping `c` loses less hashrate than limiting it and taking the rest of the need from the
    next miner in shed order (more efficient, so at best at its own J/TH): a minimum limit close to full
    power sheds little, and what it leaves costs more on a better miner than `c`'s remaining hashrate."""
    lo = limit.power_limit_w
    if c.sleep_w is None or not c.eff or lo is None or c.run_w - lo >= need_w:
        return False  # cannot sleep, unknown J/TH, or the limit alone covers the need
    nxt = following.eff if following is not None else None
    if not nxt:
        return False  # nobody after it: limited now, slept later only if the load is still over
    extra = min(need_w, c.run_w - c.sleep_w) - (c.run_w - lo)  # what sleeping sheds beyond the limit
    return extra > 0 and lo / c.eff <= extra / nxt


def _reason(
    c: Candidate,
    target: Target,
    load_after: float,
    base: dict[str, float | str | None],
    why: str,
) -> Reason:
    values = dict(base)
    values["efficiency_j_per_th"] = c.eff
    values["running_w"] = c.run_w
    values["load_kw_after"] = round(load_after / 1000.0, 3)
    eff = f"{c.eff:.1f} J/TH" if c.eff is not None else "unknown J/TH"
    name = str(base["rule"])
    text = f"{why}: {target} ({eff}); estimated load {load_after / 1000:,.1f} kW"
    return Reason(RuleKind.POWER_CAP, name, text, values)
