"""`fleetd bench curtail` at a tiny size: the figures are there and every command verified (no timing)."""

from __future__ import annotations

import json
import subprocess
import sys

from fleetd.bench_curtail import bench_config, measure_decide, synthetic_miners
from tests.conftest import loopback_host


def test_bench_curtail_json_at_twenty_miners():
    base = loopback_host(100)
    res = subprocess.run(
        [
            sys.executable,
            "-m",
            "fleetd",
            "bench",
            "curtail",
            "--miners",
            "20",
            "--passes",
            "3",
            "--base",
            base,
            "--json",
        ],
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )
    assert res.returncode == 0, res.stderr
    out = json.loads(res.stdout)  # one object, nothing else on stdout
    d, s = out["decide"], out["spike"]
    assert d["miners"] == 20 and d["passes"] == 3
    assert d["decide_ms_median"] > 0 and d["plan_step_ms_median"] >= 0
    assert s["miners"] == 20 and s["commands"] == 20  # the whole fleet in the first ramp step
    assert s["verified"] == 20 and s["failed"] == 0 and s["errors"] == []
    assert sum(s["models"].values()) == 20 and len(s["models"]) >= 4  # every driver family that can sleep
    assert (
        0 < s["sent_s"] <= s["verified_s"] and s["verified_per_s"] > 0 and s["cpu_s"] >= s["cpu_sent_s"] >= 0
    )
    assert "pass 3/3" in res.stderr and "20 of 20 miners identified" in res.stderr


def test_bench_curtail_summary_and_bad_passes():
    base = loopback_host(100)
    res = subprocess.run(
        [
            sys.executable,
            "-m",
            "fleetd",
            "bench",
            "curtail",
            "--miners",
            "6",
            "--skip",
            "spike",
            "--base",
            base,
        ],
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )
    assert res.returncode == 0, res.stderr
    assert "ms per pass for 6 miners" in res.stdout and "price spike" not in res.stdout
    bad = subprocess.run(
        [sys.executable, "-m", "fleetd", "bench", "curtail", "--passes", "0"],
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )
    assert bad.returncode == 2 and "--passes must be at least 1" in bad.stderr


def test_synthetic_fleet_exercises_every_rule_kind():
    r = measure_decide(400, passes=6)
    assert r.sleeping > 0  # the strike pass (last) curtails
    cfg = bench_config(400)
    assert {rule.kind for rule in cfg.rules} == {"economic", "price_strike", "schedule", "power_cap"}
    miners = synthetic_miners(400)
    assert len({m.id for m in miners}) == 400 and any(m.can_limit for m in miners)
    assert any(not m.up for m in miners)  # the fail-safe path is timed too
