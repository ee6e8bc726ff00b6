"""Minimum duration, hysteresis and flapping: one finding, not an event per poll."""

from __future__ import annotations

from fleetd.health.findings import Finding, Severity
from fleetd.health.tracker import RestartCounter, Tracker, Transition
from fleetd.model import Component

WARN = Finding("fan_at_limit", Severity.WARNING, Component.FAN, "cause", "action", "fan 0")
CRIT = Finding("board_dead", Severity.CRITICAL, Component.BOARD, "cause", "action", "board 1")


def run(tracker: Tracker, polls: list[tuple[float, tuple[Finding, ...]]]) -> list[tuple[float, str, str]]:
    out = []
    for now, found in polls:
        out += [(c.at, c.finding.key, str(c.transition)) for c in tracker.update("m1", found, now)]
    return out


def test_warning_starts_after_min_duration_and_clears_after_hysteresis() -> None:
    t = Tracker(min_duration_s=120, clear_after_s=600)
    polls = [(float(s), (WARN,)) for s in range(0, 300, 30)] + [(float(s), ()) for s in range(300, 1000, 30)]
    assert run(t, polls) == [
        (120.0, "fan_at_limit:fan 0", "started"),
        (870.0, "fan_at_limit:fan 0", "cleared"),
    ]


def test_short_blip_never_starts() -> None:
    t = Tracker(min_duration_s=120, clear_after_s=600)
    polls = [(0.0, (WARN,)), (30.0, (WARN,))] + [(float(s), ()) for s in range(60, 2000, 30)]
    assert run(t, polls) == []
    assert t.all_active() == {}
    assert "m1" not in t._tracks  # nothing kept for a miner with no findings


def test_flapping_miner_yields_one_start_and_one_clear() -> None:
    t = Tracker(min_duration_s=120, clear_after_s=600)
    polls = [(float(s), (WARN,) if (s // 30) % 2 else ()) for s in range(0, 6 * 3600, 30)]
    polls += [(float(s), ()) for s in range(6 * 3600, 6 * 3600 + 700, 30)]
    changes = run(t, polls)
    assert [c[2] for c in changes] == ["started", "cleared"]


def test_critical_needs_two_sightings_not_the_min_duration() -> None:
    t = Tracker(min_duration_s=120, clear_after_s=600)
    assert run(t, [(0.0, (CRIT,))]) == []
    assert run(t, [(30.0, (CRIT,))]) == [(30.0, "board_dead:board 1", "started")]
    assert [a.finding.key for a in t.active("m1")] == ["board_dead:board 1"]
    assert [c.transition for c in t.forget("m1", 40.0)] == [Transition.CLEARED]


def test_restart_counter_counts_uptime_resets_in_window() -> None:
    r = RestartCounter(window_s=3600)
    assert r.update("m", 1000, 0.0) == 0
    assert r.update("m", 10, 60.0) == 1
    assert r.update("m", 5, 120.0, commanded=True) == 1  # a reboot fleetd ordered is not a fault
    assert r.update("m", None, 180.0) == 1  # missing uptime changes nothing
    assert r.update("m", 2, 240.0) == 2  # 5 -> 2 went backwards again
    assert r.update("m", 300, 540.0) == 2
    assert r.update("m", 4000, 4000.0) == 0  # both resets older than the window
