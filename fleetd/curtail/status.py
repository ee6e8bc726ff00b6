"""The curtailment picture views read (API, CLI, MQTT, Prometheus): published by the daemon after each pass.

The daemon's curtailment loop (fleetd/daemon/curtailment.py) builds a new CurtailStatus after every decision
pass and executor step and sets `daemon.curtail_status`; views only read it. Operator controls (pins, DR
events, the enforce switch) go the other way, through `fleetd.daemon.curtail_controls.ControlsStore`.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from types import MappingProxyType

from fleetd.curtail.model import Actual, Controls, Reason, Target


@dataclass(frozen=True, slots=True)
class MinerCurtailStatus:
    miner_id: str
    target: Target
    reason: Reason
    since: float  # when the target was decided
    actual: Actual
    verified_at: float  # 0.0: never verified
    controllable: bool  # False: the driver has no sleep/power-limit capability
    in_flight: bool = False
    failures: int = 0
    last_error: str = ""
    waiting: str = ""  # why a pending command has not gone out: "dwell", "ramp", "backoff", "dry run"


@dataclass(frozen=True, slots=True)
class CurtailStatus:
    enforce: bool  # False: dry run, nothing is sent
    decided_at: float
    miners: Mapping[str, MinerCurtailStatus]
    controls: Controls = field(default_factory=Controls)
    active_rules: tuple[str, ...] = ()
    failsafe: str = ""  # why the fail-safe applies, "" when it does not
    load_kw: float | None = None  # measured/estimated fleet load now
    target_kw: float | None = None  # power-cap / DR target in force
    shed_kw: float = 0.0  # estimated load shed by verified sleeps and limits
    # Counters since start, by command kind ("sleep", "wake", "limit"): sent, failed, retried.
    sent: Mapping[str, int] = field(default_factory=lambda: MappingProxyType({}))
    failed: Mapping[str, int] = field(default_factory=lambda: MappingProxyType({}))
    retried: Mapping[str, int] = field(default_factory=lambda: MappingProxyType({}))
