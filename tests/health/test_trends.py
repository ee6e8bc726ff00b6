"""Trend detector on synthetic hourly histories with known answers, and the sampler that feeds it."""

from __future__ import annotations

import math
import random
from dataclasses import replace

import pytest

from fleetd.health.findings import Severity
from fleetd.health.history import HealthSampler, Point, board_ratio, points
from fleetd.health.limits import Limits
from fleetd.health.trends import TrendRules, detect, fit
from fleetd.model import Fan, Hashboard, Mode, Snapshot

H = 3600.0
T0 = 1_800_000_000.0 - 1_800_000_000.0 % H
MODEL = "Antminer S19 Pro"
LIMITS = Limits(chip_temp_max_c=95.0, fan_max_rpm=6500.0)


def _limits(_model: str) -> Limits:
    return LIMITS


def _history(n: int = 24, seed: int = 0, **slopes: float) -> list[Point]:
    """Hourly points of a healthy miner with small noise, plus `slopes` (per hour) on named fields."""
    rng = random.Random(seed)
    base = {
        "chip_temp_c": 70.0,
        "env_temp_c": 25.0,
        "fan_rpm": 5800.0,
        "hw_errors_per_h": 5.0,
        "efficiency_j_per_th": 29.5,
        "board_ratio": 0.99,
    }
    noise = {"chip_temp_c": 0.3, "fan_rpm": 15.0, "hw_errors_per_h": 0.5, "efficiency_j_per_th": 0.05}
    out = []
    for i in range(n):
        v = {
            k: b + slopes.get(k, 0.0) * i + rng.uniform(-1, 1) * noise.get(k, 0.002) for k, b in base.items()
        }
        out.append(Point(T0 + i * H, board_worst=2, **v))
    return out


def _fleet(**bad: list[Point]) -> dict[str, list[Point]]:
    fleet = {f"ok{i}": _history(seed=i) for i in range(4)}
    fleet.update(bad)
    return fleet


def _detect(series: dict[str, list[Point]], **kw: object) -> dict[str, list]:
    now = max(p.t for pts in series.values() for p in pts)
    return detect(series, dict.fromkeys(series, MODEL), _limits, now, TrendRules(**kw))  # type: ignore[arg-type]


def test_fit_known_line() -> None:
    f = fit([0.0, 1.0, 2.0, 3.0], [1.0, 3.0, 5.0, 7.0])
    assert f is not None and f.slope_per_h == pytest.approx(2.0) and f.end == pytest.approx(7.0)
    assert f.t_stat == math.inf and f.start == pytest.approx(1.0)
    assert fit([0.0, 1.0], [1.0, 2.0]) is None
    assert fit([1.0, 1.0, 1.0], [1.0, 2.0, 3.0]) is None
    noisy = fit([0, 1, 2, 3, 4, 5], [0.0, 1.0, 0.0, 1.0, 0.0, 1.0])
    assert noisy is not None and abs(noisy.t_stat) < 3


def test_healthy_fleet_gives_no_warnings() -> None:
    assert _detect(_fleet()) == {}


def test_rising_chip_temperature_at_same_ambient() -> None:
    got = _detect(_fleet(hot=_history(seed=9, chip_temp_c=0.25)))
    assert list(got) == ["hot"]
    (w,) = got["hot"]
    assert w.code == "chip_temp_rising" and w.severity is Severity.WARNING
    assert w.slope_per_day == pytest.approx(6.0, rel=0.05)
    assert w.window_h == pytest.approx(23.0)
    # now 70 + 23 * 0.25 = 75.75 C, so 19.25 C to the 95 C limit at 0.25 C/h: 77 h
    assert w.time_to_limit_h == pytest.approx(77.0, rel=0.05)
    assert w.limit == 95.0
    assert w.fleet_median == pytest.approx(45.0, abs=0.5)  # chip over ambient of the healthy ones
    assert w.vs_median == pytest.approx(5.75, abs=0.5)
    d = w.to_dict()
    assert d["metric"] == "chip_over_ambient_c" and d["code"] == "chip_temp_rising"


def test_rising_ambient_explains_the_chip_temperature() -> None:
    hot_room = _history(seed=9, chip_temp_c=0.25, env_temp_c=0.25)
    assert _detect(_fleet(warm=hot_room)) == {}


def test_a_trend_the_whole_model_shares_is_not_blamed_on_a_miner() -> None:
    fleet = {f"m{i}": _history(seed=i, chip_temp_c=0.25, fan_rpm=20.0) for i in range(5)}
    assert _detect(fleet) == {}
    # a single miner of its model has no fleet to compare with: its own trend counts
    assert {w.code for w in _detect({"m0": fleet["m0"]})["m0"]} == {"chip_temp_rising", "fan_rpm_rising"}


def test_chip_temperature_with_slowing_fans_is_not_a_cooling_trend() -> None:
    got = _detect(_fleet(slow=_history(seed=9, chip_temp_c=0.25, fan_rpm=-20.0)))
    assert "chip_temp_rising" not in {w.code for w in got.get("slow", [])}


def test_fan_speed_creeping_up_reaches_its_limit() -> None:
    (w,) = _detect(_fleet(fan=_history(seed=9, fan_rpm=20.0)))["fan"]
    assert w.code == "fan_rpm_rising" and w.slope_per_day == pytest.approx(480, rel=0.05)
    # 5800 + 23 * 20 = 6260 rpm now; 240 rpm to 6500 at 20 rpm/h: 12 h, within a day: critical
    assert w.time_to_limit_h == pytest.approx(12.0, rel=0.1)
    assert w.severity is Severity.CRITICAL


def test_hardware_error_rate_rising() -> None:
    (w,) = _detect(_fleet(hw=_history(seed=9, hw_errors_per_h=2.0)))["hw"]
    assert w.code == "hw_errors_rising" and w.value == pytest.approx(51.0, rel=0.05)
    assert w.time_to_limit_h is None and w.fleet_median == pytest.approx(5.0, abs=0.5)
    flat_high = [replace(p, hw_errors_per_h=500.0) for p in _history(seed=9)]
    assert _detect(_fleet(high=flat_high)) == {}  # high but steady: not a trend


def test_efficiency_drifting() -> None:
    (w,) = _detect(_fleet(eff=_history(seed=9, efficiency_j_per_th=0.05)))["eff"]
    assert w.code == "efficiency_drifting" and w.slope_per_day == pytest.approx(1.2, rel=0.1)
    assert w.vs_median == pytest.approx(1.15, abs=0.1)


def test_one_board_falling_behind() -> None:
    (w,) = _detect(_fleet(board=_history(seed=9, board_ratio=-0.01)))["board"]
    assert w.code == "board_lagging" and w.subject == "board 2"
    # 0.99 - 0.23 = 0.76 now, 0.06 above the 0.70 limit at 0.01/h: 6 h
    assert w.value == pytest.approx(0.76, abs=0.01)
    assert w.time_to_limit_h == pytest.approx(6.0, abs=0.5) and w.severity is Severity.CRITICAL


def test_repeated_restarts() -> None:
    pts = _history(seed=9)
    pts = [replace(p, restarts=1) if i in (3, 9, 15, 20) else p for i, p in enumerate(pts)]
    (w,) = _detect(_fleet(flappy=pts))["flappy"]
    assert w.code == "restarts_repeated" and w.value == 4 and w.fleet_median == 0
    assert _detect(_fleet(flappy=pts), restarts=5) == {}


def test_window_and_minimum_points() -> None:
    old_rise = _history(n=48, seed=9, chip_temp_c=0.25)
    flat_recent = old_rise[:24] + [replace(p, chip_temp_c=old_rise[23].chip_temp_c) for p in old_rise[24:]]
    assert _detect(_fleet(x=flat_recent)) == {}  # the rise is older than the 24 h window
    assert _detect(_fleet(x=_history(n=4, seed=9, chip_temp_c=1.0))) == {}  # too few points


def _snap(uptime: int, hw: int, boards: tuple[float, ...], rpm: int = 5800, temp: float = 70.0) -> Snapshot:
    return Snapshot(
        hashrate_ths=sum(boards),
        power_w=3250.0,
        is_mining=True,
        mode=Mode.NORMAL,
        hashboards=tuple(Hashboard(i, hashrate_ths=r, chip_temp_c=temp) for i, r in enumerate(boards)),
        fans=(Fan(0, rpm), Fan(1, rpm + 100), Fan(2, 0)),
        uptime_s=uptime,
        env_temp_c=25.0,
        hw_errors=hw,
    )


def test_sampler_sums_become_hourly_points() -> None:
    s = HealthSampler()
    rows = []
    for i, (up, hw) in enumerate([(1000, 10), (1060, 20), (1120, 30), (30, 2), (90, 12)]):
        s.sample("m", _snap(up, hw, (36.0, 36.0, 27.0)), T0 + i * 60)
        if i == 2:  # a flush in the middle of the hour: its rows are summed with the later ones
            rows += [r.to_row() for r in s.drain()]
    s.sample("m", _snap(150, 22, (36.0, 36.0, 36.0), rpm=6000, temp=80.0), T0 + H)  # next hour
    rows += [r.to_row() for r in s.drain()]
    assert s.drain() == [] and len(rows) == 3
    (first, second) = points(reversed(rows))["m"]
    assert first.t == T0 and second.t == T0 + H
    assert first.restarts == 1 and second.restarts == 0
    # 10 + 10 + 2 (counter reset to 2) + 10 errors over 240 s
    assert first.hw_errors_per_h == pytest.approx(32 * 15.0)
    assert first.board_ratio == pytest.approx(0.75) and first.board_worst == 2
    assert first.fan_rpm == pytest.approx(5850.0)  # the stopped fan is not part of the mean
    assert first.efficiency_j_per_th == pytest.approx(3250.0 / 99.0)
    assert first.chip_temp_c == 70.0 and first.env_temp_c == 25.0
    assert second.chip_temp_c == 80.0 and second.board_ratio == pytest.approx(1.0)
    assert board_ratio(Snapshot(hashboards=(Hashboard(0, hashrate_ths=1.0),))) is None


def test_sleeping_miner_adds_no_readings() -> None:
    s = HealthSampler()
    s.sample("m", replace(_snap(10, 1, (1.0, 1.0)), is_mining=False, mode=Mode.SLEEP), T0)
    (p,) = points(r.to_row() for r in s.drain())["m"]
    assert p.chip_temp_c is None and p.fan_rpm is None and p.board_ratio is None
