"""The normalized, vendor-neutral miner model every layer above the drivers uses.

Units are in the field names: hashrates in TH/s, power in W, temperatures in deg C, fans in RPM.
Drivers convert vendor units (GH/s, MH/s, ...) before building these objects.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass, field
from enum import StrEnum
from typing import Any


class Mode(StrEnum):
    NORMAL = "normal"
    SLEEP = "sleep"
    LOW = "low"
    HIGH = "high"
    UNKNOWN = "unknown"


class Capability(StrEnum):
    """What a driver can do beyond reading telemetry."""

    SLEEP = "sleep"  # sleep() and wake()
    POWER_LIMIT = "power_limit"
    REBOOT = "reboot"


class Component(StrEnum):
    """What part of the miner a fault concerns."""

    FAN = "fan"
    BOARD = "board"
    PSU = "psu"
    TEMPERATURE = "temperature"
    POOL = "pool"
    CONTROL_BOARD = "control_board"
    NETWORK = "network"
    OTHER = "other"


@dataclass(frozen=True, slots=True)
class Identity:
    """Who a miner is: stable facts that change only on a swap or a firmware upgrade."""

    vendor: str  # "antminer", "whatsminer", "avalon", "generic", ...
    model: str  # as the firmware reports it, e.g. "Antminer S19 Pro", "Whatsminer M50S_VH50"
    firmware: str = ""
    api_version: str = ""
    serial: str = ""
    mac: str = ""
    hostname: str = ""
    driver: str = ""  # name of the driver that speaks to it
    host: str = ""
    api: str = ""  # wire API spoken, e.g. "cgminer", "btminer-v2", "btminer-v3"

    def key(self) -> tuple[str, str, str, str]:
        """Fields whose change means a new firmware or another machine behind the address."""
        return (self.model, self.firmware, self.serial, self.mac)


@dataclass(frozen=True, slots=True)
class Hashboard:
    index: int
    hashrate_ths: float | None = None
    expected_hashrate_ths: float | None = None
    chips: int | None = None
    expected_chips: int | None = None
    chip_temp_c: float | None = None  # hottest chip reading
    board_temp_c: float | None = None  # hottest PCB reading
    inlet_temp_c: float | None = None
    outlet_temp_c: float | None = None
    serial: str = ""
    ok: bool = True
    status: str = ""


@dataclass(frozen=True, slots=True)
class Fan:
    index: int
    rpm: int | None


@dataclass(frozen=True, slots=True)
class Pool:
    index: int
    url: str
    user: str = ""
    status: str = ""  # "alive", "dead", "disabled", or the firmware's word lower-cased
    active: bool = False
    accepted: int = 0
    rejected: int = 0
    stale: int = 0


@dataclass(frozen=True, slots=True)
class Fault:
    """An error the miner reports about itself."""

    code: str
    message: str
    component: Component = Component.OTHER


@dataclass(frozen=True, slots=True)
class Snapshot:
    """What a miner is doing at one moment."""

    hashrate_ths: float | None = None  # current (5 s or similar)
    hashrate_avg_ths: float | None = None  # average since start or over the firmware's window
    expected_hashrate_ths: float | None = None
    power_w: float | None = None  # measured input power; None when the miner does not report it
    power_limit_w: float | None = None
    is_mining: bool = False
    mode: Mode = Mode.UNKNOWN
    hashboards: tuple[Hashboard, ...] = ()
    fans: tuple[Fan, ...] = ()
    pools: tuple[Pool, ...] = ()
    errors: tuple[Fault, ...] = ()
    uptime_s: int | None = None
    polled_at: float = 0.0  # unix time
    # Temperatures summarised for quick views; the per-board values stay in `hashboards`.
    temp_c: float | None = None  # hottest chip or board temperature
    env_temp_c: float | None = None  # ambient / inlet where reported
    psu: dict[str, Any] = field(default_factory=dict)  # normalized PSU facts (unit-suffixed keys)
    hw_errors: int | None = None  # the firmware's hardware-error counter since it started

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)


@dataclass(frozen=True, slots=True)
class Reading:
    """One poll's outcome: identity plus snapshot."""

    identity: Identity
    snapshot: Snapshot

    def to_dict(self) -> dict[str, Any]:
        return {"identity": asdict(self.identity), "snapshot": asdict(self.snapshot)}
