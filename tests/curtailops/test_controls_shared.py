"""ControlsStore in the database (SQLite and PostgreSQL): shared by two instances, kept through an outage."""

from __future__ import annotations

import json
import time
from pathlib import Path

import pytest
from sqlalchemy import text

from fleetd.daemon.curtail_controls import ControlsStore
from fleetd.daemon.events import Event, EventKind
from fleetd.storage import schema
from fleetd.storage.store import Storage
from tests.storage.conftest import db_url  # noqa: F401  # the SQLite / PostgreSQL fixture

DOWN_URL = "postgresql://postgres@127.0.0.1:1/test?connect_timeout=2"  # nothing listens on port 1


def _storage(url: str) -> Storage:
    st = Storage(url)
    st.open()
    return st


def _down() -> Storage:
    """A storage whose database refuses connections (as a stopped server does)."""
    st = Storage(DOWN_URL)
    st.engine = schema.connect(st.url, echo=False, busy_timeout_s=1.0)
    return st


def test_two_instances_share_pins_events_and_the_switch(db_url: str, tmp_path: Path) -> None:  # noqa: F811
    st = _storage(db_url)
    try:
        a = ControlsStore(tmp_path / "a.json")
        a.attach(st)
        pin = a.pin("sleep", miners=["10.0.0.1"], note="fan swap")
        ev = a.start_event(250, time.time() + 3600, sites=["north"])
        a.set_enforce(True)
        b = ControlsStore(tmp_path / "b.json")  # the other instance, taking over: a file of its own
        assert b.pins() == () and b.enforce_override is None
        b.attach(st)
        assert b.pins() == (pin,) and b.scheduled_events() == (ev,) and b.enforce_override is True
        assert a.unsynced == 0 and b.unsynced == 0
        b.unpin(pin.id)
        b.set_enforce(None)
        c = ControlsStore(tmp_path / "a.json")  # the first one again, its file still showing the pin
        assert c.pins() == (pin,)
        c.attach(st)  # the database is the truth: the pin removed by the other instance stays removed
        assert c.pins() == () and c.scheduled_events() == (ev,) and c.enforce_override is None
        kinds = sorted(k for (k,) in _query(st, "SELECT kind FROM curtail_controls"))
        assert kinds == ["dr"]
    finally:
        st.close()


def test_changes_while_the_database_is_down_are_kept_and_written_when_it_returns(
    db_url: str,  # noqa: F811
    tmp_path: Path,
) -> None:
    events: list[Event] = []
    down = _down()
    a = ControlsStore(tmp_path / "a.json", on_event=events.append)
    try:
        a.attach(down)
        raise AssertionError("attach to a database that is down must raise")
    except Exception as exc:
        assert "OperationalError" in type(exc).__name__ or "refused" in str(exc).lower(), exc
    pin = a.pin("run", miners=["10.0.0.9"])  # the operator is told it is set: it is, in the file
    ev = a.start_event(100, time.time() + 600)
    assert a.unsynced == 2 and a.needs_sync
    assert not a.sync()
    data = json.loads((tmp_path / "a.json").read_text())
    assert sorted(data["unsynced"]) == sorted([pin.id, ev.id])
    # a crash now: the restarted daemon has the controls from the file, and writes them once storage opens
    again = ControlsStore(tmp_path / "a.json")
    assert again.pins() == (pin,) and again.unsynced == 2
    st = _storage(db_url)
    try:
        again.attach(st)
        assert again.unsynced == 0 and json.loads((tmp_path / "a.json").read_text())["unsynced"] == []
        b = ControlsStore(tmp_path / "b.json")
        b.attach(st)
        assert b.pins() == (pin,) and b.scheduled_events() == (ev,)
    finally:
        st.close()
    assert EventKind.CURTAIL_CONTROLS_REJECTED not in [e.kind for e in events]


def test_a_file_from_before_the_database_is_imported(db_url: str, tmp_path: Path) -> None:  # noqa: F811
    end = time.time() + 3600
    (tmp_path / "c.json").write_text(
        json.dumps(
            {
                "version": 1,
                "enforce": False,
                "pins": [{"action": "exclude", "miners": ["m1"], "id": "p-0001"}],
                "events": [{"target_kw": 50.0, "start": end - 7200, "end": end, "id": "e-0001"}],
            }
        )
    )
    st = _storage(db_url)
    try:
        ControlsStore(tmp_path / "c.json").attach(st)
        b = ControlsStore(tmp_path / "other.json")
        b.attach(st)
        assert [p.id for p in b.pins()] == ["p-0001"] and [e.id for e in b.scheduled_events()] == ["e-0001"]
        assert b.enforce_override is False
    finally:
        st.close()


def test_a_bad_row_is_reported_and_the_rest_used(db_url: str, tmp_path: Path) -> None:  # noqa: F811
    st = _storage(db_url)
    events: list[Event] = []
    try:
        a = ControlsStore(tmp_path / "a.json")
        a.attach(st)
        pin = a.pin("sleep", sites=["south"])
        bad = {"id": "p-bad", "kind": "pin", "body": '{"action": "nap", "id": "p-bad"}'}
        st.write_curtail_controls([bad])
        b = ControlsStore(tmp_path / "b.json", on_event=events.append)
        b.attach(st)
        assert b.pins() == (pin,)
        assert [e.kind for e in events] == [EventKind.CURTAIL_CONTROLS_REJECTED]
        assert "p-bad" in events[0].message
    finally:
        st.close()


def _query(st: Storage, sql: str) -> list[tuple[object, ...]]:
    assert st.engine is not None
    with st.engine.connect() as conn:
        return [tuple(r) for r in conn.execute(text(sql))]


def test_catch_up_loads_what_attach_could_not_read(db_url: str, tmp_path: Path) -> None:  # noqa: F811
    st = _storage(db_url)
    try:
        a = ControlsStore(tmp_path / "a.json")
        a.attach(st)
        pin = a.pin("exclude", miners=["m9"])
        down = _down()
        b = ControlsStore(tmp_path / "b.json")
        with pytest.raises(Exception, match=r"(?i)refused|connect"):
            b.attach(down)  # a failed read raises
        assert b.needs_sync and not b.catch_up() and b.pins() == ()
        down.engine = st.engine  # the database answers again
        assert b.catch_up() and not b.needs_sync and b.pins() == (pin,)
    finally:
        st.close()


def test_without_storage_nothing_waits_for_a_database(tmp_path: Path) -> None:
    s = ControlsStore(tmp_path / "c.json", shared=False)
    pin = s.pin("sleep", miners=["m1"])
    s.unpin(pin.id)
    s.set_enforce(True)
    assert s.unsynced == 0 and json.loads((tmp_path / "c.json").read_text())["unsynced"] == []
