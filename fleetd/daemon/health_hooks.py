"""Daemon part: miner health after each poll cycle, findings that start or clear recorded as events,
and the hourly trend job (predictive-maintenance warnings from the stored health history)."""

from __future__ import annotations

import asyncio
import logging
import time
from collections import deque
from collections.abc import Callable, Iterable, Mapping
from typing import TYPE_CHECKING, Any

from fleetd.daemon.events import Event, EventKind
from fleetd.daemon.state import FleetState, Health
from fleetd.health.findings import Severity
from fleetd.health.history import HealthHour, HealthSampler, points
from fleetd.health.limits import Limits
from fleetd.health.monitor import HealthMonitor
from fleetd.health.tracker import Change, Transition
from fleetd.health.trends import TrendRules, TrendWarning, detect
from fleetd.view_errors import VIEW_ERRORS

if TYPE_CHECKING:
    from fleetd.config import Config
    from fleetd.daemon.poller import Poller
    from fleetd.economics.catalog import Catalog
    from fleetd.storage.store import Storage

log = logging.getLogger("fleetd.daemon")

_LEVEL = {Severity.INFO: "info", Severity.WARNING: "warning", Severity.CRITICAL: "error"}
TREND_INTERVAL_S = 3600.0  # the trend job runs hourly (the history is hourly)
TREND_FIRST_S = 120.0  # first run after start


class HealthHooks:
    config: Config
    state: FleetState
    poller: Poller
    catalog: Catalog | None
    health: HealthMonitor | None
    storage: Storage | None
    _use_storage: bool
    emit: Callable[[Event], None]  # Recording

    def _health_sampler(self) -> HealthSampler:
        sampler = getattr(self, "health_sampler", None)
        if sampler is None:
            sampler = self.health_sampler = HealthSampler()
        return sampler

    def _health_cycle(self, now: float) -> None:
        """Diagnose the miners that answered this cycle; drop the ones that left the fleet."""
        mon = self.health
        if mon is None or mon.catalog is not self.catalog:
            old, mon = mon, HealthMonitor(self.catalog)
            if old is not None:
                mon.adopt_warnings(old)
            self.health = mon
        self._configure_health(mon)
        sampler = self._health_sampler()
        miners = self.state.miners
        changes: list[Change[Any]] = []
        for mid in self.poller.polled_ids:
            rec = miners.get(mid)
            if rec is None or rec.health is not Health.UP or rec.snapshot is None:
                continue
            ident = rec.identity
            model = ident.model if ident and ident.model else rec.model
            try:
                changes += mon.observe(
                    mid, rec.snapshot, now, vendor=ident.vendor if ident else "", model=model
                )
                sampler.sample(mid, rec.snapshot, now)
            except Exception as exc:  # one miner's unreadable snapshot must not cost the others diagnosis
                VIEW_ERRORS.record("health", mid, exc)
        for mid in mon.tracked_ids() - miners.keys():
            changes += mon.forget(mid, now)
            sampler.forget(mid)
        for c in changes:
            self.emit(_event(c))

    def _configure_health(self, mon: HealthMonitor) -> None:
        """Apply [health] (cheap: the config may have been reloaded since the last cycle)."""
        h = self.config.health
        mon.tracker.min_duration_s = h.findings.min_duration_s
        mon.tracker.clear_after_s = h.findings.clear_after_s
        mon.restarts.window_s = h.findings.restart_window_s
        mon.trend_tracker.min_duration_s = h.trends.start_after_s
        mon.trend_tracker.clear_after_s = h.trends.clear_after_s

    def _trend_rules(self) -> TrendRules:
        rules: TrendRules = self.config.health.trends.rules()
        return rules

    def _write_health_hours(self) -> None:
        """Hand the health sums gathered so far to storage (kept in memory without it)."""
        if self._use_storage and self.storage is None:  # storage down: keep accumulating
            return
        rows = self._health_sampler().drain()
        if not rows:
            return
        if self.storage is not None:
            self.storage.add_health_hours(rows)
            return
        memory = self._health_memory()
        memory.extend(rows)
        horizon = time.time() - (self._trend_rules().window_h + 2) * 3600.0
        while memory and memory[0].hour_start < horizon:
            memory.popleft()

    def _health_memory(self) -> deque[HealthHour]:
        memory = getattr(self, "health_memory", None)
        if memory is None:
            memory = self.health_memory = deque()
        return memory

    async def _trend_job(self) -> None:
        try:
            await self.run_trends()
        except asyncio.CancelledError:
            log.debug("trend job interrupted by shutdown")
        except Exception:
            log.exception("health trend job failed")

    async def run_trends(
        self, now: float | None = None, rows: Iterable[Mapping[str, Any]] | None = None
    ) -> dict[str, list[TrendWarning]]:
        """Fit the last day of health history (stored, or `rows`) and publish the warnings."""
        now = time.time() if now is None else now
        rules = self._trend_rules()
        since = now - (rules.window_h + 1) * 3600.0
        if rows is None:
            self._write_health_hours()
            storage = self.storage
            if storage is not None:
                await asyncio.to_thread(storage.flush, 30.0)
                rows = await asyncio.to_thread(storage.health_hours, since=since)
            else:
                rows = [h.to_row() for h in self._health_memory() if h.hour_start >= since]
        mon = self.health
        if mon is None:
            mon = self.health = HealthMonitor(self.catalog)
        self._configure_health(mon)
        models: dict[str, str] = {}
        vendors: dict[str, str] = {}
        for mid, rec in self.state.miners.items():
            ident = rec.identity
            models[mid] = ident.model if ident and ident.model else rec.model
            if ident is not None:
                vendors[models[mid]] = ident.vendor
        lookup = mon.limits

        def limits(model: str) -> Limits:
            return lookup(model, vendors.get(model, ""))

        t0 = time.perf_counter()
        found = await asyncio.to_thread(_trends, list(rows), models, limits, now, rules)
        mon = self.health or mon  # a monitor made while the job ran (new catalog) adopted the old's trends
        for c in mon.set_warnings(found, now, time.perf_counter() - t0):
            self.emit(_event(c))
        n = sum(len(w) for w in found.values())
        log.info("health trends: %d warnings on %d miners", n, len(found))
        return found


def _trends(
    rows: list[Mapping[str, Any]],
    models: dict[str, str],
    limits: Callable[[str], Limits],
    now: float,
    rules: TrendRules,
) -> dict[str, list[TrendWarning]]:
    series = {mid: pts for mid, pts in points(rows).items() if mid in models}
    return detect(series, models, limits, now, rules)


def _num(v: float | None, fmt: str, unit: str = "") -> str:
    return "n/a" if v is None else f"{v:{fmt}}{unit}"


def _trend_event(c: Change[TrendWarning]) -> Event:
    w = c.finding
    what = w.code + (f" ({w.subject})" if w.subject else "")
    if c.transition is Transition.CLEARED:
        return Event(EventKind.TREND_CLEARED, f"trend {what} cleared", c.miner_id, at=c.at)
    ttl = "" if w.time_to_limit_h is None else f"; limit {w.limit:g} in ~{w.time_to_limit_h:.0f} h"
    msg = (
        f"{w.severity} trend {what}: {w.metric} {w.slope_per_day:+.3g}/day over {w.window_h:.0f} h,"
        f" now {_num(w.value, '.4g')}, {_num(w.vs_median, '+.3g')} vs the same-model median{ttl}."
        f" {w.cause}. {w.action}"
    )
    return Event(EventKind.TREND_STARTED, msg, c.miner_id, level=_LEVEL[w.severity], at=c.at)


def _event(c: Change[Any]) -> Event:
    if isinstance(c.finding, TrendWarning):
        return _trend_event(c)
    f = c.finding
    if c.transition is Transition.STARTED:
        what = f"{f.severity} {f.code}" + (f" ({f.subject})" if f.subject else "")
        return Event(
            EventKind.FINDING_STARTED,
            f"{what}: {f.cause}. {f.action}",
            c.miner_id,
            level=_LEVEL[f.severity],
            at=c.at,
        )
    what = f.code + (f" ({f.subject})" if f.subject else "")
    return Event(EventKind.FINDING_CLEARED, f"{what} cleared", c.miner_id, at=c.at)
