"""The `[economics]` configuration: tariff or market price, adders, currency, hashprice chain, fees."""

from __future__ import annotations

import os
from datetime import date
from pathlib import Path
from typing import Annotated, Literal
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

from pydantic import AfterValidator, BaseModel, ConfigDict, Field, field_validator, model_validator

from fleetd.economics.units import MAX_ABS_PER_MWH, MAX_HASHPRICE_PER_PH_DAY, PRICE_UNITS


class _Strict(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)


def _check_timezone(name: str) -> str:
    try:
        ZoneInfo(name)
    except (ZoneInfoNotFoundError, ValueError):
        raise ValueError(f"unknown time zone {name!r} (use an IANA name such as America/Chicago)") from None
    return name


TimeZoneName = Annotated[str, AfterValidator(_check_timezone)]
# Energy prices may be negative (paid to consume) but never absurd: +-100 per kWh is +-100,000 per MWh.
PerKwh = Annotated[float, Field(ge=-MAX_ABS_PER_MWH / 1000, le=MAX_ABS_PER_MWH / 1000, allow_inf_nan=False)]
PerMwh = Annotated[float, Field(ge=-MAX_ABS_PER_MWH, le=MAX_ABS_PER_MWH, allow_inf_nan=False)]


# --- electricity -------------------------------------------------------------------------------------


class FlatTariffConfig(_Strict):
    kind: Literal["flat"] = "flat"
    price_per_kwh: PerKwh


class TouRuleConfig(_Strict):
    period: str
    months: list[Annotated[int, Field(ge=1, le=12)]] = list(range(1, 13))
    days: Literal["all", "weekday", "weekend"] = "all"
    hours: list[Annotated[int, Field(ge=0, le=23)]] = list(range(24))


class TouTariffConfig(_Strict):
    kind: Literal["tou"] = "tou"
    timezone: TimeZoneName = "UTC"
    periods: dict[str, PerKwh]  # name -> price per kWh
    default: str
    rules: list[TouRuleConfig] = []
    holidays: list[date] = []  # priced with the weekend schedule

    @model_validator(mode="after")
    def _periods_known(self) -> TouTariffConfig:
        names = set(self.periods)
        unknown = {self.default, *(r.period for r in self.rules)} - names
        if unknown:
            raise ValueError(f"unknown TOU periods {sorted(unknown)}; defined: {sorted(names)}")
        return self


class UrdbTariffConfig(_Strict):
    """A URDB rate: a saved record or API response (`file`), or fetched from OpenEI by its `label`."""

    kind: Literal["urdb"] = "urdb"
    file: Path | None = None
    label: str = ""  # the rate's URDB label, e.g. "5f1a2b3c4d5e6f7a8b9c0d1e"
    base_url: str = "https://api.openei.org"
    api_key: str = ""
    api_key_env: str = "OPENEI_API_KEY"  # read when api_key is empty, so the key stays out of the file
    refresh_s: float = Field(86400.0, gt=0)  # rates change a few times a year
    timeout_s: float = Field(20.0, gt=0)
    timezone: TimeZoneName
    holidays: list[date] = []

    @model_validator(mode="after")
    def _one_origin(self) -> UrdbTariffConfig:
        if (self.file is None) == (not self.label):
            raise ValueError("give exactly one of file (a saved record) or label (fetched from OpenEI)")
        return self

    def key(self) -> str:
        return self.api_key or os.environ.get(self.api_key_env, "")


class ErcotConfig(_Strict):
    kind: Literal["ercot"] = "ercot"
    settlement_point: str = "HB_HOUSTON"
    base_url: str = "https://www.ercot.com"
    refresh_s: float = Field(300.0, gt=0)
    timeout_s: float = Field(20.0, gt=0)
    max_age_s: float = Field(1800.0, gt=0)  # prices are published a few minutes after each interval


class _FeedFields(_Strict):
    value_path: str = "price"
    time_path: str = ""
    end_path: str = ""
    items_path: str = ""
    unit: str = "per_mwh"
    interval_s: float = Field(300.0, gt=0)
    max_age_s: float = Field(1800.0, gt=0)

    @field_validator("unit")
    @classmethod
    def _unit(cls, v: str) -> str:
        if v not in PRICE_UNITS:
            raise ValueError(f"unit must be one of {sorted(PRICE_UNITS)}")
        return v


class HttpFeedConfig(_FeedFields):
    kind: Literal["http"] = "http"
    url: str
    format: Literal["json", "csv"] = "json"
    headers: dict[str, str] = {}
    refresh_s: float = Field(300.0, gt=0)
    timeout_s: float = Field(10.0, gt=0)


class MqttFeedConfig(_FeedFields):
    kind: Literal["mqtt"] = "mqtt"
    host: str = "127.0.0.1"
    port: int = 1883
    topic: str
    format: Literal["json", "number"] = "json"
    username: str = ""
    password: str = ""


TariffConfig = Annotated[
    FlatTariffConfig | TouTariffConfig | UrdbTariffConfig | ErcotConfig | HttpFeedConfig | MqttFeedConfig,
    Field(discriminator="kind"),
]


# --- hashprice ---------------------------------------------------------------------------------------


class StaticHashpriceConfig(_Strict):
    kind: Literal["static"] = "static"
    per_ph_day: float = Field(gt=0, le=MAX_HASHPRICE_PER_PH_DAY)


class MempoolConfig(_Strict):
    kind: Literal["mempool"] = "mempool"
    base_url: str = "https://mempool.space"
    fee_blocks: int = Field(144, ge=1, le=10_000)
    refresh_s: float = Field(600.0, gt=0)
    timeout_s: float = Field(10.0, gt=0)


class LuxorConfig(_Strict):
    kind: Literal["luxor"] = "luxor"
    base_url: str = "https://api.hashrateindex.com"
    api_key: str = ""
    api_key_env: str = "LUXOR_API_KEY"  # read when api_key is empty, so the key stays out of the file
    min_interval_s: float = Field(300.0, ge=0)
    refresh_s: float = Field(600.0, gt=0)
    timeout_s: float = Field(10.0, gt=0)

    def key(self) -> str:
        return self.api_key or os.environ.get(self.api_key_env, "")


HashpriceSourceConfig = Annotated[
    StaticHashpriceConfig | MempoolConfig | LuxorConfig, Field(discriminator="kind")
]


class EconomicsConfig(_Strict):
    """Everything the economics engine needs from the configuration file's [economics] table."""

    currency: str = "USD"
    pool_fee: float = Field(0.0, ge=0, lt=1)  # fraction of revenue
    dev_fee: float = Field(0.0, ge=0, lt=1)  # firmware developer fee, fraction of hashrate/revenue
    adders_per_mwh: dict[str, PerMwh] = {}  # transmission, retail, demand-charge equivalent, ...
    tariff: TariffConfig | None = None
    hashprice: list[HashpriceSourceConfig] = []  # fallback chain, first preferred
    hashprice_max_age_s: float = Field(3 * 3600.0, gt=0)
    default_power_w: float | None = Field(None, gt=0)  # for units neither measured nor in the catalog
    catalog: Path | None = None  # default: config/models.toml

    @field_validator("currency")
    @classmethod
    def _currency(cls, v: str) -> str:
        if len(v) != 3 or not v.isalpha():
            raise ValueError("currency must be a 3-letter ISO 4217 code such as USD")
        return v.upper()

    @property
    def adders_total_per_mwh(self) -> float:
        return sum(self.adders_per_mwh.values())
