"""Physical plausibility of a normalized reading: an impossible figure becomes None, with a fault.

Every driver's readings pass through `checked_reading` (see `Driver.__init_subclass__`), so a
firmware that reports NaN, infinities, 1e300 or 10**30, negative hashrates or a million fans
never hands such a figure to the layers above. Each figure dropped leaves a Fault with code
IMPLAUSIBLE naming the field and why (e.g. "hashboards[1].chip_temp_c: 1e+300 out of range
[-40, 200]"). Integer counters the model keeps as int (pool shares) become 0 instead of None.
A plausible reading comes back as the same object, after one comparison per figure.
"""

from __future__ import annotations

import dataclasses
import functools
import math
from collections.abc import Mapping
from typing import Any

from fleetd.model import Component, Fan, Fault, Hashboard, Pool, Reading, Snapshot
from fleetd.numbers import MAX_POWER_W, MAX_TEMP_C

__all__ = ["IMPLAUSIBLE", "LIMITS", "checked", "checked_reading"]

IMPLAUSIBLE = "implausible"

# Within fleetd.numbers' bounds, which the views apply (tests/hardening checks it); stricter where a
# single reading can be judged more closely.
_THS = (0.0, 10_000.0)  # 10 PH/s: far above any single machine
_W = (0.0, MAX_POWER_W)
_TEMP = (-40.0, MAX_TEMP_C)
_RPM = (0, 50_000)
_CHIPS = (0, 10_000)
_COUNT = (0, 10**15)  # share and error counters
_UPTIME = (0, 20 * 365 * 86400)
_INDEX = (0, 1023)  # a board, fan or pool number; an impossible one becomes the item's position

# Per-field limits [low, high], inclusive, by where the field lives.
LIMITS: Mapping[str, Mapping[str, tuple[float, float]]] = {
    "snapshot": {
        "hashrate_ths": _THS,
        "hashrate_avg_ths": _THS,
        "expected_hashrate_ths": _THS,
        "power_w": _W,
        "power_limit_w": _W,
        "uptime_s": _UPTIME,
        "temp_c": _TEMP,
        "env_temp_c": _TEMP,
        "hw_errors": _COUNT,
    },
    "board": {
        "index": _INDEX,
        "hashrate_ths": _THS,
        "expected_hashrate_ths": _THS,
        "chips": _CHIPS,
        "expected_chips": _CHIPS,
        "chip_temp_c": _TEMP,
        "board_temp_c": _TEMP,
        "inlet_temp_c": _TEMP,
        "outlet_temp_c": _TEMP,
    },
    "fan": {"index": _INDEX, "rpm": _RPM},
    "pool": {"index": _INDEX, "accepted": _COUNT, "rejected": _COUNT, "stale": _COUNT},
    # PSU facts by unit suffix; any other number only needs to be finite and within +/-1e9.
    "psu": {
        "_w": _W,
        "_v": (0.0, 1_000.0),
        "_mv": (0.0, 1_000_000.0),
        "_a": (0.0, 1_000.0),
        "_c": _TEMP,
        "_rpm": _RPM,
        "": (-1e9, 1e9),
    },
}
# Longest lists a machine can have; the rest is dropped with a fault.
MAX_ITEMS = {"hashboards": 64, "fans": 64, "pools": 32, "errors": 256, "psu": 64}

_Limits = tuple[tuple[str, float, float], ...]
_SNAPSHOT: _Limits = tuple((k, lo, hi) for k, (lo, hi) in LIMITS["snapshot"].items())
_BOARD: _Limits = tuple((k, lo, hi) for k, (lo, hi) in LIMITS["board"].items())
_FAN: _Limits = tuple((k, lo, hi) for k, (lo, hi) in LIMITS["fan"].items())
_POOL: _Limits = tuple((k, lo, hi) for k, (lo, hi) in LIMITS["pool"].items())
_PSU = tuple((k, v) for k, v in LIMITS["psu"].items() if k)
_PSU_ANY = LIMITS["psu"][""]
_COMPONENT = {"hashboards": Component.BOARD, "fans": Component.FAN, "pools": Component.POOL}


def _fits(v: Any, lo: float, hi: float) -> bool:
    """Whether v is None or a number within [lo, hi] (NaN never is)."""
    if v is None:
        return True
    t = type(v)
    return (t is float or t is int) and lo <= v <= hi


def _all_fit(obj: object, limits: tuple[tuple[str, float, float], ...]) -> bool:
    # _fits inlined: this runs for every figure of every poll.
    for name, lo, hi in limits:
        v = getattr(obj, name)
        if v is not None and (((t := type(v)) is not float and t is not int) or not lo <= v <= hi):
            return False
    return True


def _why(path: str, v: Any, lo: float, hi: float) -> str:
    if isinstance(v, bool) or not isinstance(v, (int, float)):
        text = repr(v)
        return f"{path}: {type(v).__name__} {text[:40]}{'...' if len(text) > 40 else ''} is not a number"
    if isinstance(v, float) and not math.isfinite(v):
        return f"{path}: {v} is not a finite number"
    try:
        shown = f"{float(v):g}"
    except OverflowError:  # an integer beyond any float
        shown = f"{'-' if v < 0 else ''}2**{abs(v).bit_length()}"
    return f"{path}: {shown} out of range [{lo:g}, {hi:g}]"


def _component(path: str, name: str) -> Component:
    if name.endswith("_c"):
        return Component.TEMPERATURE
    if path.startswith("psu"):
        return Component.PSU
    return _COMPONENT.get(path.partition("[")[0], Component.OTHER)


def _fix(
    obj: Any,
    limits: _Limits,
    path: str,
    faults: list[Fault],
    empty: Any,
    position: int = 0,
) -> Any:
    """`obj` with each implausible field set to `empty` (an index to `position`), a fault each; or `obj`."""
    changes: dict[str, Any] = {}
    for name, lo, hi in limits:
        v = getattr(obj, name)
        if not _fits(v, lo, hi):
            where = f"{path}.{name}" if path else name
            faults.append(Fault(IMPLAUSIBLE, _why(where, v, lo, hi), _component(where, name)))
            changes[name] = position if name == "index" else empty
    return dataclasses.replace(obj, **changes) if changes else obj


def _items(snap: Snapshot, name: str, faults: list[Fault]) -> tuple[Any, ...]:
    items: tuple[Any, ...] = getattr(snap, name)
    top = MAX_ITEMS[name]
    if len(items) > top:
        msg = f"{name}: {len(items)} reported, more than {top}; kept the first {top}"
        faults.append(Fault(IMPLAUSIBLE, msg, _COMPONENT.get(name, Component.OTHER)))
        items = items[:top]
    return items


@functools.lru_cache(maxsize=1024)
def _psu_limits(key: str) -> tuple[float, float]:
    for suffix, limits in _PSU:
        if key.endswith(suffix):
            return limits
    return _PSU_ANY


def _psu_fits(psu: Mapping[str, Any]) -> bool:
    if len(psu) > MAX_ITEMS["psu"]:
        return False
    for k, v in psu.items():
        t = type(v)
        if t is str or v is None or t is bool:
            continue
        lo, hi = _psu_limits(k)
        if not ((t is float or t is int) and lo <= v <= hi):
            return False
    return True


def _fix_psu(psu: Mapping[str, Any], faults: list[Fault]) -> dict[str, Any]:
    out: dict[str, Any] = {}
    for n, (k, v) in enumerate(psu.items()):
        if n >= MAX_ITEMS["psu"]:
            msg = f"psu: {len(psu)} facts reported, more than {MAX_ITEMS['psu']}; kept the first ones"
            faults.append(Fault(IMPLAUSIBLE, msg, Component.PSU))
            break
        t = type(v)
        if t is str or v is None or t is bool:
            out[k] = v
            continue
        lo, hi = _psu_limits(k)
        if (t is float or t is int) and lo <= v <= hi:
            out[k] = v
        else:
            faults.append(Fault(IMPLAUSIBLE, _why(f"psu.{k}", v, lo, hi), Component.PSU))
            out[k] = None
    return out


def _plausible(snap: Snapshot) -> bool:
    if not _all_fit(snap, _SNAPSHOT):
        return False
    if len(snap.hashboards) > MAX_ITEMS["hashboards"] or len(snap.fans) > MAX_ITEMS["fans"]:
        return False
    if len(snap.pools) > MAX_ITEMS["pools"] or len(snap.errors) > MAX_ITEMS["errors"]:
        return False
    for b in snap.hashboards:
        if not _all_fit(b, _BOARD):
            return False
    for f in snap.fans:
        if not _all_fit(f, _FAN):
            return False
    for p in snap.pools:
        if not _all_fit(p, _POOL):
            return False
    return not snap.psu or _psu_fits(snap.psu)


_last_plausible: list[Snapshot | None] = [None]


def checked(snap: Snapshot) -> Snapshot:
    """`snap` itself when every figure is plausible; else a copy with the impossible ones dropped."""
    # A driver's read() returns what its parse_responses() built: the second look is one comparison.
    if snap is _last_plausible[0]:
        return snap
    if _plausible(snap):
        _last_plausible[0] = snap
        return snap
    faults: list[Fault] = []
    fixed: Snapshot = _fix(snap, _SNAPSHOT, "", faults, None)
    boards: tuple[Hashboard, ...] = tuple(
        _fix(b, _BOARD, f"hashboards[{i}]", faults, None, i)
        for i, b in enumerate(_items(snap, "hashboards", faults))
    )
    fans: tuple[Fan, ...] = tuple(
        _fix(f, _FAN, f"fans[{i}]", faults, None, i) for i, f in enumerate(_items(snap, "fans", faults))
    )
    pools: tuple[Pool, ...] = tuple(
        _fix(p, _POOL, f"pools[{i}]", faults, 0, i) for i, p in enumerate(_items(snap, "pools", faults))
    )
    psu = snap.psu if not snap.psu or _psu_fits(snap.psu) else _fix_psu(snap.psu, faults)
    errors, top = snap.errors, MAX_ITEMS["errors"]
    if len(errors) + len(faults) > top:  # the firmware's own faults give way to these, up to `top` in all
        keep = max(0, top - len(faults) - 1)
        msg = f"errors: {len(errors)} reported with {len(faults)} implausible figures; kept {keep}"
        errors = (*errors[:keep], Fault(IMPLAUSIBLE, msg))
    return dataclasses.replace(
        fixed, hashboards=boards, fans=fans, pools=pools, psu=psu, errors=(*errors, *faults)[:top]
    )


def checked_reading(reading: Reading) -> Reading:
    """`reading` itself when its snapshot is plausible; else one with the snapshot `checked`."""
    snap = checked(reading.snapshot)
    return reading if snap is reading.snapshot else Reading(reading.identity, snap)
