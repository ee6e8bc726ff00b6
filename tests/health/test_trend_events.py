"""Trend warnings become trend_started/trend_cleared events with a minimum duration and clear hysteresis:
a trend flickering across its threshold between hourly runs of the trend job is one warning."""

from __future__ import annotations

from fleetd.daemon.events import EventKind
from fleetd.daemon.health_hooks import _event
from fleetd.health.findings import Severity
from fleetd.health.monitor import HealthMonitor
from fleetd.health.tracker import Tracker, Transition
from fleetd.health.trends import TrendWarning
from fleetd.model import Component

H = 3600.0


def _warning(miner: str = "m1", severity: Severity = Severity.WARNING) -> TrendWarning:
    return TrendWarning(
        miner,
        "fan_rpm_rising",
        severity,
        Component.FAN,
        "fan_rpm",
        120.0,
        0.0,
        23 * H,
        6100.0,
        5800.0,
        2.0,
        limit=6600.0,
        time_to_limit_h=100.0,
        cause="Fan speed creeping up",
        action="Clean the fans",
    )


def _runs(mon: HealthMonitor, seen: list[bool]) -> list[tuple[float, str, Transition]]:
    out = []
    for i, on in enumerate(seen):
        found = {"m1": [_warning()]} if on else {}
        out += [(c.at, c.miner_id, c.transition) for c in mon.set_warnings(found, i * H)]
    return out


def test_warning_starts_on_its_second_run_and_clears_after_three_runs_without_it() -> None:
    mon = HealthMonitor(None)
    changes = _runs(mon, [True, True, True, False, False, False, False])
    assert changes == [(1 * H, "m1", Transition.STARTED), (5 * H, "m1", Transition.CLEARED)]


def test_a_single_run_never_starts() -> None:
    mon = HealthMonitor(None)
    assert _runs(mon, [True, False, False, False, False]) == []
    assert mon.trend_tracker.miners() == set()  # nothing kept once it expired


def test_a_trend_flickering_across_its_threshold_is_one_warning() -> None:
    mon = HealthMonitor(None)
    changes = _runs(mon, [True, False] * 24 + [False] * 4)  # seen every other hourly run for two days
    assert [c[2] for c in changes] == [Transition.STARTED, Transition.CLEARED]
    assert changes[0][0] == 2 * H  # the second sighting, an hour's gap tolerated


def test_thresholds_come_from_the_tracker() -> None:
    mon = HealthMonitor(None, trend_tracker=Tracker(0.0, 1.0))
    assert [c[2] for c in _runs(mon, [True, False])] == [Transition.STARTED, Transition.CLEARED]


def test_active_warning_shows_in_the_miner_health_with_since() -> None:
    mon = HealthMonitor(None)
    _runs(mon, [True, True])
    body = mon.miner("m1").to_dict()
    assert [w["code"] for w in body["warnings"]] == ["fan_rpm_rising"]
    assert [(w["code"], w["since"]) for w in body["active_warnings"]] == [("fan_rpm_rising", H)]


def test_a_miner_leaving_the_fleet_clears_its_warnings() -> None:
    mon = HealthMonitor(None)
    _runs(mon, [True, True])
    assert "m1" in mon.tracked_ids()
    assert [c.transition for c in mon.forget("m1", 2 * H)] == [Transition.CLEARED]
    assert mon.miner("m1").warnings == () and "m1" not in mon.tracked_ids()


def test_events_say_what_trend_which_window_how_far_from_the_median_and_time_to_limit() -> None:
    mon = HealthMonitor(None)
    mon.set_warnings({"m1": [_warning(severity=Severity.CRITICAL)]}, 0.0)
    (started,) = mon.set_warnings({"m1": [_warning(severity=Severity.CRITICAL)]}, H)
    ev = _event(started)
    assert ev.kind is EventKind.TREND_STARTED and ev.miner_id == "m1" and ev.level == "error"
    assert ev.message.startswith("critical trend fan_rpm_rising: fan_rpm +120/day over 23 h")
    assert "+300 vs the same-model median" in ev.message
    assert "limit 6600 in ~100 h" in ev.message
    assert mon.set_warnings({}, 2 * H) == [] and mon.set_warnings({}, 3 * H) == []
    (c,) = mon.set_warnings({}, 4 * H)  # three runs without it
    ev = _event(c)
    assert ev.kind is EventKind.TREND_CLEARED and ev.message == "trend fan_rpm_rising cleared"


def test_prometheus_keeps_a_started_warning_through_a_missed_run_until_it_clears() -> None:
    mon = HealthMonitor(None)
    mon.set_warnings({"m1": [_warning()], "m2": [_warning("m2")]}, 0.0)
    kinds, rows, _, _ = mon.export_warnings()
    assert sorted(m for m, _ in rows) == ["m1", "m2"]  # a fresh warning shows at once
    mon.set_warnings({"m1": [_warning()]}, H)  # m1 started; m2 seen once only
    mon.set_warnings({}, 2 * H)  # a run that misses m1
    kinds, rows, _, _ = mon.export_warnings()
    assert [(m, w.code) for m, w in rows] == [("m1", "fan_rpm_rising")]
    assert kinds == {("fan_rpm_rising", "fan", "warning"): 1}
    mon.set_warnings({}, 3 * H)
    mon.set_warnings({}, 4 * H)  # cleared
    assert mon.export_warnings()[1] == []
