"""Plausibility checks of numbers that every layer shares (a reading outside them counts as unknown), and
JSON that a broken figure cannot make fail.

The lowest module of the package (it imports nothing of fleetd), so that drivers, storage, economics,
policy and the views all judge a miner's figures by the same bounds.
"""

from __future__ import annotations

import math
from typing import Any

import orjson

# Per miner; anything outside (or NaN, inf, a wrong type) is not a reading but a broken figure.
MAX_HASHRATE_THS = 100_000.0
MAX_POWER_W = 100_000.0
MIN_TEMP_C = -60.0
MAX_TEMP_C = 200.0  # and above: a broken sensor, not heat
MAX_RPM = 100_000
MAX_PROFIT_USD_PER_DAY = 1e6
MAX_EFFICIENCY_J_PER_TH = 10_000.0
INT64_MAX = 2**63 - 1


def number(x: object, lo: float, hi: float) -> float | None:
    """`x` as a float when it is a real number within [lo, hi], else None (NaN fails both comparisons)."""
    t = type(x)
    if t is float:  # the common case first: called for several figures of every miner in every view
        return x if lo <= x <= hi else None  # type: ignore[operator,return-value]
    if t is int:
        return float(x) if lo <= x <= hi else None  # type: ignore[operator,arg-type]
    return None


def finite(x: object) -> float | None:
    """`x` as a float when it is a finite real number (not a bool), else None."""
    t = type(x)
    if t is float:
        return x if math.isfinite(x) else None  # type: ignore[arg-type,return-value]
    if t is int:
        return float(x) if -1e300 < x < 1e300 else None  # type: ignore[operator,arg-type]
    return None


def hashrate_ths(x: object) -> float | None:
    """A miner's (or a board's) hashrate when plausible, else None."""
    if type(x) is float:
        return x if 0.0 <= x <= MAX_HASHRATE_THS else None  # type: ignore[operator,return-value]
    return number(x, 0.0, MAX_HASHRATE_THS)


def power_w(x: object) -> float | None:
    """A miner's power when plausible, else None."""
    if type(x) is float:
        return x if 0.0 <= x <= MAX_POWER_W else None  # type: ignore[operator,return-value]
    return number(x, 0.0, MAX_POWER_W)


def temp_c(x: object) -> float | None:
    """A temperature when plausible, else None."""
    if type(x) is float:
        return x if MIN_TEMP_C <= x <= MAX_TEMP_C else None  # type: ignore[operator,return-value]
    return number(x, MIN_TEMP_C, MAX_TEMP_C)


def count(x: object) -> int | None:
    """A non-negative whole number that fits a 64-bit column (counters, seconds, rpm), else None."""
    return x if type(x) is int and 0 <= x <= INT64_MAX else None  # type: ignore[operator,return-value]


def json_safe(obj: Any) -> Any:
    """`obj` with what JSON (orjson) or a 64-bit column cannot hold made None: NaN, inf, integers beyond 64
    bits, objects of unknown types. Only for the slow path, after a fast serialization failed."""
    t = type(obj)
    if t is str or t is bool or obj is None:
        return obj
    if t is int:
        return obj if -INT64_MAX - 1 <= obj <= INT64_MAX else None
    if t is float:
        return obj if math.isfinite(obj) else None
    if isinstance(obj, dict):
        return {str(k): json_safe(v) for k, v in obj.items()}
    if isinstance(obj, list | tuple):
        return [json_safe(v) for v in obj]
    if isinstance(obj, str):  # StrEnum members
        return str(obj)
    if isinstance(obj, bool):
        return bool(obj)
    if isinstance(obj, int):  # IntEnum and other subclasses
        return json_safe(int(obj))
    if isinstance(obj, float):
        return json_safe(float(obj))
    return None


def json_bytes(obj: Any) -> bytes:
    """`obj` as JSON. orjson writes NaN/inf (which broken firmwares produce) as null; what it refuses
    (integers beyond 64 bits, unknown types) becomes null on a second, slower pass."""
    try:
        return orjson.dumps(obj)
    except TypeError:
        return orjson.dumps(json_safe(obj))
