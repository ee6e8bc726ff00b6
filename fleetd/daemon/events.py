"""Things worth recording that happen to the fleet or the daemon (stored in the events table)."""

from __future__ import annotations

import time
from dataclasses import dataclass, field
from enum import StrEnum


class EventKind(StrEnum):
    STARTED = "started"
    STOPPED = "stopped"
    MINER_ADDED = "miner_added"  # configured or discovered for the first time
    MINER_REMOVED = "miner_removed"  # left the configuration
    MINER_DOWN = "miner_down"
    MINER_UP = "miner_up"
    IDENTITY_CHANGED = "identity_changed"  # firmware upgraded or another machine behind the address
    DRIVER_DETECTED = "driver_detected"
    CYCLE_OVERRAN = "cycle_overran"
    CONFIG_RELOADED = "config_reloaded"
    CONFIG_REJECTED = "config_rejected"
    STORAGE_ERROR = "storage_error"
    FINDING_STARTED = "finding_started"  # a health finding held long enough (fleetd.health.tracker)
    FINDING_CLEARED = "finding_cleared"
    TREND_STARTED = "trend_started"  # a predictive-maintenance trend warning held over two trend-job runs
    TREND_CLEARED = "trend_cleared"
    # operator controls of curtailment (fleetd.daemon.curtail_controls)
    CURTAIL_PIN_SET = "curtail_pin_set"
    CURTAIL_PIN_REMOVED = "curtail_pin_removed"  # unpinned, or its expiry passed
    CURTAIL_DR_STARTED = "curtail_dr_started"
    CURTAIL_DR_STOPPED = "curtail_dr_stopped"  # stopped, or its end passed
    CURTAIL_DR_IGNORED = "curtail_dr_ignored"  # an inbound DR message that was stale, expired or malformed
    CURTAIL_ENFORCE_CHANGED = "curtail_enforce_changed"
    CURTAIL_CONTROLS_REJECTED = "curtail_controls_rejected"  # the saved controls file could not be read
    # the curtailment loop (fleetd.daemon.curtailment)
    CURTAIL_DECISION = "curtail_decision"  # a miner's target changed, with the reason
    CURTAIL_COMMAND = "curtail_command"  # a command sent (or, in dry run, that would have been sent)
    CURTAIL_VERIFIED = "curtail_verified"  # a command's effect verified by re-reading the miner
    CURTAIL_FAILED = "curtail_failed"  # a command not verified; retried with backoff
    CURTAIL_UNRESPONSIVE = "curtail_unresponsive"  # retries exhausted: flagged, retried less often
    CURTAIL_FAILSAFE = "curtail_failsafe"  # the fail-safe started or ended (stale prices, lost control)
    CURTAIL_NOT_CONTROLLABLE = "curtail_not_controllable"  # a decision the miner's driver cannot carry out
    # high availability (fleetd.daemon.ha)
    HA_ACTIVE = "ha_active"  # this instance took the lock and polls
    HA_STANDBY = "ha_standby"  # this instance lost the lock and stopped polling and commanding


@dataclass(frozen=True, slots=True)
class Event:
    kind: EventKind
    message: str
    miner_id: str | None = None
    level: str = "info"  # info / warning / error
    at: float = field(default_factory=time.time)
