"""The [curtailment] section: rules, executor limits, fail-safe and dry-run, validated by pydantic.

fleetd.config keeps the section as a dict and validates it here, as it does [economics], so that the core
configuration does not import curtailment.
"""

from __future__ import annotations

from datetime import datetime
from typing import Annotated, Any, Literal
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

from pydantic import BaseModel, ConfigDict, Field, field_validator, model_validator

from fleetd.curtail.model import PinAction


class _Model(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)


def _check_hhmm(text: str) -> str:
    hours, sep, minutes = text.partition(":")
    ok = sep and len(minutes) == 2 and hours.isdigit() and minutes.isdigit() and 1 <= len(hours) <= 2
    if not ok or int(minutes) > 59 or int(hours) * 60 + int(minutes) > 24 * 60:
        raise ValueError(f"{text!r} is not a time of day HH:MM (00:00 to 24:00)")
    return text


def _check_timezone(name: str) -> str:
    try:
        ZoneInfo(name)
    except (ZoneInfoNotFoundError, ValueError):
        raise ValueError(f"unknown time zone {name!r} (an IANA name such as America/Chicago)") from None
    return name


def _check_iso(text: str) -> str:
    try:
        datetime.fromisoformat(text)
    except ValueError:
        raise ValueError(f"{text!r} is not an ISO 8601 time such as 2026-08-01T16:00-05:00") from None
    return text


class Scope(_Model):
    """Which miners a rule applies to; every non-empty list must match (empty: all)."""

    sites: list[str] = []
    models: list[str] = []  # fnmatch patterns, e.g. "Antminer S19*"
    racks: list[str] = []
    miners: list[str] = []  # miner ids (host, or host:port)


class EconomicRule(_Model):
    kind: Literal["economic"]
    name: str = "economic"
    scope: Scope = Scope()
    threshold_usd_per_day: float = 0.0  # sleep when running profit/day is below this
    hysteresis_usd_per_day: float = Field(0.25, ge=0)  # resume only above threshold + this
    confirm: int = Field(3, ge=1)  # consecutive checks below before sleeping
    resume_confirm: int = Field(5, ge=1)  # consecutive checks above before resuming


class PriceStrikeRule(_Model):
    kind: Literal["price_strike"]
    name: str = "price_strike"
    scope: Scope = Scope()
    strike_usd_per_mwh: float  # sleep when the all-in price is above this for `for_intervals`
    for_intervals: int = Field(1, ge=1)
    high_strike_usd_per_mwh: float | None = None  # above this: sleep at once
    resume_below_usd_per_mwh: float | None = None  # default: strike_usd_per_mwh
    resume_after_intervals: int = Field(1, ge=1)

    @model_validator(mode="after")
    def _ordered(self) -> PriceStrikeRule:
        high, resume = self.high_strike_usd_per_mwh, self.resume_below_usd_per_mwh
        if high is not None and high < self.strike_usd_per_mwh:
            raise ValueError("high_strike_usd_per_mwh must be at or above strike_usd_per_mwh")
        if resume is not None and resume > self.strike_usd_per_mwh:
            raise ValueError("resume_below_usd_per_mwh must be at or below strike_usd_per_mwh")
        return self


class Window(_Model):
    """A daily/weekly window in local time; `end` before `start` crosses midnight."""

    days: list[Literal["mon", "tue", "wed", "thu", "fri", "sat", "sun"]] = [
        "mon",
        "tue",
        "wed",
        "thu",
        "fri",
        "sat",
        "sun",
    ]
    start: str  # "HH:MM"
    end: str  # "HH:MM"
    months: list[Annotated[int, Field(ge=1, le=12)]] = []  # empty: every month

    _hhmm = field_validator("start", "end")(classmethod(lambda cls, v: _check_hhmm(v)))


class OneOff(_Model):
    """A one-off event, e.g. a 4CP peak hour: ISO 8601 times with an offset."""

    start: str
    end: str
    note: str = ""

    _iso = field_validator("start", "end")(classmethod(lambda cls, v: _check_iso(v)))


class ScheduleRule(_Model):
    kind: Literal["schedule"]
    name: str = "schedule"
    scope: Scope = Scope()
    action: Literal["sleep", "run"] = "sleep"
    timezone: str = "UTC"
    windows: list[Window] = []
    events: list[OneOff] = []

    _tz = field_validator("timezone")(classmethod(lambda cls, v: _check_timezone(v)))


class PowerCapRule(_Model):
    kind: Literal["power_cap"]
    name: str = "power_cap"
    scope: Scope = Scope()
    target_kw: float | None = Field(None, ge=0)  # None: only while a DR event (API, MQTT) sets one
    timezone: str = "UTC"
    windows: list[Window] = []  # when set, the config target applies only inside these windows
    prefer_power_limit: bool = True  # limit instead of sleep where it loses less hashrate per kW shed
    margin_kw: float = Field(0.0, ge=0)  # keep this much below the target

    _tz = field_validator("timezone")(classmethod(lambda cls, v: _check_timezone(v)))


Rule = Annotated[EconomicRule | PriceStrikeRule | ScheduleRule | PowerCapRule, Field(discriminator="kind")]


class PinConfig(_Model):
    action: PinAction
    miners: list[str] = []
    sites: list[str] = []
    models: list[str] = []
    note: str = ""


class RampConfig(_Model):
    """At most this many miners and kW switched per step, both ways (mass power-on inrush trips breakers)."""

    max_miners: int = Field(50, ge=1)
    max_kw: float | None = Field(None, gt=0)
    step_s: float = Field(30.0, ge=0)


class DwellConfig(_Model):
    min_on_s: float = Field(900.0, ge=0)  # a miner woken stays up at least this long
    min_off_s: float = Field(900.0, ge=0)  # a miner put to sleep stays asleep at least this long


class RetryConfig(_Model):
    attempts: int = Field(3, ge=1)  # failed verifications before a miner is marked unresponsive
    backoff_s: float = Field(60.0, ge=0)  # first retry delay; doubles each attempt
    max_backoff_s: float = Field(1800.0, ge=0)
    verify_timeout_s: float = Field(120.0, gt=0)


class DemandResponseMqtt(_Model):
    """An inbound MQTT topic carrying DR requests (JSON: target_kw or on/off, with an expiry)."""

    topic: str
    max_age_s: float = Field(300.0, gt=0)  # an older message is ignored


class CurtailmentConfig(_Model):
    enforce: bool = False  # False: dry run, decide and log everything, send nothing
    interval_s: float = Field(60.0, ge=1)  # how often the policy decides
    failsafe: Literal["hold", "curtail", "run"] = "hold"
    price_stale_s: float = Field(1800.0, gt=0)  # older electricity prices trigger the fail-safe
    control_lost_s: float = Field(600.0, gt=0)  # a miner silent this long: the fail-safe applies to it
    rules: list[Rule] = []
    pins: list[PinConfig] = []
    ramp: RampConfig = RampConfig()
    dwell: DwellConfig = DwellConfig()
    retry: RetryConfig = RetryConfig()
    mqtt_dr: DemandResponseMqtt | None = None

    @model_validator(mode="after")
    def _unique_rule_names(self) -> CurtailmentConfig:
        names = [r.name for r in self.rules]
        dupes = sorted({n for n in names if names.count(n) > 1})
        if dupes:
            raise ValueError(f"rule names must be unique (give each a name = ...): {', '.join(dupes)}")
        return self


def parse_curtailment(section: dict[str, Any]) -> CurtailmentConfig:
    """Validate a [curtailment] table; raises pydantic.ValidationError."""
    return CurtailmentConfig.model_validate(section)
