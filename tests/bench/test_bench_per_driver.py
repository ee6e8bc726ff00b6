"""`fleetd bench --per-driver` and `--model` end to end with a handful of miners (no timing assertions)."""

from __future__ import annotations

import json
import subprocess
import sys

from fleetd.bench import PER_DRIVER_MODELS, fleet_groups


def _fleetd(*args: str, timeout: float = 120) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "fleetd", *args], capture_output=True, text=True, timeout=timeout, check=False
    )


def test_per_driver_compares_with_antminer() -> None:
    res = _fleetd(
        "bench", "--miners", "3", "--cycles", "1", "--interval", "0.5", "--base", "127.53.0.1",
        "--per-driver", "braiins,vnish", "--json",
    )  # fmt: skip
    assert res.returncode == 0, res.stderr
    figures = json.loads(res.stdout)
    assert [f["driver"] for f in figures] == ["antminer", "braiins", "vnish"]  # the reference first
    assert figures[0]["vs_reference"] == 1.0
    for f in figures:
        assert f["model"] == PER_DRIVER_MODELS[f["driver"]] and f["failed"] == 0 and f["polls"] > 0
        assert f["cpu_ms_per_poll"] > 0


def test_unknown_driver_is_one_line() -> None:
    res = _fleetd("bench", "--miners", "1", "--per-driver", "nosuch", "--base", "127.53.1.1")
    assert res.returncode == 2 and "no emulated model for driver 'nosuch'" in res.stderr
    assert len(res.stderr.strip().splitlines()) == 1


def test_model_option_picks_the_fleet() -> None:
    groups = fleet_groups(4, "127.53.2.1", models=["Antminer S21 Pro"])
    assert [(g.model, g.count, dict(g.ports)) for g in groups] == [("Antminer S21 Pro", 4, {"web": 8080})]
    res = _fleetd(
        "bench", "--miners", "2", "--cycles", "1", "--interval", "0.5", "--base", "127.53.3.1",
        "--model", "VNish S19", "--json",
    )  # fmt: skip
    assert res.returncode == 0, res.stderr
    out = json.loads(res.stdout)
    assert out["models"] == {"Antminer S19": 2} and out["failed"] == 0
