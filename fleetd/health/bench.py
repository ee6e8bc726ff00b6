"""The trend-job benchmark: a day of hourly health history for N miners in a real database, then what the
daemon's trend job does with it (read the rows, turn them into points, fit and compare every miner).

The history is synthetic: a mix of models, small noise, and 2 % of the miners each degrading one way
(board, fan, chip temperature), so the detector has work to do and warnings to find.
"""

from __future__ import annotations

import random
import tempfile
import time
from collections.abc import Callable
from dataclasses import asdict, dataclass
from typing import Any

from fleetd.health.history import SUMS, HealthHour, points
from fleetd.health.limits import Limits
from fleetd.health.trends import TrendRules, detect

MODELS = ("Antminer S19 Pro", "Antminer S21", "Whatsminer M50S", "Whatsminer M60S")
Progress = Callable[[str], None]


@dataclass(frozen=True, slots=True)
class TrendBenchResult:
    miners: int
    hours: int
    rows: int
    write_s: float  # storing the history (setup, not part of the job)
    read_s: float  # the job: rows from the database
    points_s: float  # the job: rows to per-miner points
    detect_s: float  # the job: fits and fleet medians
    job_s: float  # read + points + detect (wall time)
    job_cpu_s: float
    warnings: int
    miners_warned: int
    degrading: int  # miners given a trend

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)


def history(miners: int, hours: int, now: float, seed: int = 0) -> tuple[list[HealthHour], dict[str, str]]:
    """Synthetic hourly health rows (one flush per hour) and each miner's model."""
    rng = random.Random(seed)
    start = now - now % 3600 - (hours - 1) * 3600
    rows: list[HealthHour] = []
    models: dict[str, str] = {}
    for i in range(miners):
        mid = f"10.{(i >> 16) & 255}.{(i >> 8) & 255}.{i & 255}"
        models[mid] = MODELS[i % len(MODELS)]
        kind = i % 150  # 3 of every 150 (2 %) degrade: 0 board, 1 fan, 2 chip temperature
        for h in range(hours):
            n = 120  # samples an hour at a 30 s poll interval
            temp = 70.0 + rng.uniform(-0.5, 0.5) + (0.3 * h if kind == 2 else 0.0)
            fan = 5800.0 + rng.uniform(-20, 20) + (25.0 * h if kind == 1 else 0.0)
            ratio = 0.99 + rng.uniform(-0.005, 0.005) - (0.01 * h if kind == 0 else 0.0)
            sums = {
                "samples": n,
                "chip_temp_sum_c": temp * n,
                "chip_temp_n": n,
                "env_temp_sum_c": 25.0 * n,
                "env_temp_n": n,
                "fan_rpm_sum": fan * n,
                "fan_n": n,
                "hw_errors": float(rng.randint(0, 20)),
                "hw_s": 3600.0,
                "power_w_sum": 3250.0 * n,
                "eff_hashrate_ths_sum": (110.0 + rng.uniform(-1, 1)) * n,
                "eff_n": n,
                "board_ratio_sum": ratio * n,
                "board_n": n,
                "restarts": 0,
            }
            rows.append(HealthHour(mid, start + h * 3600.0, tuple(float(sums[k]) for k in SUMS), 2))
    return rows, models


def run(miners: int, *, hours: int = 24, url: str | None = None, progress: Progress = lambda s: None) -> Any:
    """Store `hours` of history for `miners` (SQLite in a temporary directory unless `url`), time the job."""
    from fleetd.storage.store import Storage

    now = time.time()
    rows, models = history(miners, hours, now)
    degrading = sum(1 for i in range(miners) if i % 150 < 3)
    with tempfile.TemporaryDirectory(prefix="fleetd-trend-bench-") as tmp:
        store = Storage(url or f"sqlite:///{tmp}/fleetd.db", queue_size=len(rows) + 10)
        store.open()
        try:
            progress(f"writing {len(rows):,} hourly rows ({miners:,} miners x {hours} h)")
            t0 = time.perf_counter()
            store.add_health_hours(rows)
            if not store.flush(600.0):
                raise TimeoutError("storing the history took longer than 600 s")
            write_s = time.perf_counter() - t0
            del rows
            progress(f"stored in {write_s:.1f} s; running the trend job")
            rules = TrendRules()
            c0, t0 = time.process_time(), time.perf_counter()
            stored = store.health_hours(since=now - (rules.window_h + 1) * 3600.0)
            t1 = time.perf_counter()
            series = points(stored)
            t2 = time.perf_counter()
            found = detect(series, models, lambda _m: Limits(fan_max_rpm=6600.0), now, rules)
            t3 = time.perf_counter()
            cpu = time.process_time() - c0
        finally:
            store.close()
    return TrendBenchResult(
        miners=miners,
        hours=hours,
        rows=len(stored),
        write_s=round(write_s, 2),
        read_s=round(t1 - t0, 2),
        points_s=round(t2 - t1, 2),
        detect_s=round(t3 - t2, 2),
        job_s=round(t3 - t0, 2),
        job_cpu_s=round(cpu, 2),
        warnings=sum(len(w) for w in found.values()),
        miners_warned=len(found),
        degrading=degrading,
    )


def report(r: TrendBenchResult) -> str:
    """Human-readable summary."""
    return "\n".join(
        [
            f"fleetd bench --trends: {r.miners:,} miners x {r.hours} h of hourly health history "
            f"({r.rows:,} rows)",
            f"  trend job         {r.job_s:.2f} s ({r.job_cpu_s:.2f} s CPU): read {r.read_s:.2f} s, "
            f"points {r.points_s:.2f} s, fits and medians {r.detect_s:.2f} s",
            f"  found             {r.warnings} warnings on {r.miners_warned} miners "
            f"({r.degrading} were given a trend)",
            f"  setup             history stored in {r.write_s:.1f} s",
        ]
    )
