"""Pure builders of the curtailment and event-log documents, and parsers of the write requests' bodies."""

from __future__ import annotations

import math
from collections.abc import Iterable, Mapping
from datetime import datetime
from typing import Any

from fleetd.api.views import _split
from fleetd.curtail.model import Action, Actual, DemandEvent, Pin, PinAction
from fleetd.curtail.status import CurtailStatus, MinerCurtailStatus
from fleetd.daemon.events import Event, EventKind
from fleetd.daemon.state import FleetState
from fleetd.numbers import finite

ACTIONS: tuple[str, ...] = tuple(a.value for a in Action)
ACTUALS: tuple[str, ...] = tuple(a.value for a in Actual)
PIN_ACTIONS: tuple[str, ...] = tuple(a.value for a in PinAction)
EVENT_KINDS: tuple[str, ...] = tuple(k.value for k in EventKind)
EVENTS_LIMIT_MAX = 1000
EVENTS_LIMIT_DEFAULT = 100


def pin_dict(p: Pin) -> dict[str, Any]:
    return {
        "id": p.id,
        "action": p.action.value,
        "miners": list(p.miners),
        "sites": list(p.sites),
        "models": list(p.models),
        "until": p.until,
        "note": p.note,
        "source": p.source,
    }


def dr_dict(e: DemandEvent, now: float) -> dict[str, Any]:
    return {
        "id": e.id,
        "target_kw": e.target_kw,
        "start": e.start,
        "end": e.end,
        "active": e.start <= now < e.end,
        "sites": list(e.sites),
        "source": e.source,
    }


def miner_dict(m: MinerCurtailStatus, site: str, model: str) -> dict[str, Any]:
    return {
        "id": m.miner_id,
        "site": site,
        "model": model,
        "target": str(m.target),
        "action": m.target.action.value,
        "power_limit_w": m.target.power_limit_w,
        "actual": m.actual.value,
        "reason": m.reason.to_dict(),
        "since": m.since,
        "verified_at": m.verified_at or None,
        "controllable": m.controllable,
        "in_flight": m.in_flight,
        "waiting": m.waiting,
        "failures": m.failures,
        "error": m.last_error,
    }


def _labels(state: FleetState, miner_id: str) -> tuple[str, str]:
    rec = state.miners.get(miner_id)
    if rec is None:
        return "", ""
    return rec.labels.site, rec.identity.model if rec.identity else rec.model


def miner_doc(status: CurtailStatus | None, state: FleetState, miner_id: str) -> dict[str, Any] | None:
    m = status.miners.get(miner_id) if status is not None else None
    if m is None:
        return None
    return miner_dict(m, *_labels(state, miner_id))


def filter_statuses(
    status: CurtailStatus | None,
    state: FleetState,
    *,
    sites: Iterable[str] = (),
    models: Iterable[str] = (),
    states: Iterable[str] = (),
    targets: Iterable[str] = (),
) -> list[dict[str, Any]]:
    """Per-miner documents matching every filter (case-insensitive; any value within one filter)."""
    site_set, model_set, state_set, target_set = (
        _split(sites),
        _split(models),
        _split(states),
        _split(targets),
    )
    if bad := state_set - set(ACTUALS):
        raise ValueError(f"state must be one of {', '.join(ACTUALS)}; got {', '.join(sorted(bad))}")
    if bad := target_set - set(ACTIONS):
        raise ValueError(f"target must be one of {', '.join(ACTIONS)}; got {', '.join(sorted(bad))}")
    if status is None:
        return []
    out = []
    for mid, m in status.miners.items():
        site, model = _labels(state, mid)
        if site_set and site.lower() not in site_set:
            continue
        if model_set and model.lower() not in model_set:
            continue
        if state_set and m.actual.value not in state_set:
            continue
        if target_set and m.target.action.value not in target_set:
            continue
        out.append(miner_dict(m, site, model))
    return out


def _counts(values: Iterable[str], keys: tuple[str, ...]) -> dict[str, int]:
    out = dict.fromkeys(keys, 0)
    for v in values:
        out[v] = out.get(v, 0) + 1
    return out


def fleet_doc(
    status: CurtailStatus | None,
    *,
    configured: bool,
    enforce: bool,
    enforce_override: bool | None,
    enforce_configured: bool,
    pins: Iterable[Pin],
    dr_events: Iterable[DemandEvent],
    now: float,
) -> dict[str, Any]:
    """The fleet half of GET /api/curtailment (the miners are added by the caller)."""
    miners: Mapping[str, MinerCurtailStatus] = status.miners if status is not None else {}
    target_kw = finite(status.target_kw) if status else None
    load_kw = finite(status.load_kw) if status else None
    return {
        "configured": configured,
        "enforce": enforce,
        "enforce_override": enforce_override,
        "enforce_configured": enforce_configured,
        "decided_at": status.decided_at if status else None,
        "failsafe": status.failsafe if status else "",
        "active_rules": list(status.active_rules) if status else [],
        "load_kw": load_kw,
        "target_kw": target_kw,
        "headroom_kw": None if target_kw is None or load_kw is None else target_kw - load_kw,
        "shed_kw": (finite(status.shed_kw) or 0.0) if status else 0.0,
        "commands": {
            "sent": dict(status.sent) if status else {},
            "failed": dict(status.failed) if status else {},
            "retried": dict(status.retried) if status else {},
        },
        "by_target": _counts((m.target.action.value for m in miners.values()), ACTIONS),
        "by_actual": _counts((m.actual.value for m in miners.values()), ACTUALS),
        "not_controllable": sum(1 for m in miners.values() if not m.controllable),
        "pins": [pin_dict(p) for p in pins],
        "dr_events": [dr_dict(e, now) for e in dr_events],
    }


def event_dict(e: Event) -> dict[str, Any]:
    return {"at": e.at, "kind": e.kind.value, "level": e.level, "miner_id": e.miner_id, "message": e.message}


def filter_events(
    events: Iterable[Event],
    *,
    kinds: Iterable[str] = (),
    miners: Iterable[str] = (),
    since: float | None = None,
    limit: int = EVENTS_LIMIT_DEFAULT,
) -> list[dict[str, Any]]:
    """The newest `limit` events matching the filters, oldest first."""
    kind_set = _split(kinds)
    if bad := kind_set - set(EVENT_KINDS):
        raise ValueError(f"kind must be among {', '.join(EVENT_KINDS)}; got {', '.join(sorted(bad))}")
    miner_set = {v.strip() for raw in miners for v in raw.split(",") if v.strip()}
    matched = [
        e
        for e in events
        if (not kind_set or e.kind.value in kind_set)
        and (not miner_set or e.miner_id in miner_set)
        and (since is None or e.at > since)
    ]
    return [event_dict(e) for e in matched[-limit:]] if limit else []


# --- request parsing ---------------------------------------------------------------------------------------
def parse_time(value: Any, what: str) -> float:
    """A unix time (number) or an ISO 8601 time with an offset ('Z' included) -> unix seconds."""
    if isinstance(value, bool):
        raise ValueError(f"{what} must be a unix time or an ISO 8601 time, got {value!r}")
    if isinstance(value, int | float):
        if not math.isfinite(value) or not 0 < value < 1e11:
            raise ValueError(f"{what} out of range: {value!r}")
        return float(value)
    if isinstance(value, str):
        try:
            dt = datetime.fromisoformat(value.strip().replace("Z", "+00:00"))
        except ValueError:
            raise ValueError(f"{what} is not an ISO 8601 time: {value!r}") from None
        if dt.tzinfo is None:
            raise ValueError(f"{what} needs a UTC offset (e.g. 2026-07-01T18:00:00-05:00 or ...Z): {value!r}")
        return dt.timestamp()
    raise ValueError(f"{what} must be a unix time or an ISO 8601 time, got {value!r}")


def _str_list(body: Mapping[str, Any], key: str) -> list[str]:
    raw = body.get(key, [])
    if isinstance(raw, str):
        raw = [raw]
    if not isinstance(raw, list) or not all(isinstance(v, str) and v.strip() for v in raw):
        raise ValueError(f"{key} must be a list of non-empty strings")
    return [v.strip() for v in raw]


def _check_keys(body: Any, allowed: set[str]) -> Mapping[str, Any]:
    if not isinstance(body, dict):
        raise ValueError("the body must be a JSON object")
    if unknown := set(body) - allowed:
        raise ValueError(
            f"unknown field(s) {', '.join(sorted(unknown))}; expected {', '.join(sorted(allowed))}"
        )
    return body


def parse_pin(body: Any) -> dict[str, Any]:
    """The keyword arguments of ControlsStore.pin from a POST body."""
    b = _check_keys(body, {"action", "miners", "sites", "models", "all", "until", "note"})
    action = b.get("action")
    if action not in PIN_ACTIONS:
        raise ValueError(f"action must be one of {', '.join(PIN_ACTIONS)}, got {action!r}")
    out: dict[str, Any] = {
        "action": action,
        "miners": _str_list(b, "miners"),
        "sites": _str_list(b, "sites"),
        "models": _str_list(b, "models"),
    }
    every = b.get("all", False)
    if not isinstance(every, bool):
        raise ValueError("all must be true or false")
    scoped = out["miners"] or out["sites"] or out["models"]
    if not scoped and not every:
        raise ValueError('give miners, sites or models (or "all": true to pin every miner)')
    if scoped and every:
        raise ValueError('"all": true cannot be combined with miners, sites or models')
    if b.get("until") is not None:
        out["until"] = parse_time(b["until"], "until")
    note = b.get("note", "")
    if not isinstance(note, str):
        raise ValueError("note must be a string")
    out["note"] = note
    return out


def parse_dr(body: Any, now: float) -> dict[str, Any]:
    """The keyword arguments of ControlsStore.start_event from a POST body (`end` or `duration_s`)."""
    b = _check_keys(body, {"target_kw", "end", "duration_s", "start", "sites"})
    kw = b.get("target_kw")
    if isinstance(kw, bool) or not isinstance(kw, int | float) or not math.isfinite(kw) or kw < 0:
        raise ValueError(f"target_kw must be a number of kW, 0 or more, got {kw!r}")
    if ("end" in b) == ("duration_s" in b):
        raise ValueError("give exactly one of end (unix or ISO 8601 time) and duration_s")
    start = parse_time(b["start"], "start") if b.get("start") is not None else None
    if "end" in b:
        end = parse_time(b["end"], "end")
    else:
        d = b["duration_s"]
        if isinstance(d, bool) or not isinstance(d, int | float) or not math.isfinite(d) or d <= 0:
            raise ValueError(f"duration_s must be a positive number of seconds, got {d!r}")
        end = (start or now) + float(d)
    return {"target_kw": float(kw), "end": end, "start": start, "sites": _str_list(b, "sites")}


def parse_enforce(body: Any) -> bool | None:
    b = _check_keys(body, {"enforce"})
    if "enforce" not in b or not (b["enforce"] is None or isinstance(b["enforce"], bool)):
        raise ValueError("enforce must be true (send commands), false (dry run) or null (as configured)")
    return b["enforce"]
