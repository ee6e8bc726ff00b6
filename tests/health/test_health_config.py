"""[health] in the config file: validated with key paths, defaults the code's, applied by the daemon."""

from __future__ import annotations

import tomllib
from dataclasses import asdict
from pathlib import Path

import pytest

from fleetd.config import ConfigError, HealthConfig, parse_config
from fleetd.daemon.core import Daemon
from fleetd.health.monitor import TREND_CLEAR_AFTER_S, TREND_START_AFTER_S, HealthMonitor
from fleetd.health.tracker import CLEAR_AFTER_S, MIN_DURATION_S, RESTART_WINDOW_S
from fleetd.health.trends import TrendRules

ROOT = Path(__file__).resolve().parents[2]


def test_defaults_are_the_codes_defaults() -> None:
    h = HealthConfig()
    assert h.trends.rules() == TrendRules()
    assert (h.trends.start_after_s, h.trends.clear_after_s) == (TREND_START_AFTER_S, TREND_CLEAR_AFTER_S)
    f = h.findings
    assert (f.min_duration_s, f.clear_after_s, f.restart_window_s) == (
        MIN_DURATION_S,
        CLEAR_AFTER_S,
        RESTART_WINDOW_S,
    )


def test_the_example_documents_the_defaults() -> None:
    example = tomllib.loads((ROOT / "config" / "fleetd.example.toml").read_text())["health"]
    assert example == HealthConfig().model_dump()


def test_errors_name_the_key_path() -> None:
    with pytest.raises(ConfigError) as exc:
        parse_config(
            {
                "health": {
                    "trends": {"window_h": 0, "t_min": "x", "typo": 1},
                    "findings": {"clear_after_s": -1},
                }
            }
        )
    lines = exc.value.errors
    assert any(e.startswith("health.trends.window_h: ") for e in lines), lines
    assert any(e.startswith("health.trends.t_min: ") for e in lines), lines
    assert any(e.startswith("health.trends.typo: unknown key") for e in lines), lines
    assert any(e.startswith("health.findings.clear_after_s: ") for e in lines), lines


def test_the_daemon_applies_the_section() -> None:
    config = parse_config(
        {
            "health": {
                "findings": {"min_duration_s": 30, "clear_after_s": 90, "restart_window_s": 3600},
                "trends": {"window_h": 12, "restarts": 5, "start_after_s": 0, "clear_after_s": 3600},
            }
        }
    )
    daemon = Daemon(config, storage=False)
    mon = HealthMonitor(None)
    daemon._configure_health(mon)
    assert (mon.tracker.min_duration_s, mon.tracker.clear_after_s, mon.restarts.window_s) == (30, 90, 3600)
    assert (mon.trend_tracker.min_duration_s, mon.trend_tracker.clear_after_s) == (0, 3600)
    assert daemon._trend_rules() == TrendRules(**{**asdict(TrendRules()), "window_h": 12.0, "restarts": 5})
