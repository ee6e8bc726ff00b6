"""ControlsStore: pins, DR events and the enforce switch; expiry, persistence across restarts, events."""

from __future__ import annotations

import json
import os
from pathlib import Path

import pytest

from fleetd.curtail.model import PinAction
from fleetd.daemon.curtail_controls import ControlsError, ControlsStore
from fleetd.daemon.events import Event, EventKind


class Clock:
    def __init__(self, t: float = 1_800_000_000.0) -> None:
        self.t = t

    def __call__(self) -> float:
        return self.t


def _store(tmp_path: Path, clock: Clock, events: list[Event] | None = None) -> ControlsStore:
    sink = events if events is not None else []
    return ControlsStore(tmp_path / "c.json", on_event=sink.append, clock=clock)


def test_pin_unpin_and_expiry_with_events(tmp_path: Path) -> None:
    clock, events = Clock(), []
    s = _store(tmp_path, clock, events)
    a = s.pin("sleep", miners=["10.0.0.1"], until=clock.t + 60, note="fan swap")
    b = s.pin(PinAction.MAINTENANCE, sites=["north"], models=["Antminer S19*"])
    assert {p.id for p in s.controls().pins} == {a.id, b.id}
    assert a.source == "api" and a.id.startswith("p-")
    clock.t += 61
    assert [p.id for p in s.controls().pins] == [b.id]
    assert s.unpin(b.id) == b and s.unpin(b.id) is None
    assert s.controls().pins == ()
    kinds = [e.kind for e in events]
    assert kinds == [
        EventKind.CURTAIL_PIN_SET,
        EventKind.CURTAIL_PIN_SET,
        EventKind.CURTAIL_PIN_REMOVED,
        EventKind.CURTAIL_PIN_REMOVED,
    ]
    assert "expired" in events[2].message and "fan swap" not in events[2].message
    assert "sites north; models Antminer S19*" in events[1].message


def test_dr_events_start_later_end_and_replace(tmp_path: Path) -> None:
    clock, events = Clock(), []
    s = _store(tmp_path, clock, events)
    later = s.start_event(500, clock.t + 7200, start=clock.t + 3600)
    now = s.start_event(250.5, clock.t + 600, sites=["north"])
    assert [e.id for e in s.controls().events] == [now.id]  # the later one is scheduled, not in force
    assert {e.id for e in s.scheduled_events()} == {later.id, now.id}
    m1 = s.start_event(100, clock.t + 60, source="mqtt", event_id="mqtt")
    m2 = s.start_event(80, clock.t + 120, source="mqtt", event_id="mqtt")
    assert [e.target_kw for e in s.controls().events if e.id == "mqtt"] == [80.0] and m1.id == m2.id
    clock.t += 3700
    assert [e.id for e in s.controls().events] == [later.id]
    assert s.stop_event(later.id) is not None and s.controls().events == ()
    assert sum(e.kind is EventKind.CURTAIL_DR_STOPPED for e in events) == 3


@pytest.mark.parametrize(
    ("kwargs", "message"),
    [
        ({"target_kw": float("nan"), "end": 2e9}, "target_kw must be a number"),
        ({"target_kw": -1, "end": 2e9}, "out of range"),
        ({"target_kw": 1e300, "end": 2e9}, "out of range"),
        ({"target_kw": "500", "end": 2e9}, "must be a number"),
        ({"target_kw": True, "end": 2e9}, "must be a number"),
        ({"target_kw": 5, "end": 1_700_000_000}, "in the past"),
        ({"target_kw": 5, "end": float("inf")}, "unix time"),
        ({"target_kw": 5, "end": 1_800_000_100, "start": 1_800_000_200}, "after start"),
    ],
)
def test_bad_dr_values_are_refused_and_change_nothing(tmp_path: Path, kwargs: dict, message: str) -> None:
    s = _store(tmp_path, Clock())
    with pytest.raises(ControlsError, match=message):
        s.start_event(**kwargs)
    assert s.scheduled_events() == () and not (tmp_path / "c.json").exists()


def test_bad_pins_are_refused(tmp_path: Path) -> None:
    s = _store(tmp_path, Clock())
    with pytest.raises(ControlsError, match="action must be one of run, sleep, exclude, maintenance"):
        s.pin("nap", miners=["a"])
    with pytest.raises(ControlsError, match="in the past"):
        s.pin("run", miners=["a"], until=1.0)
    with pytest.raises(ControlsError, match="non-empty strings"):
        s.pin("run", miners=[""])
    assert s.pins() == ()


def test_enforce_switch_overrides_config(tmp_path: Path) -> None:
    clock, events = Clock(), []
    s = _store(tmp_path, clock, events)
    assert s.enforce(False) is False and s.enforce(True) is True
    s.set_enforce(True)
    assert s.enforce(False) is True and s.enforce_override is True
    s.set_enforce(True)  # no change, no event
    s.set_enforce(None)
    assert s.enforce(False) is False
    assert [e.message for e in events] == [
        "curtailment set to enforce (commands are sent) (api)",
        "curtailment set to as configured (api)",
    ]
    with pytest.raises(ControlsError):
        s.set_enforce("yes")  # type: ignore[arg-type]


def test_restart_keeps_controls_and_the_file_is_written_atomically(tmp_path: Path) -> None:
    clock = Clock()
    s = _store(tmp_path, clock)
    pin = s.pin("run", miners=["10.0.0.9"], note="customer rig")
    ev = s.start_event(400, clock.t + 900, sites=["south"])
    s.set_enforce(False)
    data = json.loads((tmp_path / "c.json").read_text())
    assert data["version"] == 2 and data["enforce"] is False
    assert [f for f in os.listdir(tmp_path) if f != "c.json"] == []  # no temp files left behind
    again = _store(tmp_path, clock)
    assert again.pins() == (pin,)
    assert again.scheduled_events() == (ev,)
    assert again.enforce_override is False


def test_a_corrupt_file_is_set_aside_and_reported(tmp_path: Path) -> None:
    (tmp_path / "c.json").write_text('{"version": 1, "pins": [{"action": "nap"}]}')
    events: list[Event] = []
    s = _store(tmp_path, Clock(), events)
    assert s.pins() == ()
    assert [e.kind for e in events] == [EventKind.CURTAIL_CONTROLS_REJECTED]
    assert events[0].level == "error" and "kept as c.json.bad-" in events[0].message
    assert not (tmp_path / "c.json").exists() and list(tmp_path.glob("c.json.bad-*"))
    s.pin("sleep", miners=["x"])  # and the store works on
    assert len(_store(tmp_path, Clock()).pins()) == 1
