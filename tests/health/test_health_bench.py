"""`fleetd bench --trends` end to end on a small fleet (a smoke test: no timing assertions)."""

from __future__ import annotations

import json
import subprocess
import sys

from fleetd.health.bench import history


def test_trend_bench_json_finds_the_degrading_miners() -> None:
    res = subprocess.run(
        [sys.executable, "-m", "fleetd", "bench", "--trends", "--miners", "300", "--json"],
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )
    assert res.returncode == 0, res.stderr
    out = json.loads(res.stdout)
    assert out["miners"] == 300 and out["rows"] == 300 * 24
    assert out["miners_warned"] == out["degrading"] == 6  # 3 of every 150, and no healthy one
    for key in ("read_s", "points_s", "detect_s", "job_s", "job_cpu_s"):
        assert out[key] >= 0, key
    assert "running the trend job" in res.stderr


def test_trend_bench_rejects_a_short_history() -> None:
    res = subprocess.run(
        [sys.executable, "-m", "fleetd", "bench", "--trends", "--hours", "2"],
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )
    assert res.returncode != 0 and "--hours" in res.stderr


def test_history_shape() -> None:
    rows, models = history(8, 6, 1_800_000_000.0)
    assert len(rows) == 48 and len(models) == 8
    assert len({r.hour_start for r in rows}) == 6
