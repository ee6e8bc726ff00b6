"""decide(): one deterministic curtailment pass over the fleet. Pure: no I/O, no clock of its own.

Arbitration per miner: an active pin wins; then a miner out of contact keeps its target (the fail-safe
target once it has been silent for `control_lost_s`); then any stop (price strike, schedule sleep, the
stale-price fail-safe in "curtail" mode, then the power cap); then the stale-price fail-safe "hold"/"run";
then schedule run windows; then economics; otherwise run. Miners are decided in id order.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass
from operator import attrgetter
from types import MappingProxyType
from typing import Any

from fleetd.curtail.config import (
    CurtailmentConfig,
    EconomicRule,
    PowerCapRule,
    PriceStrikeRule,
    ScheduleRule,
    Scope,
)
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
from fleetd.curtail.rules import economic, overrides, power_cap, strike
from fleetd.curtail.rules.overrides import HANDS_OFF, ActivePins
from fleetd.curtail.rules.schedule import Calendar
from fleetd.curtail.rules.scope import Matcher, efficiency, running_power_w, sleep_power_w
from fleetd.numbers import MAX_POWER_W, number

DOWN_SINCE = "failsafe.down_since"  # streak key: unix time (s) a miner was first seen not answering
FAILSAFE = "failsafe"
_PRICE_KINDS = frozenset({RuleKind.ECONOMIC, RuleKind.PRICE_STRIKE, RuleKind.FAILSAFE})
_EMPTY_MEMORY = MinerMemory()
_DEFAULT_REASON = Reason(RuleKind.DEFAULT, "default", "no rule stops this miner: run")
_NO_STREAKS: Mapping[str, int] = MappingProxyType({})
_IMPLICIT_DR = PowerCapRule(kind="power_cap", name="demand_response")


def is_hands_off(decision: Decision) -> bool:
    """True when an exclude/maintenance pin holds the miner: the executor must send it nothing."""
    r = decision.reason
    return r.kind is RuleKind.OVERRIDE and r.values.get("pin") in HANDS_OFF


def _matcher(scope: Scope) -> Matcher:
    return Matcher(scope.sites, scope.models, scope.racks, scope.miners)


_MEMO_MAX = 50_000
# An economic rule ready to run: the rule, its scope, its verdict memo, its two streak keys.
_Econ = tuple[EconomicRule, Matcher, dict[tuple[object, ...], economic.Verdict], str, str]
_FIELDS = (
    ("sites", "site"),
    ("models", "model"),
    ("racks", "rack"),
    ("miners", "id"),
)  # entries per memo table before it is emptied (bounds memory on a drifting fleet)


@dataclass(frozen=True, slots=True)
class _Compiled:
    """A config made ready to evaluate, with memo tables of the pure per-rule evaluations.

    The memos only skip recomputing: the same inputs give the very same (immutable) verdicts and reasons,
    which also lets unchanged decisions and memory be reused from one pass to the next.
    """

    economic: tuple[_Econ, ...]
    strikes: tuple[tuple[PriceStrikeRule, Matcher], ...]
    schedules: tuple[tuple[ScheduleRule, Matcher, Calendar], ...]
    caps: tuple[tuple[PowerCapRule, Matcher, Calendar | None], ...]
    config_pins: tuple[Pin, ...]
    scopes: tuple[Matcher, ...]  # every rule's scope: the fail-safe's "rules' scope"
    strike_memo: dict[tuple[object, ...], strike.StrikeState]
    schedule_memo: dict[tuple[int, str], Reason]
    decisions: dict[str, Decision]  # the last decision per miner, reused when it would come out equal
    keyed_by: frozenset[str]  # the MinerView fields the rules' scopes look at ("site", "model", ...)


_cache: list[tuple[CurtailmentConfig, _Compiled]] = []


def _compile(config: CurtailmentConfig) -> _Compiled:
    if _cache and _cache[0][0] is config:
        return _cache[0][1]
    econ, strikes, schedules, caps = [], [], [], []
    for rule in config.rules:
        if isinstance(rule, EconomicRule):
            econ.append((rule, _matcher(rule.scope), {}, rule.name, rule.name + ".off"))
        elif isinstance(rule, PriceStrikeRule):
            strikes.append((rule, _matcher(rule.scope)))
        elif isinstance(rule, ScheduleRule):
            schedules.append(
                (rule, _matcher(rule.scope), Calendar.of(rule.timezone, rule.windows, rule.events))
            )
        else:
            cal = Calendar.of(rule.timezone, rule.windows) if rule.windows else None
            caps.append((rule, _matcher(rule.scope), cal))
    if not caps:  # demand-response events from the API/MQTT still apply, fleet-wide
        caps.append((_IMPLICIT_DR, _matcher(_IMPLICIT_DR.scope), None))
    scopes = tuple(m for group in (econ, strikes, schedules, caps) for _, m, *_ in group)
    compiled = _Compiled(
        tuple(econ),
        tuple(strikes),
        tuple(schedules),
        tuple(caps),
        overrides.from_config(config.pins),
        scopes,
        {},
        {},
        {},
        _keyed_by(scopes),
    )
    _cache[:] = [(config, compiled)]
    return compiled


def _keyed_by(matchers: Iterable[Matcher]) -> frozenset[str]:
    return frozenset(f for m in matchers for attr, f in _FIELDS if getattr(m, attr))


def _stop_target(m: MinerView) -> Target:
    """Sleep; a miner that can only take a power limit goes to its minimum limit instead."""
    if not m.can_sleep and m.can_limit:
        lo = number(m.min_power_limit_w, 1.0, MAX_POWER_W)
        if lo is not None:
            return Target(Action.LIMIT, int(lo))
    return SLEEP


def _in_rules_scope(m: MinerView, scopes: tuple[Matcher, ...]) -> bool:
    return any(s(m) for s in scopes)


def decide(
    miners: Sequence[MinerView],
    prices: PriceView,
    config: CurtailmentConfig,
    controls: Controls,
    memory: Mapping[str, MinerMemory],
    fleet: FleetMemory,
    now: float,
) -> Plan:
    comp = _compile(config)
    failsafe_notes: list[str] = []
    active: list[str] = []

    # Fleet-level inputs, once per pass.
    price = number(prices.now_usd_per_mwh, -1e7, 1e7)
    age = prices.age_s if prices.age_s is not None else now - prices.at
    stale = prices.stale or price is None or not age <= config.price_stale_s
    fs_mode = config.failsafe
    fs_reason = _DEFAULT_REASON
    if stale:
        why = "missing" if price is None else "marked stale" if prices.stale else f"{age:,.0f} s old"
        fs_reason = Reason(
            RuleKind.FAILSAFE,
            FAILSAFE,
            f"electricity price {why} (limit {config.price_stale_s:,.0f} s): fail-safe {fs_mode}",
            {"price_age_s": age, "price_stale_s": config.price_stale_s, "mode": fs_mode},
        )
        failsafe_notes.append(fs_reason.text)
    stops: list[tuple[Matcher, Reason]] = []
    runs: list[tuple[Matcher, Reason]] = []
    if not stale and comp.strikes:
        seq = strike.intervals(prices)
        for k, (rule, matcher) in enumerate(comp.strikes):
            st = _strike(comp, k, rule, seq, rule.name in fleet.active)
            if st.active:
                stops.append((matcher, st.reason))
                active.append(rule.name)
    for k, (srule, matcher, cal) in enumerate(comp.schedules):
        what = cal.active(now)
        if what is not None:
            reason = comp.schedule_memo.get((k, what))
            if reason is None:
                verb = "sleep" if srule.action == "sleep" else "run"
                reason = Reason(
                    RuleKind.SCHEDULE,
                    srule.name,
                    f"schedule {srule.name}: {what} ({srule.timezone}): {verb}",
                    {"action": srule.action, "active": what, "timezone": srule.timezone},
                )
                _remember(comp.schedule_memo, (k, what), reason)
            (stops if srule.action == "sleep" else runs).append((matcher, reason))
            active.append(srule.name)
    if stale and fs_mode == "curtail":
        stops.append((Matcher(), fs_reason))  # applied below only to miners in the rules' scope
    pins = ActivePins.of(comp.config_pins + controls.pins, now)
    named = pins.named
    econ_rules = comp.economic if not stale else ()
    scopes = comp.scopes
    # Every miner with the same scope key (the fields any scope or pin looks at) shares its profile.
    fields = comp.keyed_by | pins.keyed_by
    key_of: Callable[[MinerView], object] = attrgetter(*sorted(fields)) if fields else _no_key
    profiles: dict[object, _Profile] = {}

    ordered = sorted(miners, key=attrgetter("id"))
    n = len(ordered)
    targets: list[Target] = [RUN] * n
    reasons: list[Reason] = [_DEFAULT_REASON] * n
    streaks_out: list[Mapping[str, int]] = [_NO_STREAKS] * n
    mems: list[MinerMemory] = [_EMPTY_MEMORY] * n
    cap_ok = [False] * n  # running by its own rules, up, unpinned: the power cap may shed it
    keep = [True] * n  # False: a duplicate id, dropped
    seen: set[str] = set()
    lost = 0
    get_memory = memory.get
    hold = stale and fs_mode != "curtail"
    for i, m in enumerate(ordered):
        mid = m.id
        if mid in seen:
            keep[i] = False
            continue
        seen.add(mid)
        mem = get_memory(mid, _EMPTY_MEMORY)
        mems[i] = mem
        streaks = mem.streaks
        new_streaks: dict[str, int] | None = None
        up = m.up
        if not up:
            if DOWN_SINCE not in streaks:
                new_streaks = dict(streaks)
                new_streaks[DOWN_SINCE] = int(now)
        elif DOWN_SINCE in streaks:
            new_streaks = dict(streaks)
            del new_streaks[DOWN_SINCE]
        key = key_of(m)
        prof = profiles.get(key)
        if prof is None:
            prof = profiles[key] = _profile(m, pins, econ_rules, stops, runs, fs_reason, scopes)
        pin = pins.match(m) if mid in named else prof[0]
        if pin is not None:
            targets[i], reasons[i] = _pinned(pin, m, mem)
        elif not up:
            down_for = now - (new_streaks or streaks)[DOWN_SINCE]
            if down_for >= config.control_lost_s:
                lost += 1
                if fs_mode == "run":
                    t = RUN
                elif fs_mode == "curtail" and m.controllable and prof[3]:
                    t = _stop_target(m)
                else:
                    t = mem.target
                text = (
                    f"not answering for {down_for:,.0f} s (limit {config.control_lost_s:,.0f} s):"
                    f" fail-safe {fs_mode}, {t}"
                )
            else:
                t = mem.target
                text = f"not answering for {down_for:,.0f} s: keeping target {t}"
            targets[i] = t
            reasons[i] = Reason(
                RuleKind.FAILSAFE,
                FAILSAFE,
                text,
                {"down_s": down_for, "control_lost_s": config.control_lost_s, "mode": fs_mode},
            )
        else:
            verdict: economic.Verdict | None = None
            for rule, _, memo, name, off_key in prof[1]:
                count = streaks.get(name, 0)
                old_off = streaks.get(off_key, 0)
                profit = m.profit_per_day
                if type(profit) is float and profit and type(count) is int and type(old_off) is int:
                    memo_key = (profit, m.stale_economics, count, old_off)
                    v = memo.get(memo_key)
                    if v is None:
                        v = economic.evaluate(rule, m, streaks)
                        _remember(memo, memo_key, v)
                else:  # zero (its sign shows in the text), an int profit, a float streak: not memoised
                    v = economic.evaluate(rule, m, streaks)
                if v.count != count or v.off_flag != old_off:
                    if new_streaks is None:
                        new_streaks = dict(streaks)
                    new_streaks[name] = v.count
                    new_streaks[off_key] = v.off_flag
                if verdict is None or (v.off and not verdict.off):
                    verdict = v
            stop = prof[2]
            if stop is not None:
                targets[i], reasons[i] = _stop_target(m), stop
            else:
                if hold and prof[3]:
                    if fs_mode == "hold" and mem.reason is not None and mem.reason.kind in _PRICE_KINDS:
                        targets[i] = mem.target
                    reasons[i] = fs_reason
                elif prof[4] is not None:
                    reasons[i] = prof[4]
                elif verdict is not None:
                    reasons[i] = verdict.reason
                    if verdict.off or (verdict.off is None and streaks.get(verdict.reason.rule + ".off")):
                        targets[i] = _stop_target(m)
                cap_ok[i] = targets[i] is RUN
        streaks_out[i] = streaks if new_streaks is None else MappingProxyType(new_streaks)

    # Power caps, over what the other rules decided.
    target_kw = _apply_caps(comp, controls, ordered, keep, targets, reasons, cap_ok, mems, active, now)

    decisions: list[Decision] = []
    new_memory: dict[str, MinerMemory] = {}
    last = comp.decisions
    if len(last) > 2 * n + 1000:
        last.clear()
    load_w = 0.0
    load_known = False
    for i, m in enumerate(ordered):
        if not keep[i]:
            continue
        mid = m.id
        t, r, mem, st = targets[i], reasons[i], mems[i], streaks_out[i]
        old = mem.target
        changed = False if t is old else t != old
        ctrl = m.can_sleep or m.can_limit  # m.controllable, without the property call
        d = last.get(mid)
        if (
            d is None
            or d.reason is not r
            or d.changed is not changed
            or d.controllable is not ctrl
            or not (d.target is t or d.target == t)
        ):
            d = last[mid] = _new_decision(mid, t, r, changed, ctrl)
        decisions.append(d)
        if not changed and r is mem.reason and st is mem.streaks:
            new_memory[mid] = mem
        else:
            new_memory[mid] = _new_memory(t, now if changed or mem is _EMPTY_MEMORY else mem.since, r, st)
        # The load estimate: running_power_w, sleep_power_w and power_cap.estimate_w, inlined for speed.
        pw = m.power_w
        if (type(pw) is float or type(pw) is int) and 1.0 <= pw <= MAX_POWER_W:
            run_w = float(pw)
            load_known = True
            action = t.action
            if action is Action.RUN:
                load_w += run_w
            elif action is Action.SLEEP:
                sp = m.sleep_power_w
                if (type(sp) is float or type(sp) is int) and 0.0 <= sp <= MAX_POWER_W:
                    load_w += min(float(sp), run_w)
                else:
                    load_w += 0.0
            else:
                lim = t.power_limit_w
                load_w += min(float(lim), run_w) if lim is not None else run_w
    if lost:
        failsafe_notes.append(
            f"{lost} miner(s) out of contact for {config.control_lost_s:,.0f} s or more: fail-safe {fs_mode}"
        )
    if failsafe_notes:
        active.append(FAILSAFE)
    since = {name: fleet.active.get(name, now) for name in active}
    return Plan(
        decisions=tuple(decisions),
        memory=new_memory,
        fleet=FleetMemory(MappingProxyType(since)),
        active_rules=tuple(active),
        failsafe="; ".join(failsafe_notes),
        load_kw=load_w / 1000.0 if load_known else None,
        target_kw=target_kw,
    )


# Shared by the miners of one scope key in one pass: the unnamed pin that matches, the economic rules in
# scope, the stop that applies, whether any rule's scope covers them, the schedule run window that applies.
_Profile = tuple[Pin | None, tuple[_Econ, ...], Reason | None, bool, Reason | None]


def _no_key(m: MinerView) -> None:
    return None


def _profile(
    m: MinerView,
    pins: ActivePins,
    econ_rules: tuple[_Econ, ...],
    stops: list[tuple[Matcher, Reason]],
    runs: list[tuple[Matcher, Reason]],
    fs_reason: Reason,
    scopes: tuple[Matcher, ...],
) -> _Profile:
    in_scope = _in_rules_scope(m, scopes)
    stop = next((r for mt, r in stops if mt(m) and (r is not fs_reason or in_scope)), None)
    run = next((r for mt, r in runs if mt(m)), None)
    return pins.match_unnamed(m), tuple(e for e in econ_rules if e[1](m)), stop, in_scope, run


def _slot_setters(cls: type, names: tuple[str, ...]) -> tuple[Callable[[object, object], None], ...]:
    return tuple(cls.__dict__[name].__set__ for name in names)


# Frozen dataclasses build through object.__setattr__ per field; on a pass where every miner's target
# changes, 10,000 Decisions and MinerMemory values built that way cost a third of the pass. These build the
# same values (every field given, nothing else run by __init__) through the slot descriptors directly.
_DECISION_SLOTS = _slot_setters(Decision, ("miner_id", "target", "reason", "changed", "controllable"))
_MEMORY_SLOTS = _slot_setters(MinerMemory, ("target", "since", "reason", "streaks"))


def _new_decision(mid: str, t: Target, r: Reason, changed: bool, ctrl: bool) -> Decision:
    d = object.__new__(Decision)
    s_id, s_target, s_reason, s_changed, s_ctrl = _DECISION_SLOTS
    s_id(d, mid)
    s_target(d, t)
    s_reason(d, r)
    s_changed(d, changed)
    s_ctrl(d, ctrl)
    return d


def _new_memory(t: Target, since: float, r: Reason, streaks: Mapping[str, int]) -> MinerMemory:
    m = object.__new__(MinerMemory)
    s_target, s_since, s_reason, s_streaks = _MEMORY_SLOTS
    s_target(m, t)
    s_since(m, since)
    s_reason(m, r)
    s_streaks(m, streaks)
    return m


def _remember(memo: dict[Any, Any], key: Any, value: Any) -> None:
    if len(memo) >= _MEMO_MAX:
        memo.clear()
    memo[key] = value


def _strike(
    comp: _Compiled, k: int, rule: PriceStrikeRule, seq: list[float | None], was_active: bool
) -> strike.StrikeState:
    if 0.0 in seq:  # -0.0 and 0.0 are one key but print differently
        return strike.evaluate(rule, seq, was_active)
    key = (k, was_active, *seq)
    st = comp.strike_memo.get(key)
    if st is None:
        st = strike.evaluate(rule, seq, was_active)
        _remember(comp.strike_memo, key, st)
    return st


def _pinned(pin: Pin, m: MinerView, mem: MinerMemory) -> tuple[Target, Reason]:
    values: dict[str, float | str | None] = {"pin": pin.action.value, "source": pin.source, "id": pin.id}
    if pin.until is not None:
        values["until"] = pin.until
    note = f" ({pin.note})" if pin.note else ""
    if pin.action is PinAction.RUN:
        return RUN, Reason(RuleKind.OVERRIDE, "pin", f"pinned to run by {pin.source}{note}", values)
    if pin.action is PinAction.SLEEP:
        return _stop_target(m), Reason(
            RuleKind.OVERRIDE, "pin", f"pinned to sleep by {pin.source}{note}", values
        )
    verb = "in maintenance" if pin.action is PinAction.MAINTENANCE else "excluded from curtailment"
    return mem.target, Reason(RuleKind.OVERRIDE, "pin", f"{verb} by {pin.source}{note}: sent nothing", values)


def _apply_caps(
    comp: _Compiled,
    controls: Controls,
    ordered: list[MinerView],
    keep: list[bool],
    targets: list[Target],
    reasons: list[Reason],
    cap_ok: list[bool],
    mems: list[MinerMemory],
    active: list[str],
    now: float,
) -> float | None:
    tightest: float | None = None
    for rule, matcher, cal in comp.caps:
        found = power_cap.effective_target(rule, cal, controls.events, matcher.sites, now)
        if found is None:
            continue
        kw, source, ev_sites = found
        fixed_w = 0.0
        candidates: list[power_cap.Candidate] = []
        for i, m in enumerate(ordered):
            if not keep[i] or not matcher(m) or (ev_sites and m.site not in ev_sites):
                continue
            run_w = running_power_w(m)
            if run_w is None:
                continue  # unknown power: neither counted nor shed (say so below)
            sleep_w = sleep_power_w(m, run_w)
            t = targets[i]
            if not cap_ok[i] or not m.controllable or (not m.can_sleep and not m.can_limit):
                fixed_w += power_cap.estimate_w(t, run_w, sleep_w)
                continue
            mem = mems[i]
            r = mem.reason
            current = RUN
            if r is not None and r.kind is RuleKind.POWER_CAP and r.rule == rule.name and mem.target != RUN:
                current = mem.target
            candidates.append(
                power_cap.Candidate(m, run_w, sleep_w if m.can_sleep else None, efficiency(m), current, i)
            )
        res = power_cap.allocate(rule, kw, source, fixed_w, candidates)
        for i, (t, r) in res.changes.items():
            targets[i], reasons[i] = t, r
            cap_ok[i] = False
        active.append(rule.name)
        tightest = kw if tightest is None else min(tightest, kw)
    return tightest
