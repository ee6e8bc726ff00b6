"""Values with provenance: hashprice values, interval prices, last-good tracking and price history."""

from __future__ import annotations

import bisect
from dataclasses import dataclass, field
from typing import Generic, Protocol, TypeVar

from fleetd.economics.units import per_mwh_to_per_kwh


@dataclass(frozen=True, slots=True)
class HashpriceValue:
    """Gross hashprice (before pool/dev fees) in `currency` per PH/s per day, as one source reported it."""

    per_ph_day: float
    currency: str
    timestamp: float  # unix time the value refers to (its publication or the newest input it used)
    source: str
    interval_s: float = 0.0  # window the value averages over (e.g. 144 blocks of fees), 0 for a spot value
    details: tuple[tuple[str, float], ...] = ()  # inputs used (difficulty, fees, ...) for display

    @property
    def unit(self) -> str:
        return f"{self.currency}/PH/day"

    @property
    def as_of(self) -> float:
        return self.timestamp


@dataclass(frozen=True, slots=True)
class PricePoint:
    """An electricity price over [start, end) in `currency` per MWh."""

    start: float  # unix time
    end: float
    per_mwh: float
    currency: str
    source: str
    location: str = ""

    @property
    def unit(self) -> str:
        return f"{self.currency}/MWh"

    @property
    def per_kwh(self) -> float:
        return per_mwh_to_per_kwh(self.per_mwh)

    @property
    def as_of(self) -> float:
        return self.end

    def covers(self, t: float) -> bool:
        return self.start <= t < self.end


class _Dated(Protocol):
    @property
    def as_of(self) -> float: ...


T = TypeVar("T", bound=_Dated)


@dataclass(frozen=True, slots=True)
class Reading(Generic[T]):
    """The value to use now: the last good value (or None), its age, and whether it is too old to trust."""

    value: T | None
    age_s: float | None
    stale: bool
    error: str = ""  # the latest failure, kept even while an older good value is served

    @property
    def missing(self) -> bool:
        return self.value is None

    @property
    def usable(self) -> bool:
        return self.value is not None and not self.stale


@dataclass(slots=True)
class LastGood(Generic[T]):
    """Keeps a source's last good value and its latest error; ages are measured from the value's as_of."""

    max_age_s: float
    value: T | None = None
    fetched_at: float | None = None
    error: str = ""
    failures: int = 0  # consecutive

    def ok(self, value: T, now: float) -> None:
        self.value = value
        self.fetched_at = now
        self.error = ""
        self.failures = 0

    def fail(self, error: str) -> None:
        self.error = error
        self.failures += 1

    def reading(self, now: float) -> Reading[T]:
        if self.value is None:
            return Reading(None, None, True, self.error or "no value yet")
        age = max(0.0, now - self.value.as_of)
        return Reading(self.value, age, age > self.max_age_s, self.error)


@dataclass(slots=True)
class PriceHistory:
    """Interval prices ordered by start, newest kept; `at(t)` replays the price that applied at t."""

    max_points: int = 20_000
    _starts: list[float] = field(default_factory=list)
    _points: list[PricePoint] = field(default_factory=list)

    def add(self, points: list[PricePoint] | tuple[PricePoint, ...]) -> int:
        """Insert or replace points by start time; returns how many were new."""
        new = 0
        for p in points:
            i = bisect.bisect_left(self._starts, p.start)
            if i < len(self._starts) and self._starts[i] == p.start:
                self._points[i] = p
                continue
            self._starts.insert(i, p.start)
            self._points.insert(i, p)
            new += 1
        overflow = len(self._points) - self.max_points
        if overflow > 0:
            del self._starts[:overflow]
            del self._points[:overflow]
        return new

    def at(self, t: float) -> PricePoint | None:
        i = bisect.bisect_right(self._starts, t) - 1
        if i >= 0 and self._points[i].covers(t):
            return self._points[i]
        return None

    def latest(self) -> PricePoint | None:
        return self._points[-1] if self._points else None

    def between(self, start: float, end: float) -> list[PricePoint]:
        lo = bisect.bisect_left(self._starts, start)
        hi = bisect.bisect_left(self._starts, end)
        return list(self._points[lo:hi])

    def __len__(self) -> int:
        return len(self._points)
