"""Curtailment memory and control state to and from curtail_state rows (times as unix seconds)."""

from __future__ import annotations

import json
import logging
from collections.abc import Mapping
from types import MappingProxyType
from typing import Any

from fleetd.curtail.model import Action, Actual, MinerMemory, Reason, RuleKind, Target
from fleetd.curtail.ramp import ControlState

log = logging.getLogger("fleetd.curtail")


def _target(action: str, limit_w: int | None) -> Target | None:
    try:
        a = Action(action)
    except ValueError:
        return None
    return Target(a, int(limit_w) if a is Action.LIMIT and limit_w else None)


def _reason(text: str) -> Reason | None:
    try:
        d = json.loads(text or "{}")
        if not d:
            return None
        values = MappingProxyType(dict(d["values"]))
        return Reason(RuleKind(d["kind"]), str(d["rule"]), str(d["text"]), values)
    except (ValueError, KeyError, TypeError):
        return None


def to_row(miner_id: str, memory: MinerMemory, state: ControlState) -> dict[str, Any]:
    t, c = memory.target, state.target
    return {
        "miner_id": miner_id,
        "target": t.action.value,
        "power_limit_w": t.power_limit_w,
        "since": memory.since,
        "reason": json.dumps(memory.reason.to_dict() if memory.reason else {}, sort_keys=True, default=str),
        "streaks": json.dumps(dict(memory.streaks), sort_keys=True),
        "actual": state.actual.value,
        "commanded": c.action.value if c is not None else "",
        "commanded_limit_w": c.power_limit_w if c is not None else None,
        "verified_at": state.verified_at,
        "changed_at": state.changed_at,
        "failures": state.failures,
        "next_attempt_at": state.next_attempt_at,
        "last_error": state.last_error[:500],
    }


def from_row(row: Mapping[str, Any]) -> tuple[MinerMemory, ControlState] | None:
    """A stored row back as memory and control state; None (logged) for a row that cannot be read."""
    target = _target(str(row.get("target", "")), row.get("power_limit_w"))
    if target is None:
        log.warning("curtailment state of %s unreadable; starting it afresh", row.get("miner_id"))
        return None
    try:
        streaks = {str(k): int(v) for k, v in json.loads(row.get("streaks") or "{}").items()}
    except (ValueError, TypeError, AttributeError):
        streaks = {}
    try:
        actual = Actual(row.get("actual") or "unknown")
    except ValueError:
        actual = Actual.UNKNOWN
    memory = MinerMemory(target, float(row.get("since") or 0.0), _reason(row.get("reason") or ""), streaks)
    state = ControlState(
        actual=actual,
        target=_target(str(row.get("commanded") or ""), row.get("commanded_limit_w")),
        verified_at=float(row.get("verified_at") or 0.0),
        changed_at=float(row.get("changed_at") or 0.0),
        failures=int(row.get("failures") or 0),
        next_attempt_at=float(row.get("next_attempt_at") or 0.0),
        last_error=str(row.get("last_error") or ""),
    )
    return memory, state
