"""Schedules: weekly windows crossing midnight, months, DST, one-off events, run windows."""

from __future__ import annotations

from datetime import datetime
from zoneinfo import ZoneInfo

from fleetd.curtail.model import Action, RuleKind

from .helpers import Runner, config, miner, prices

CHI = ZoneInfo("America/Chicago")


def at(*args: int) -> float:
    return datetime(*args, tzinfo=CHI).timestamp()


def target(rule: dict, when: float, **kw: object) -> Action:
    r = Runner(config(rule), now=when)
    return r.step([miner("a", **kw)], prices(at=when))["a"].target.action


def sched(**kw: object) -> dict:
    return {"kind": "schedule", "timezone": "America/Chicago", **kw}


def test_window_crossing_midnight_belongs_to_its_start_day() -> None:
    rule = sched(windows=[{"days": ["fri"], "start": "22:00", "end": "06:00"}])
    # 2026-06-05 is a Friday
    assert target(rule, at(2026, 6, 5, 21, 59)) is Action.RUN
    assert target(rule, at(2026, 6, 5, 22, 0)) is Action.SLEEP
    assert target(rule, at(2026, 6, 6, 5, 59)) is Action.SLEEP  # Saturday morning, Friday's window
    assert target(rule, at(2026, 6, 6, 6, 0)) is Action.RUN
    assert target(rule, at(2026, 6, 6, 22, 30)) is Action.RUN  # Saturday night: not listed
    assert target(rule, at(2026, 6, 5, 3, 0)) is Action.RUN  # Friday early: Thursday's window


def test_days_and_months() -> None:
    rule = sched(
        windows=[
            {
                "days": ["mon", "tue", "wed", "thu", "fri"],
                "start": "15:00",
                "end": "19:00",
                "months": [6, 7, 8, 9],
            }
        ]
    )
    assert target(rule, at(2026, 6, 8, 16, 0)) is Action.SLEEP  # Monday in June
    assert target(rule, at(2026, 6, 7, 16, 0)) is Action.RUN  # Sunday
    assert target(rule, at(2026, 5, 11, 16, 0)) is Action.RUN  # May
    assert target(rule, at(2026, 6, 8, 19, 0)) is Action.RUN  # end is exclusive


def test_local_hours_hold_across_dst() -> None:
    rule = sched(windows=[{"start": "15:00", "end": "16:00"}])
    # CDT (UTC-5) in July, CST (UTC-6) in January: the same local hour, different UTC hours
    assert target(rule, datetime(2026, 7, 1, 20, 30, tzinfo=ZoneInfo("UTC")).timestamp()) is Action.SLEEP
    assert target(rule, datetime(2026, 1, 7, 21, 30, tzinfo=ZoneInfo("UTC")).timestamp()) is Action.SLEEP
    assert target(rule, datetime(2026, 1, 7, 20, 30, tzinfo=ZoneInfo("UTC")).timestamp()) is Action.RUN
    # the night clocks go back (2026-11-01): 01:00-02:00 local happens twice, both are in the window
    night = sched(windows=[{"start": "01:00", "end": "02:00"}])
    first = datetime(2026, 11, 1, 6, 30, tzinfo=ZoneInfo("UTC")).timestamp()  # 01:30 CDT
    assert target(night, first) is Action.SLEEP and target(night, first + 3600) is Action.SLEEP  # 01:30 CST
    assert target(night, first + 7200) is Action.RUN


def test_whole_day_and_24_00() -> None:
    assert (
        target(sched(windows=[{"days": ["sun"], "start": "00:00", "end": "00:00"}]), at(2026, 6, 7, 23, 59))
        is Action.SLEEP
    )
    assert target(sched(windows=[{"start": "18:00", "end": "24:00"}]), at(2026, 6, 7, 23, 59)) is Action.SLEEP


def test_one_off_events_4cp() -> None:
    rule = sched(events=[{"start": "2026-08-03T16:00-05:00", "end": "2026-08-03T17:00-05:00", "note": "4CP"}])
    assert target(rule, at(2026, 8, 3, 15, 59)) is Action.RUN
    r = Runner(config(rule), now=at(2026, 8, 3, 16, 30))
    d = r.step([miner("a")], prices(at=r.now))["a"]
    assert d.target.action is Action.SLEEP and d.reason.kind is RuleKind.SCHEDULE and "4CP" in d.reason.text
    assert target(rule, at(2026, 8, 3, 17, 0)) is Action.RUN
    naive = sched(
        events=[{"start": "2026-08-03T16:00", "end": "2026-08-03T17:00"}]
    )  # read in the rule's zone
    assert target(naive, at(2026, 8, 3, 16, 30)) is Action.SLEEP


def test_run_window_overrides_economics_but_not_stops() -> None:
    run = sched(name="must_run", action="run", windows=[{"start": "08:00", "end": "20:00"}])
    econ = {"kind": "economic", "confirm": 1}
    when = at(2026, 6, 8, 12, 0)
    assert target(run, when) is Action.RUN
    r = Runner(config(run, econ), now=when)
    d = r.step([miner("a", profit_per_day=-5.0)], prices(at=when))["a"]
    assert d.target.action is Action.RUN and d.reason.rule == "must_run"
    strike = {"kind": "price_strike", "strike_usd_per_mwh": 80.0}
    r = Runner(config(run, strike), now=when)
    assert r.step([miner("a")], prices(at=when, history=[100]))["a"].target.action is Action.SLEEP
