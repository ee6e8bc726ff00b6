"""Schedules: daily/weekly windows in local wall-clock time (IANA zone, DST-correct) and one-off events.

A window belongs to the day it starts on: "fri 22:00-06:00" runs from Friday 22:00 to Saturday 06:00;
`start == end` is a whole day. Times are compared on the local wall clock, so across a DST change a window
keeps its local hours (it is an hour shorter or longer that night, and a wall time that does not exist that
night simply does not occur).
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime, timedelta
from zoneinfo import ZoneInfo

from fleetd.curtail.config import OneOff, Window

_DAYS = {"mon": 0, "tue": 1, "wed": 2, "thu": 3, "fri": 4, "sat": 5, "sun": 6}


def hhmm(text: str) -> int:
    """Minutes after midnight of "HH:MM" (00:00-24:00); raises ValueError."""
    hours, sep, minutes = text.partition(":")
    if not sep or len(minutes) != 2 or not hours.isdigit() or not minutes.isdigit():
        raise ValueError(f"{text!r} is not HH:MM")
    value = int(hours) * 60 + int(minutes)
    if int(minutes) > 59 or value > 24 * 60:
        raise ValueError(f"{text!r} is not a time of day (00:00 to 24:00)")
    return value


def instant(text: str, tz: ZoneInfo) -> float:
    """Unix time of an ISO 8601 time; one without an offset is read in `tz`. Raises ValueError."""
    dt = datetime.fromisoformat(text)
    if dt.tzinfo is None:
        dt = dt.replace(tzinfo=tz)
    return dt.timestamp()


@dataclass(frozen=True, slots=True)
class CompiledWindow:
    days: frozenset[int]
    months: frozenset[int]  # empty: all
    start: int  # minutes after local midnight
    end: int

    @classmethod
    def of(cls, w: Window) -> CompiledWindow:
        return cls(frozenset(_DAYS[d] for d in w.days), frozenset(w.months), hhmm(w.start), hhmm(w.end))

    def _day_ok(self, day: datetime) -> bool:
        return day.weekday() in self.days and (not self.months or day.month in self.months)

    def contains(self, local: datetime) -> bool:
        t = local.hour * 60 + local.minute
        if self.start < self.end:
            return self.start <= t < self.end and self._day_ok(local)
        if self.start == self.end:  # a whole day from `start`
            return self._day_ok(local) if t >= self.start else self._day_ok(local - timedelta(days=1))
        if t >= self.start:
            return self._day_ok(local)
        return t < self.end and self._day_ok(local - timedelta(days=1))


@dataclass(frozen=True, slots=True)
class Calendar:
    """Windows and one-off events of one rule, in one time zone."""

    tz: ZoneInfo
    windows: tuple[CompiledWindow, ...]
    events: tuple[tuple[float, float, str], ...]  # (start, end, note), unix time

    @classmethod
    def of(cls, timezone: str, windows: list[Window], events: list[OneOff] | None = None) -> Calendar:
        tz = ZoneInfo(timezone)
        evs = tuple((instant(e.start, tz), instant(e.end, tz), e.note) for e in events or ())
        return cls(tz, tuple(CompiledWindow.of(w) for w in windows), evs)

    def active(self, now: float) -> str | None:
        """What makes the calendar active at `now` ("event ...", "window ..."), or None."""
        for start, end, note in self.events:
            if start <= now < end:
                return f"event {note}".rstrip() if note else "one-off event"
        if self.windows:
            local = datetime.fromtimestamp(now, self.tz)
            for w in self.windows:
                if w.contains(local):
                    return f"window {w.start // 60:02d}:{w.start % 60:02d}-{w.end // 60:02d}:{w.end % 60:02d}"
        return None
