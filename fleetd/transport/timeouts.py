"""How long the transport waits: connect, read, and how long a power command may take to show."""

from __future__ import annotations

from dataclasses import dataclass


@dataclass(frozen=True, slots=True)
class Timeouts:
    connect_s: float = 3.0
    read_s: float = 10.0
    # How long a power command may take to show in telemetry before it counts as not complied.
    verify_s: float = 60.0
    verify_interval_s: float = 2.0
