"""Daemon part: miner health after each poll cycle, findings that start or clear recorded as events."""

from __future__ import annotations

from collections.abc import Callable
from typing import TYPE_CHECKING

from fleetd.daemon.events import Event, EventKind
from fleetd.daemon.state import FleetState, Health
from fleetd.health.findings import Severity
from fleetd.health.monitor import HealthMonitor
from fleetd.health.tracker import Change, Transition

if TYPE_CHECKING:
    from fleetd.daemon.poller import Poller
    from fleetd.economics.catalog import Catalog

_LEVEL = {Severity.INFO: "info", Severity.WARNING: "warning", Severity.CRITICAL: "error"}


class HealthHooks:
    state: FleetState
    poller: Poller
    catalog: Catalog | None
    health: HealthMonitor | None
    emit: Callable[[Event], None]  # Recording

    def _health_cycle(self, now: float) -> None:
        """Diagnose the miners that answered this cycle; drop the ones that left the fleet."""
        mon = self.health
        if mon is None or mon.catalog is not self.catalog:
            mon = self.health = HealthMonitor(self.catalog)
        miners = self.state.miners
        changes: list[Change] = []
        for mid in self.poller.polled_ids:
            rec = miners.get(mid)
            if rec is None or rec.health is not Health.UP or rec.snapshot is None:
                continue
            ident = rec.identity
            model = ident.model if ident and ident.model else rec.model
            changes += mon.observe(mid, rec.snapshot, now, vendor=ident.vendor if ident else "", model=model)
        for mid in mon.tracked_ids() - miners.keys():
            changes += mon.forget(mid, now)
        for c in changes:
            self.emit(_event(c))


def _event(c: Change) -> Event:
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
