"""The executor's pure step planner: which commands go out now, within ramp, dwell and retry limits."""

from __future__ import annotations

from dataclasses import dataclass

from fleetd.curtail.model import Actual, Target


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
