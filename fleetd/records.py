"""Record types shared by the daemon and storage (below both, so storage never imports the daemon)."""

from __future__ import annotations

from dataclasses import dataclass
from enum import StrEnum
from typing import Protocol

MIXED = "mixed"  # an hour whose energy came from more than one kind of power figure


class Health(StrEnum):
    UNKNOWN = "unknown"  # configured or discovered, not yet polled
    UP = "up"
    DOWN = "down"  # stopped answering; polled less often (backoff)


@dataclass(frozen=True, slots=True)
class RollupRow:
    """Additive totals of one miner over part of one hour (rows for the same key are summed)."""

    miner_id: str
    hour_start: float  # unix time of the hour's start (UTC)
    energy_kwh: float
    hashes_th: float  # terahashes done
    uptime_s: float  # seconds spent mining
    samples: int
    revenue: float | None = None  # filled when economics prices are known
    cost: float | None = None
    currency: str = ""
    power_source: str = ""  # measured | catalog | catalog-sleep | configured | asleep | unknown | mixed


class EventRecord(Protocol):
    """What storage reads of an event (fleetd.daemon.events.Event is one)."""

    @property
    def kind(self) -> str: ...
    @property
    def message(self) -> str: ...
    @property
    def miner_id(self) -> str | None: ...
    @property
    def level(self) -> str: ...
    @property
    def at(self) -> float: ...
