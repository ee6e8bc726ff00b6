"""Hourly health aggregates per miner, the input of the trend detector: sums over poll samples.

`HealthSampler` is fed every fresh snapshot (no I/O) and drained into `HealthHour` rows that are additive
(rows for the same miner and hour are summed), as the hourly rollups are. `points()` turns stored rows
back into means per hour.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from statistics import median
from typing import Any

from fleetd.health.diagnosis import num
from fleetd.model import Mode, Snapshot

# The summed columns of health_hourly, in RollupRow-like positional order after miner_id and hour_start.
SUMS = (
    "samples",
    "chip_temp_sum_c",
    "chip_temp_n",
    "env_temp_sum_c",
    "env_temp_n",
    "fan_rpm_sum",
    "fan_n",
    "hw_errors",
    "hw_s",
    "power_w_sum",
    "eff_hashrate_ths_sum",
    "eff_n",
    "board_ratio_sum",
    "board_n",
    "restarts",
)


@dataclass(frozen=True, slots=True)
class HealthHour:
    """Additive health sums of one miner over part of one bucket (an hour unless configured otherwise)."""

    miner_id: str
    hour_start: float
    sums: tuple[float, ...]  # in SUMS order
    board_worst: int | None = None  # index of the board furthest behind (newest sample)

    def merged(self, other: HealthHour) -> HealthHour:
        """Both parts' sums; the newer part's worst board where it has one."""
        sums = tuple(a + b for a, b in zip(self.sums, other.sums, strict=True))
        worst = other.board_worst if other.board_worst is not None else self.board_worst
        return HealthHour(self.miner_id, self.hour_start, sums, worst)

    def to_row(self) -> dict[str, Any]:
        return {"miner_id": self.miner_id, "hour_start": self.hour_start, "board_worst": self.board_worst} | {
            k: v for k, v in zip(SUMS, self.sums, strict=True)
        }


@dataclass(frozen=True, slots=True)
class Point:
    """Means of one miner over one bucket; None where nothing was measured."""

    t: float  # bucket start, unix seconds
    chip_temp_c: float | None = None
    env_temp_c: float | None = None
    fan_rpm: float | None = None
    hw_errors_per_h: float | None = None
    efficiency_j_per_th: float | None = None
    board_ratio: float | None = None  # worst board's hashrate / median board hashrate (1.0: even)
    board_worst: int | None = None
    restarts: int = 0


_REAL = (float, int)


def _env_temp(snap: Snapshot) -> float | None:
    t = num(snap.env_temp_c)
    if t is None:
        inlets = [v for b in snap.hashboards if (v := num(b.inlet_temp_c)) is not None]
        t = max(inlets) if inlets else None
    return t if t is not None and t < 100 else None


def board_ratio(snap: Snapshot) -> tuple[float, int] | None:
    """The slowest board's hashrate over the median board's, and its index; None with fewer than 2."""
    rates = [(r, b.index) for b in snap.hashboards if (r := num(b.hashrate_ths)) is not None]
    if len(rates) < 2:
        return None
    mid = median(r for r, _ in rates)
    if mid <= 0:
        return None
    low, index = min(rates)
    return low / mid, index


class HealthSampler:
    """Accumulates per-miner health sums per bucket; counts restarts (uptime going backwards)."""

    __slots__ = ("_acc", "_prev", "bucket_s", "max_gap_s")

    def __init__(self, bucket_s: float = 3600.0, max_gap_s: float = 600.0) -> None:
        self.bucket_s = bucket_s
        self.max_gap_s = max_gap_s
        self._acc: dict[tuple[str, int], list[Any]] = {}
        self._prev: dict[str, tuple[float, int | None, int | None]] = {}  # at, uptime_s, hw_errors

    def sample(self, miner_id: str, snap: Snapshot, now: float) -> None:
        prev = self._prev.get(miner_id)
        uptime = snap.uptime_s if isinstance(snap.uptime_s, int) else None
        hw = snap.hw_errors if isinstance(snap.hw_errors, int) and snap.hw_errors >= 0 else None
        self._prev[miner_id] = (now, uptime, hw)
        bucket = int(now // self.bucket_s)
        acc = self._acc.get((miner_id, bucket))
        if acc is None:
            acc = self._acc[(miner_id, bucket)] = [0.0] * len(SUMS) + [None]
        acc[0] += 1
        if prev is not None and uptime is not None and prev[1] is not None and uptime < prev[1]:
            acc[14] += 1  # restarted since the previous poll
        if not snap.is_mining or snap.mode is Mode.SLEEP:
            return
        # One pass over boards and fans with plain type checks: this runs for every miner every cycle.
        hottest = -1.0
        rates: list[tuple[float, int]] = []
        for b in snap.hashboards:
            t = b.chip_temp_c
            if type(t) in _REAL and hottest < t < 200:  # NaN fails every comparison
                hottest = t
            r = b.hashrate_ths
            if type(r) in _REAL and 0 <= r < 1e9:
                rates.append((r, b.index))
        if hottest < 0:
            t = snap.temp_c
            hottest = t if type(t) in _REAL and 0 <= t < 200 else -1.0
        if hottest >= 0:
            acc[1] += hottest
            acc[2] += 1
        if (t := _env_temp(snap)) is not None:
            acc[3] += t
            acc[4] += 1
        total, running = 0.0, 0
        for f in snap.fans:
            r = f.rpm
            if type(r) in _REAL and 0 < r < 1e6:
                total += r
                running += 1
        if running:
            acc[5] += total / running
            acc[6] += 1
        gap = now - prev[0] if prev is not None else 0.0
        if prev is not None and hw is not None and prev[2] is not None and 0 < gap <= self.max_gap_s:
            acc[7] += hw - prev[2] if hw >= prev[2] else hw  # a reset counter counts from zero
            acc[8] += gap
        power, rate = snap.power_w, snap.hashrate_ths
        if type(power) in _REAL and type(rate) in _REAL and 0 < power < 1e9 and 0 < rate < 1e9:
            acc[9] += power
            acc[10] += rate
            acc[11] += 1
        if len(rates) >= 2:
            rates.sort()
            half = len(rates) // 2
            mid = rates[half][0] if len(rates) % 2 else (rates[half - 1][0] + rates[half][0]) / 2
            if mid > 0:
                acc[12] += rates[0][0] / mid
                acc[13] += 1
                acc[15] = rates[0][1]

    def forget(self, miner_id: str) -> None:
        self._prev.pop(miner_id, None)

    def drain(self) -> list[HealthHour]:
        """Everything accumulated since the last drain."""
        acc, self._acc = self._acc, {}
        return [
            HealthHour(mid, float(bucket * self.bucket_s), tuple(a[: len(SUMS)]), a[len(SUMS)])
            for (mid, bucket), a in acc.items()
        ]


def _mean(total: Any, n: Any) -> float | None:
    return float(total) / float(n) if n else None


def point(row: Mapping[str, Any]) -> Point:
    """Means of one stored (or drained) row."""
    hw_s = row.get("hw_s") or 0.0
    return Point(
        t=float(row["hour_start"]),
        chip_temp_c=_mean(row.get("chip_temp_sum_c"), row.get("chip_temp_n")),
        env_temp_c=_mean(row.get("env_temp_sum_c"), row.get("env_temp_n")),
        fan_rpm=_mean(row.get("fan_rpm_sum"), row.get("fan_n")),
        hw_errors_per_h=float(row.get("hw_errors") or 0.0) * 3600.0 / hw_s if hw_s >= 60 else None,
        efficiency_j_per_th=_mean(row.get("power_w_sum"), row.get("eff_hashrate_ths_sum")),
        board_ratio=_mean(row.get("board_ratio_sum"), row.get("board_n")),
        board_worst=row.get("board_worst"),
        restarts=int(row.get("restarts") or 0),
    )


def points(rows: Iterable[Mapping[str, Any]]) -> dict[str, list[Point]]:
    """Stored rows (any order, several per miner and hour allowed) as each miner's points, oldest first."""
    merged: dict[tuple[str, float], dict[str, Any]] = {}
    for r in rows:
        key = (r["miner_id"], float(r["hour_start"]))
        m = merged.get(key)
        if m is None:
            merged[key] = dict(r)
            continue
        for k in SUMS:
            m[k] = (m.get(k) or 0) + (r.get(k) or 0)
        if r.get("board_worst") is not None:
            m["board_worst"] = r["board_worst"]
    out: dict[str, list[Point]] = {}
    for (mid, _), r in sorted(merged.items(), key=lambda kv: kv[0][1]):
        out.setdefault(mid, []).append(point(r))
    return out
