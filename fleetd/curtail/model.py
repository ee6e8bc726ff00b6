"""The values curtailment decides over: what the policy reads, what it remembers, what it decides."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from enum import StrEnum
from types import MappingProxyType
from typing import Any


class Action(StrEnum):
    """What a miner should be doing."""

    RUN = "run"
    SLEEP = "sleep"
    LIMIT = "limit"  # hashing under a power limit (Target.power_limit_w)


class Actual(StrEnum):
    """What the executor last verified a miner to be doing."""

    RUNNING = "running"
    SLEEPING = "sleeping"
    LIMITED = "limited"
    UNKNOWN = "unknown"  # never verified (new miner, or fleetd has not commanded it yet)
    UNRESPONSIVE = "unresponsive"  # commands kept failing verification; retried later with backoff


class RuleKind(StrEnum):
    ECONOMIC = "economic"
    PRICE_STRIKE = "price_strike"
    POWER_CAP = "power_cap"
    SCHEDULE = "schedule"
    OVERRIDE = "override"  # a pin (config, API) or maintenance
    FAILSAFE = "failsafe"  # stale prices or lost control path
    DEFAULT = "default"  # no rule applies: run


class PinAction(StrEnum):
    RUN = "run"  # always run, whatever the rules say
    SLEEP = "sleep"  # always sleep
    EXCLUDE = "exclude"  # rules ignore the miner; fleetd sends it nothing
    MAINTENANCE = "maintenance"  # as exclude, and shown as in maintenance


@dataclass(frozen=True, slots=True)
class Target:
    """A desired state; `power_limit_w` only with Action.LIMIT."""

    action: Action
    power_limit_w: int | None = None

    def __str__(self) -> str:
        return f"limit {self.power_limit_w} W" if self.action is Action.LIMIT else self.action.value


RUN = Target(Action.RUN)
SLEEP = Target(Action.SLEEP)

_NO_VALUES: Mapping[str, Any] = MappingProxyType({})


@dataclass(frozen=True, slots=True)
class Reason:
    """Why a miner has its target: the rule, its inputs and thresholds, and one plain sentence."""

    kind: RuleKind
    rule: str  # the rule's configured name, "pin", "failsafe" or "default"
    text: str  # e.g. "profit -$0.42/day below threshold $0.00/day for 3 checks"
    values: Mapping[str, float | str | None] = field(default_factory=lambda: _NO_VALUES)

    def to_dict(self) -> dict[str, Any]:
        return {"kind": self.kind.value, "rule": self.rule, "text": self.text, "values": dict(self.values)}


@dataclass(frozen=True, slots=True)
class MinerView:
    """One miner as the policy sees it. Filled by the daemon from its state; no vendor data.

    Running figures (`hashrate_ths`, `power_w`, `profit_per_day`, `efficiency_j_per_th`) are what the miner
    does *when running* at normal mode: measured while it runs, else the last measured or catalog values, so
    that a sleeping miner can be judged for resuming. None where unknown.
    """

    id: str
    site: str = ""
    model: str = ""
    rack: str = ""
    up: bool = True  # answering polls (control path alive)
    hashrate_ths: float | None = None
    power_w: float | None = None  # running power
    sleep_power_w: float = 0.0  # what it draws asleep (catalog), for the kW a sleep sheds
    profit_per_day: float | None = None  # running profit at current prices
    efficiency_j_per_th: float | None = None
    can_sleep: bool = False  # driver has Capability.SLEEP
    can_limit: bool = False  # driver has Capability.POWER_LIMIT
    min_power_limit_w: int | None = None  # lowest limit the firmware accepts, when known
    max_power_limit_w: int | None = None
    stale_economics: bool = False  # profit computed from stale prices

    @property
    def controllable(self) -> bool:
        return self.can_sleep or self.can_limit


@dataclass(frozen=True, slots=True)
class PricePoint:
    start: float  # unix time the interval starts
    usd_per_mwh: float


@dataclass(frozen=True, slots=True)
class PriceView:
    """Electricity (all-in, adders included) now and over a recent window, oldest first."""

    now_usd_per_mwh: float | None
    at: float  # when the current value was published (interval start)
    stale: bool
    interval_s: float = 900.0  # the market's settlement interval
    history: tuple[PricePoint, ...] = ()  # recent intervals, oldest first, the current one last
    hashprice_usd_per_ph_day: float | None = None
    age_s: float | None = None  # how old the source's value is (None: now - at), for the stale-price limit


@dataclass(frozen=True, slots=True)
class Pin:
    """An operator override for one miner or a scope, optionally until a time."""

    action: PinAction
    miners: tuple[str, ...] = ()  # miner ids; empty with no sites/models: every miner
    sites: tuple[str, ...] = ()
    models: tuple[str, ...] = ()  # fnmatch patterns on the model
    until: float | None = None
    note: str = ""
    source: str = "config"  # "config", "api", "cli"
    id: str = ""  # stable id so the API can unpin


@dataclass(frozen=True, slots=True)
class DemandEvent:
    """A demand-response request: keep the scope's load at or below `target_kw` until `end`."""

    target_kw: float
    start: float
    end: float
    source: str = "api"  # "api", "mqtt", "config", "schedule"
    sites: tuple[str, ...] = ()  # empty: the whole fleet
    id: str = ""


@dataclass(frozen=True, slots=True)
class Controls:
    """Runtime inputs besides config: pins and demand-response events set through the API/MQTT/CLI."""

    pins: tuple[Pin, ...] = ()
    events: tuple[DemandEvent, ...] = ()


@dataclass(frozen=True, slots=True)
class MinerMemory:
    """What the policy carries from one decision to the next for one miner (persisted across restarts)."""

    target: Target = RUN
    since: float = 0.0  # when this target was first decided
    reason: Reason | None = None
    streaks: Mapping[str, int] = field(default_factory=lambda: MappingProxyType({}))  # per rule name


@dataclass(frozen=True, slots=True)
class Decision:
    miner_id: str
    target: Target
    reason: Reason
    changed: bool  # differs from the remembered target
    controllable: bool = True  # False: the driver cannot act on it; reported, never silently skipped


@dataclass(frozen=True, slots=True)
class FleetMemory:
    """Fleet-level policy memory: per rule name, whether it is active and since when."""

    active: Mapping[str, float] = field(default_factory=lambda: MappingProxyType({}))


@dataclass(frozen=True, slots=True)
class Plan:
    """One decision pass: a decision per miner, the memory to carry forward, the rules in force."""

    decisions: tuple[Decision, ...]
    memory: Mapping[str, MinerMemory]
    fleet: FleetMemory
    active_rules: tuple[str, ...] = ()
    failsafe: str = ""  # why a fail-safe applies this pass, "" when none
    load_kw: float | None = None  # estimated load if every target is met
    target_kw: float | None = None  # the power-cap target in force, if any
