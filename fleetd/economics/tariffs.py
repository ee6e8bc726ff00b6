"""Electricity tariffs as pure functions of time: flat, and time-of-use by month x hour with holidays."""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from datetime import date, datetime
from zoneinfo import ZoneInfo

from fleetd.economics.values import PricePoint

Schedule = tuple[tuple[int, ...], ...]  # 12 months x 24 hours of period indexes


def _hour_bounds(t: float, tz: ZoneInfo) -> tuple[datetime, float, float]:
    local = datetime.fromtimestamp(t, tz)
    start = local.replace(minute=0, second=0, microsecond=0).timestamp()
    return local, start, start + 3600.0


@dataclass(frozen=True, slots=True)
class FlatTariff:
    per_mwh: float
    currency: str = "USD"
    source: str = "flat"
    fixed_per_day: float = 0.0

    def price_at(self, t: float) -> PricePoint:
        start = t - t % 3600.0
        return PricePoint(start, start + 3600.0, self.per_mwh, self.currency, self.source)


@dataclass(frozen=True, slots=True)
class TouTariff:
    """Energy price by period; the period comes from local month and hour, weekend schedule on holidays."""

    rates_per_mwh: tuple[float, ...]
    weekday: Schedule
    weekend: Schedule
    timezone: str = "UTC"
    holidays: frozenset[date] = frozenset()
    period_names: tuple[str, ...] = ()
    currency: str = "USD"
    source: str = "tou"
    fixed_per_day: float = 0.0
    _tz: ZoneInfo = field(init=False, repr=False, compare=False)

    def __post_init__(self) -> None:
        for name, sched in (("weekday", self.weekday), ("weekend", self.weekend)):
            if len(sched) != 12 or any(len(row) != 24 for row in sched):
                raise ValueError(f"{name} schedule must be 12 months x 24 hours")
            bad = {p for row in sched for p in row if not 0 <= p < len(self.rates_per_mwh)}
            if bad:
                raise ValueError(f"{name} schedule refers to undefined periods {sorted(bad)}")
        object.__setattr__(self, "_tz", ZoneInfo(self.timezone))

    def is_weekend_day(self, day: date) -> bool:
        return day.weekday() >= 5 or day in self.holidays

    def price_at(self, t: float) -> PricePoint:
        local, start, end = _hour_bounds(t, self._tz)
        sched = self.weekend if self.is_weekend_day(local.date()) else self.weekday
        period = sched[local.month - 1][local.hour]
        name = self.period_names[period] if period < len(self.period_names) else str(period)
        return PricePoint(start, end, self.rates_per_mwh[period], self.currency, f"{self.source}:{name}")


@dataclass(frozen=True, slots=True)
class TouRule:
    """Assigns `period` to the listed months (1-12), day kind and starting hours (0-23); later rules win."""

    period: str
    months: tuple[int, ...] = tuple(range(1, 13))
    days: str = "all"  # all | weekday | weekend
    hours: tuple[int, ...] = tuple(range(24))


def tou_from_rules(
    periods_per_mwh: dict[str, float],
    rules: Sequence[TouRule],
    default: str,
    *,
    timezone: str = "UTC",
    holidays: Iterable[date] = (),
    currency: str = "USD",
    source: str = "tou",
) -> TouTariff:
    names = tuple(periods_per_mwh)
    if default not in periods_per_mwh:
        raise ValueError(f"default period {default!r} is not among the periods {list(names)}")
    index = {n: i for i, n in enumerate(names)}
    grids = {kind: [[index[default]] * 24 for _ in range(12)] for kind in ("weekday", "weekend")}
    for rule in rules:
        if rule.period not in index:
            raise ValueError(f"rule names unknown period {rule.period!r}")
        if rule.days not in ("all", "weekday", "weekend"):
            raise ValueError(f"rule days must be all, weekday or weekend, got {rule.days!r}")
        kinds = ("weekday", "weekend") if rule.days == "all" else (rule.days,)
        for m in rule.months:
            if not 1 <= m <= 12:
                raise ValueError(f"month {m} out of range 1-12")
            for h in rule.hours:
                if not 0 <= h <= 23:
                    raise ValueError(f"hour {h} out of range 0-23")
                for kind in kinds:
                    grids[kind][m - 1][h] = index[rule.period]
    return TouTariff(
        rates_per_mwh=tuple(periods_per_mwh.values()),
        weekday=tuple(tuple(r) for r in grids["weekday"]),
        weekend=tuple(tuple(r) for r in grids["weekend"]),
        timezone=timezone,
        holidays=frozenset(holidays),
        period_names=names,
        currency=currency,
        source=source,
    )
