"""The executor's pure step planner: which commands go out now, within ramp, dwell and retry limits."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass, replace

from fleetd.curtail.config import CurtailmentConfig
from fleetd.curtail.model import Action, Actual, Decision, MinerView, PinAction, RuleKind, Target


@dataclass(frozen=True, slots=True)
class ControlState:
    """What the executor knows of one miner's control: verified state, dwell clock, retries."""

    actual: Actual = Actual.UNKNOWN
    target: Target | None = None  # last target commanded (or verified in place)
    verified_at: float = 0.0
    changed_at: float = 0.0  # last verified transition, for minimum on/off dwell
    in_flight: bool = False
    failures: int = 0  # consecutive failed attempts at `target`
    next_attempt_at: float = 0.0  # retry backoff
    last_error: str = ""


@dataclass(frozen=True, slots=True)
class Command:
    miner_id: str
    target: Target
    attempt: int  # 1 for the first try
    kw_delta: float  # estimated change in load (negative when shedding)


@dataclass(frozen=True, slots=True)
class StepPlan:
    """One ramp step: commands to send now, and why the others wait."""

    commands: tuple[Command, ...]
    waiting: tuple[tuple[str, str], ...] = ()  # (miner id, reason: "dwell", "ramp", "backoff", "in flight")
    next_step_at: float | None = None  # when another step may go out


# --- the planner ------------------------------------------------------------------------------------------

_MATCHES = {Action.RUN: Actual.RUNNING, Action.SLEEP: Actual.SLEEPING, Action.LIMIT: Actual.LIMITED}
EXCLUDED_PINS = frozenset({PinAction.EXCLUDE.value, PinAction.MAINTENANCE.value})
_NEVER_COMMANDED = ControlState()


def satisfied(state: ControlState, target: Target) -> bool:
    """Whether the verified state already is `target` (a limit must be the same limit)."""
    if state.actual is not _MATCHES[target.action]:
        return False
    return target.action is not Action.LIMIT or state.target == target


def excluded(decision: Decision) -> bool:
    """A decision fleetd must not act on: the miner is pinned to exclude or maintenance."""
    return decision.reason.kind is RuleKind.OVERRIDE and decision.reason.values.get("pin") in EXCLUDED_PINS


def kw_delta(view: MinerView | None, state: ControlState, target: Target) -> float:
    """Estimated change in load, kW, if `target` is reached from the current state (unknown power: 0)."""
    if view is None or view.power_w is None:
        return 0.0
    running, asleep = view.power_w, view.sleep_power_w
    now_w = asleep if state.actual is Actual.SLEEPING else running
    if state.actual is Actual.LIMITED and state.target is not None and state.target.power_limit_w:
        now_w = min(running, float(state.target.power_limit_w))
    if state.actual in (Actual.UNKNOWN, Actual.UNRESPONSIVE):
        # Unverified: assume the opposite of the target, so the ramp budgets the worst case.
        now_w = running if target.action is Action.SLEEP else asleep
    action = target.action
    if action is Action.RUN:
        want = running
    elif action is Action.SLEEP:
        want = asleep
    else:
        want = min(running, float(target.power_limit_w or running))
    return (want - now_w) / 1000.0


def _dwell_until(state: ControlState, target: Target, config: CurtailmentConfig) -> float:
    """When the miner's minimum on/off time ends for a change to `target` (0.0: no dwell applies)."""
    if not state.changed_at:
        return 0.0
    if state.actual is Actual.SLEEPING and target.action is not Action.SLEEP:
        return state.changed_at + config.dwell.min_off_s
    if state.actual in (Actual.RUNNING, Actual.LIMITED) and target.action is Action.SLEEP:
        return state.changed_at + config.dwell.min_on_s
    return 0.0


def plan_step(
    decisions: Sequence[Decision],
    states: Mapping[str, ControlState],
    views: Mapping[str, MinerView],
    config: CurtailmentConfig,
    now: float,
) -> StepPlan:
    """The commands to send this step: sheds before restores, each in decision order, within the ramp."""
    waiting: list[tuple[str, str]] = []
    sheds: list[Command] = []
    restores: list[Command] = []
    wake_at: list[float] = []
    get_state, get_view = states.get, views.get
    override, excluded_pins, limit = RuleKind.OVERRIDE, EXCLUDED_PINS, Action.LIMIT
    for d in decisions:
        mid, target = d.miner_id, d.target
        state = get_state(mid) or _NEVER_COMMANDED
        view = get_view(mid)
        reason = d.reason
        if reason.kind is override and reason.values.get("pin") in excluded_pins:  # excluded(d)
            waiting.append((mid, "excluded"))
            continue
        if not d.controllable or (view is not None and not view.controllable):
            waiting.append((mid, "not controllable"))
            continue
        # satisfied(state, target), inlined: most miners are already where the policy wants them
        if state.actual is _MATCHES[target.action] and (target.action is not limit or state.target == target):
            continue
        if state.in_flight:
            waiting.append((mid, "in flight"))
            continue
        if view is not None and not view.up:
            waiting.append((mid, "control lost"))  # nothing is sent until it answers again
            continue
        retrying = state.failures > 0 and state.target == d.target
        if retrying and now < state.next_attempt_at:
            waiting.append((d.miner_id, "backoff"))
            wake_at.append(state.next_attempt_at)
            continue
        dwell = _dwell_until(state, d.target, config)
        if now < dwell:
            waiting.append((d.miner_id, "dwell"))
            wake_at.append(dwell)
            continue
        delta = kw_delta(view, state, d.target)
        cmd = _new_command(d.miner_id, d.target, state.failures + 1 if retrying else 1, delta)
        (sheds if d.target.action is not Action.RUN else restores).append(cmd)
    chosen: list[Command] = []
    kw = 0.0
    r = config.ramp
    for cmd in (*sheds, *restores):  # safety first: shedding load never waits behind restoring it
        size = abs(cmd.kw_delta)
        over_kw = r.max_kw is not None and chosen and kw + size > r.max_kw
        if len(chosen) >= r.max_miners or over_kw:
            waiting.append((cmd.miner_id, "ramp"))
            continue
        chosen.append(cmd)
        kw += size
    if any(why == "ramp" for _, why in waiting):
        wake_at.append(now + r.step_s)
    return StepPlan(tuple(chosen), tuple(waiting), min(wake_at) if wake_at else None)


# A frozen dataclass's __init__ sets each field through object.__setattr__: a third of a 10,000-command step.
_COMMAND_SLOTS = tuple(Command.__dict__[f].__set__ for f in ("miner_id", "target", "attempt", "kw_delta"))


def _new_command(mid: str, target: Target, attempt: int, kw: float) -> Command:
    """Command(mid, target, attempt, kw), built through the slot descriptors."""
    c = object.__new__(Command)
    s_id, s_target, s_attempt, s_kw = _COMMAND_SLOTS
    s_id(c, mid)
    s_target(c, target)
    s_attempt(c, attempt)
    s_kw(c, kw)
    return c


# --- results ----------------------------------------------------------------------------------------------


def started(state: ControlState, cmd: Command) -> ControlState:
    return replace(state, in_flight=True, target=cmd.target)


def succeeded(state: ControlState, cmd: Command, now: float) -> ControlState:
    """A command verified: the miner is in its target state, the dwell clock starts now."""
    return ControlState(
        actual=_MATCHES[cmd.target.action], target=cmd.target, verified_at=now, changed_at=now
    )


def failed(
    state: ControlState, cmd: Command, error: str, config: CurtailmentConfig, now: float
) -> ControlState:
    """A command not verified: back off (doubling), and after `retry.attempts` failures, unresponsive."""
    failures = state.failures + 1 if state.target == cmd.target else 1
    rc = config.retry
    delay = min(rc.backoff_s * 2 ** (failures - 1), rc.max_backoff_s)
    actual = Actual.UNRESPONSIVE if failures >= rc.attempts else state.actual
    return replace(
        state,
        actual=actual,
        target=cmd.target,
        in_flight=False,
        failures=failures,
        next_attempt_at=now + delay,
        last_error=error,
    )


def observed(state: ControlState, seen: Actual | None, now: float) -> ControlState:
    """Follow telemetry: a miner seen hashing is running, one seen asleep is sleeping.

    An unresponsive miner stays flagged until it reaches its target; a manual change outside fleetd is
    taken as a transition (the dwell clock restarts).
    """
    if seen is None or state.in_flight:
        return state
    if state.actual is Actual.UNRESPONSIVE:
        if state.target is None or _MATCHES[state.target.action] is not seen:
            return state
        return replace(state, actual=seen, verified_at=now, changed_at=now, failures=0, last_error="")
    if seen is state.actual:
        return replace(state, verified_at=now)
    changed = state.changed_at if state.actual is Actual.UNKNOWN else now
    return replace(state, actual=seen, verified_at=now, changed_at=changed)
