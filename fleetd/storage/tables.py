"""The database tables. Times are timezone-aware UTC; power in W, energy in kWh, hashes in TH."""

from __future__ import annotations

from datetime import datetime

from sqlalchemy import Column, DateTime, UniqueConstraint
from sqlmodel import Field, SQLModel


def _ts(**kw: object) -> Column:  # type: ignore[type-arg]
    return Column(DateTime(timezone=True), **kw)  # type: ignore[arg-type]


class Miner(SQLModel, table=True):
    """Inventory: every miner ever configured or discovered, with its labels and current identity."""

    __tablename__ = "miners"

    id: str = Field(primary_key=True)
    host: str
    api_port: int = 4028
    site: str = Field(default="", index=True)
    rack: str = ""
    position: str = ""
    source: str = Field(default="config")  # config / discovery
    nominal_power_w: float | None = None
    driver: str = ""
    vendor: str = ""
    model: str = Field(default="", index=True)
    firmware: str = ""
    serial: str = ""
    mac: str = ""
    hostname: str = ""
    first_seen: datetime = Field(sa_column=_ts(nullable=False))
    updated_at: datetime = Field(sa_column=_ts(nullable=False))


class IdentityRecord(SQLModel, table=True):
    """Identity history: a row each time a miner is first identified or its identity changes."""

    __tablename__ = "identity_history"

    id: int | None = Field(default=None, primary_key=True)
    miner_id: str = Field(index=True)
    seen_at: datetime = Field(sa_column=_ts(nullable=False))
    driver: str = ""
    vendor: str = ""
    model: str = ""
    firmware: str = ""
    api_version: str = ""
    serial: str = ""
    mac: str = ""
    hostname: str = ""


class LatestState(SQLModel, table=True):
    """The last poll outcome of each miner (a summary; the full snapshot lives in memory)."""

    __tablename__ = "latest_state"

    miner_id: str = Field(primary_key=True)
    health: str
    polled_at: datetime | None = Field(default=None, sa_column=_ts(nullable=True))
    last_ok_at: datetime | None = Field(default=None, sa_column=_ts(nullable=True))
    failures: int = 0
    last_error: str = ""
    is_mining: bool | None = None
    mode: str = ""
    hashrate_ths: float | None = None
    hashrate_avg_ths: float | None = None
    expected_hashrate_ths: float | None = None
    power_w: float | None = None
    power_limit_w: float | None = None
    temp_c: float | None = None
    env_temp_c: float | None = None
    fans_min_rpm: int | None = None
    faults: int = 0
    uptime_s: int | None = None
    pool_url: str = ""


class HourlyRollup(SQLModel, table=True):
    """Per-miner totals of one UTC hour; revenue and cost stay empty until economics fills them."""

    __tablename__ = "hourly_rollups"

    miner_id: str = Field(primary_key=True)
    hour_start: datetime = Field(sa_column=_ts(primary_key=True))
    energy_kwh: float = 0.0
    hashes_th: float = 0.0
    uptime_s: float = 0.0
    samples: int = 0
    revenue: float | None = None  # in `currency`, at the prices of the time
    cost: float | None = None  # energy cost in `currency`
    currency: str = ""
    power_source: str = ""  # where the energy figure came from: measured, catalog, configured, ..., or mixed


class PriceRecord(SQLModel, table=True):
    """Every price point fleetd used, with its interval, so a price history can be replayed."""

    __tablename__ = "prices"
    __table_args__ = (UniqueConstraint("kind", "source", "location", "start", name="uq_prices_point"),)

    id: int | None = Field(default=None, primary_key=True)
    kind: str = Field(index=True)  # hashprice / electricity
    source: str
    location: str = ""  # settlement point or tariff location, "" when not applicable
    start: datetime = Field(sa_column=_ts(nullable=False, index=True))  # hashprice: the value's timestamp
    end: datetime | None = Field(default=None, sa_column=_ts(nullable=True))  # None: a spot value
    value: float  # hashprice per PH/s per day (gross) or energy price per MWh (adders not included)
    unit: str  # e.g. USD/PH/day, USD/MWh
    currency: str
    fetched_at: datetime = Field(sa_column=_ts(nullable=False))  # when fleetd first had it


class EventRecord(SQLModel, table=True):
    """Things that happened: miners down/up, identity changes, overruns, reloads, ..."""

    __tablename__ = "events"

    id: int | None = Field(default=None, primary_key=True)
    at: datetime = Field(sa_column=_ts(nullable=False, index=True))
    kind: str = Field(index=True)
    level: str = Field(default="info")
    miner_id: str | None = Field(default=None, index=True)
    message: str = ""


class CurtailState(SQLModel, table=True):
    """Curtailment per miner: the desired target and why, and the executor's last verified state."""

    __tablename__ = "curtail_state"

    miner_id: str = Field(primary_key=True)
    target: str  # run / sleep / limit
    power_limit_w: int | None = None  # with target "limit"
    since: datetime | None = Field(default=None, sa_column=_ts(nullable=True))  # when the target was decided
    reason: str = "{}"  # JSON: kind, rule, text, values
    streaks: str = "{}"  # JSON: confirmations per rule name
    actual: str = "unknown"
    commanded: str = ""  # last target commanded or verified in place ("", run, sleep, limit)
    commanded_limit_w: int | None = None
    verified_at: datetime | None = Field(default=None, sa_column=_ts(nullable=True))
    changed_at: datetime | None = Field(default=None, sa_column=_ts(nullable=True))  # for dwell
    failures: int = 0
    next_attempt_at: datetime | None = Field(default=None, sa_column=_ts(nullable=True))
    last_error: str = ""
    updated_at: datetime = Field(sa_column=_ts(nullable=False))


class CurtailLogRecord(SQLModel, table=True):
    """The curtailment event log: every decision that changed a target and every command and its outcome."""

    __tablename__ = "curtail_log"

    id: int | None = Field(default=None, primary_key=True)
    at: datetime = Field(sa_column=_ts(nullable=False, index=True))
    miner_id: str = Field(index=True)
    kind: str = Field(index=True)  # decision / command / verified / failed / unresponsive / dry_run
    target: str = ""
    rule: str = ""
    attempt: int = 0
    message: str = ""


class CurtailControl(SQLModel, table=True):
    """An operator control of curtailment (a pin, a DR event, the enforce switch), shared by an HA pair."""

    __tablename__ = "curtail_controls"

    id: str = Field(primary_key=True)  # the pin's or event's id; "enforce" for the switch
    kind: str  # pin / dr / enforce
    body: str = "{}"  # JSON of the control (fleetd.daemon.curtail_controls)
    updated_at: datetime = Field(sa_column=_ts(nullable=False))


class CurtailFleet(SQLModel, table=True):
    """Fleet-level curtailment memory: each rule in force (e.g. a price strike) and since when."""

    __tablename__ = "curtail_fleet"

    rule: str = Field(primary_key=True)
    since: datetime = Field(sa_column=_ts(nullable=False))


class HealthHourly(SQLModel, table=True):
    """Per-miner health sums of one UTC hour (fleetd.health.history SUMS): the trend detector's input."""

    __tablename__ = "health_hourly"

    miner_id: str = Field(primary_key=True)
    hour_start: datetime = Field(sa_column=_ts(primary_key=True))
    samples: int = 0
    chip_temp_sum_c: float = 0.0  # sum over samples of the hottest chip; / chip_temp_n is the mean
    chip_temp_n: int = 0
    env_temp_sum_c: float = 0.0
    env_temp_n: int = 0
    fan_rpm_sum: float = 0.0  # sum of each sample's mean running-fan rpm
    fan_n: int = 0
    hw_errors: float = 0.0  # hardware errors counted over hw_s seconds
    hw_s: float = 0.0
    power_w_sum: float = 0.0  # measured power and hashrate summed over eff_n samples (J/TH = ratio)
    eff_hashrate_ths_sum: float = 0.0
    eff_n: int = 0
    board_ratio_sum: float = 0.0  # slowest board / median board, summed over board_n samples
    board_n: int = 0
    board_worst: int | None = None  # index of the slowest board (newest sample)
    restarts: int = 0  # self-restarts seen (uptime going backwards)
