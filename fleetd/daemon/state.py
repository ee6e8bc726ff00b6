"""The in-memory picture of the fleet that exporters, the API, economics and curtailment read.

The poller is the only writer; readers take references to frozen objects and never mutate them.
"""

from __future__ import annotations

import time
from dataclasses import dataclass, field
from typing import TYPE_CHECKING

from fleetd.model import Identity, Snapshot
from fleetd.records import Health

if TYPE_CHECKING:
    from fleetd.economics.unit import Economics, FleetEconomics


@dataclass(frozen=True, slots=True)
class Labels:
    site: str = ""
    rack: str = ""
    position: str = ""


@dataclass(slots=True)
class MinerRecord:
    """Everything the daemon knows of one miner. `id` is stable: the configured or discovered host."""

    id: str
    host: str
    labels: Labels = field(default_factory=Labels)
    driver: str = ""  # driver name once detected (or as configured)
    nominal_power_w: float | None = None
    model: str = ""  # configured model (catalog lookups before the first poll or when firmware's is unknown)
    identity: Identity | None = None
    snapshot: Snapshot | None = None
    health: Health = Health.UNKNOWN
    last_ok_at: float | None = None
    last_error: str = ""
    failures: int = 0  # consecutive failed polls
    next_poll_at: float = 0.0
    economics: Economics | None = None  # after each cycle while up, when economics is configured


@dataclass(frozen=True, slots=True)
class CycleStats:
    started_at: float
    ended_at: float
    polled: int
    ok: int
    failed: int
    overran: bool  # the cycle took longer than the poll interval
    skipped: int = 0  # due miners not polled because the interval ran out (they go first next cycle)


@dataclass(slots=True)
class FleetState:
    miners: dict[str, MinerRecord] = field(default_factory=dict)
    last_cycle: CycleStats | None = None
    economics: FleetEconomics | None = None  # fleet totals of the last cycle's per-miner economics
    started_at: float = field(default_factory=time.time)

    def up(self) -> int:
        return sum(1 for m in self.miners.values() if m.health is Health.UP)

    def down(self) -> int:
        return sum(1 for m in self.miners.values() if m.health is Health.DOWN)
