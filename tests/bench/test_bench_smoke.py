"""`fleetd bench` end to end with a handful of miners (a smoke test: no timing assertions)."""

from __future__ import annotations

import json
import subprocess
import sys

import pytest

from fleetd.bench import children_cpu_s, fleet_groups, rss_kb


def _fleetd(*args: str, timeout: float = 60) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "fleetd", *args], capture_output=True, text=True, timeout=timeout, check=False
    )


def test_bench_json_reports_the_figures():
    res = _fleetd(
        "bench", "--miners", "4", "--cycles", "2", "--interval", "0.5", "--base", "127.16.70.1", "--json"
    )
    assert res.returncode == 0, res.stderr
    out = json.loads(res.stdout)  # one object, nothing else on stdout
    for key in ("cycle_s", "polls_per_s", "cpu_ms_per_poll", "rss_kb_per_miner"):
        assert isinstance(out[key], (int, float)), key
    assert out["miners"] == 4 and out["cycles"] == 2
    assert 0 < out["polls"] <= 8 and out["failed"] == 0  # 4 miners x 2 cycles (an overrun may skip some)
    assert out["cpu_ms_per_poll"] > 0 and out["polls_per_s"] > 0
    assert "warm-up cycle 1" in res.stderr and "cycle 2/2" in res.stderr  # progress on stderr


def test_bench_summary_text():
    res = _fleetd("bench", "--miners", "2", "--cycles", "1", "--interval", "0.3", "--base", "127.16.71.1")
    assert res.returncode == 0, res.stderr
    assert "ms per miner poll" in res.stdout and "KB per miner" in res.stdout


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (["--miners", "0"], "--miners must be at least 1"),
        (["--base", "10.0.0.1"], "loopback"),
        (["--base", "nonsense"], "not an IPv4 address"),
        (["--interval", "0"], "--interval must be positive"),
    ],
)
def test_bench_bad_arguments_are_one_line_errors(args, message):
    res = _fleetd("bench", *args)
    assert res.returncode == 2
    assert message in res.stderr and "Traceback" not in res.stderr
    assert len(res.stderr.strip().splitlines()) == 1


def test_fleet_groups_mix_models_on_consecutive_addresses():
    groups = fleet_groups(7, "127.16.72.1")
    assert sum(g.count for g in groups) == 7
    assert len({g.model for g in groups}) == len(groups) > 1
    assert groups[0].base == "127.16.72.1"
    assert groups[1].base == f"127.16.72.{1 + groups[0].count}"
    assert all(g.ports.get("web", 8080) == 8080 for g in groups)  # no privileged port, so no root needed
    assert any("web" in g.ports for g in groups)


def test_process_measurements():
    import os

    assert rss_kb() > 0
    assert children_cpu_s([os.getpid()]) > 0
    assert children_cpu_s([2**22 + 12345]) == 0  # gone processes count nothing
