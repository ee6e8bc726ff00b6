"""Builds the configured sources and serves current prices and unit economics to the daemon."""

from __future__ import annotations

import dataclasses
import json
import logging
import time
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from typing import Any

import aiohttp

from fleetd.economics.catalog import Catalog
from fleetd.economics.config import (
    EconomicsConfig,
    ErcotConfig,
    FlatTariffConfig,
    HttpFeedConfig,
    LuxorConfig,
    MempoolConfig,
    MqttFeedConfig,
    StaticHashpriceConfig,
    TouTariffConfig,
    UrdbTariffConfig,
)
from fleetd.economics.sources.base import HashpriceSource, PriceSource, SourceError
from fleetd.economics.sources.ercot import ErcotRealtime
from fleetd.economics.sources.feed import FeedFormat, HttpFeed, MqttFeed
from fleetd.economics.sources.hashprice import (
    HashpriceChain,
    LuxorHashprice,
    MempoolHashprice,
    StaticHashprice,
)
from fleetd.economics.sources.urdb import UrdbRate
from fleetd.economics.tariffs import FlatTariff, TouRule, TouTariff, tou_from_rules
from fleetd.economics.unit import Economics, FleetEconomics, fleet_economics, unit_economics
from fleetd.economics.units import per_kwh_to_per_mwh
from fleetd.economics.urdb import UrdbError, tariff_from_urdb
from fleetd.economics.values import HashpriceValue, LastGood, PriceHistory, PricePoint, Reading
from fleetd.model import Identity, Snapshot
from fleetd.view_errors import VIEW_ERRORS

log = logging.getLogger(__name__)


class EconomicsConfigError(ValueError):
    """A configuration that cannot be turned into sources (unreadable URDB file, missing API key...)."""


@dataclass(frozen=True, slots=True)
class Job:
    """A refresh to schedule every `interval_s` seconds (e.g. an APScheduler interval job)."""

    name: str
    interval_s: float
    func: Callable[[], Awaitable[Any]]


class TariffPrices:
    """Prices from a tariff: computed for any time, never stale."""

    def __init__(self, tariff: FlatTariff | TouTariff) -> None:
        self.tariff = tariff

    async def refresh(self) -> None:
        return None

    def reading(self, now: float) -> Reading[PricePoint]:
        return Reading(self.tariff.price_at(now), 0.0, False)

    @property
    def fixed_per_day(self) -> float:
        return self.tariff.fixed_per_day


class MarketPrices:
    """Prices from a market or feed, kept as history; the newest point ages until a newer one arrives."""

    def __init__(self, source: PriceSource, max_age_s: float, refresh_s: float = 300.0) -> None:
        self.source = source
        self.refresh_s = refresh_s
        self.history = PriceHistory()
        self.tracker = LastGood[PricePoint](max_age_s)
        if isinstance(source, MqttFeed):
            source.on_points = self.add

    fixed_per_day = 0.0

    def add(self, points: list[PricePoint]) -> None:
        self.history.add(points)
        latest = self.history.latest()
        if latest is not None:
            self.tracker.ok(latest, time.time())

    async def refresh(self) -> None:
        try:
            self.add(await self.source.fetch())
        except SourceError as exc:
            self.tracker.fail(str(exc))
            log.warning("electricity %s", exc)

    def reading(self, now: float) -> Reading[PricePoint]:
        # MQTT parse errors happen off the refresh path, so the source keeps its own
        error = self.tracker.error or getattr(self.source, "error", "")
        exact = self.history.at(now)
        if exact is not None:
            return Reading(exact, 0.0, False, error)
        r = self.tracker.reading(now)
        return dataclasses.replace(r, error=error) if error else r


class UrdbPrices:
    """A URDB rate fetched from OpenEI, re-fetched on a schedule; a failed fetch keeps the last tariff."""

    def __init__(self, source: UrdbRate, config: UrdbTariffConfig, currency: str) -> None:
        self.source = source
        self.config = config
        self.currency = currency
        self.refresh_s = config.refresh_s
        self.tariff: TouTariff | None = None
        self.error = "URDB rate not fetched yet"

    @property
    def fixed_per_day(self) -> float:
        return self.tariff.fixed_per_day if self.tariff is not None else 0.0

    async def refresh(self) -> None:
        c = self.config
        try:
            record = await self.source.fetch_record()
            tariff = tariff_from_urdb(
                record, timezone=c.timezone, holidays=c.holidays, currency=self.currency
            )
        except SourceError as exc:
            self.error = str(exc)
        except UrdbError as exc:
            self.error = f"urdb: rate {c.label!r}: {exc}"
        else:
            self.tariff, self.error = tariff, ""
            return
        log.warning("electricity %s", self.error)

    def reading(self, now: float) -> Reading[PricePoint]:
        if self.tariff is None:
            return Reading(None, None, True, self.error)
        return Reading(self.tariff.price_at(now), 0.0, False, self.error)


class EconomicsService:
    """Owns the hashprice chain and the electricity price; pure per-unit maths is in fleetd.economics.unit."""

    def __init__(
        self,
        config: EconomicsConfig,
        catalog: Catalog | None = None,
        session: aiohttp.ClientSession | None = None,
    ) -> None:
        self.config = config
        self.catalog = catalog if catalog is not None else Catalog.load(config.catalog)
        self._session = session
        self.hashprice_chain = (
            HashpriceChain([self._hashprice_source(c) for c in config.hashprice], config.hashprice_max_age_s)
            if config.hashprice
            else None
        )
        self.prices = self._electricity(config) if config.tariff is not None else None

    # --- construction ---------------------------------------------------------------------------

    def _hashprice_source(self, c: Any) -> HashpriceSource:
        cur = self.config.currency
        if isinstance(c, StaticHashpriceConfig):
            return StaticHashprice(c.per_ph_day, cur)
        if isinstance(c, MempoolConfig):
            return MempoolHashprice(
                c.base_url,
                currency=cur,
                fee_blocks=c.fee_blocks,
                timeout_s=c.timeout_s,
                session=self._session,
            )
        if isinstance(c, LuxorConfig):
            if not c.key():
                raise EconomicsConfigError(
                    f"luxor hashprice source: no api_key and ${c.api_key_env} is unset"
                )
            return LuxorHashprice(
                c.key(),
                c.base_url,
                currency=cur,
                min_interval_s=c.min_interval_s,
                timeout_s=c.timeout_s,
                session=self._session,
            )
        raise EconomicsConfigError(f"unknown hashprice source {c!r}")

    def _electricity(self, config: EconomicsConfig) -> TariffPrices | MarketPrices | UrdbPrices:
        t, cur = config.tariff, config.currency
        if isinstance(t, FlatTariffConfig):
            return TariffPrices(FlatTariff(per_kwh_to_per_mwh(t.price_per_kwh), cur))
        if isinstance(t, TouTariffConfig):
            rules = [TouRule(r.period, tuple(r.months), r.days, tuple(r.hours)) for r in t.rules]
            periods = {name: per_kwh_to_per_mwh(price) for name, price in t.periods.items()}
            return TariffPrices(
                tou_from_rules(
                    periods, rules, t.default, timezone=t.timezone, holidays=t.holidays, currency=cur
                )
            )
        if isinstance(t, UrdbTariffConfig) and t.label:
            if not t.key():
                raise EconomicsConfigError(f"urdb tariff: no api_key and ${t.api_key_env} is unset")
            rate = UrdbRate(t.label, t.key(), t.base_url, timeout_s=t.timeout_s, session=self._session)
            return UrdbPrices(rate, t, cur)
        if isinstance(t, UrdbTariffConfig) and t.file is not None:
            try:
                record = json.loads(t.file.read_text())
                return TariffPrices(
                    tariff_from_urdb(record, timezone=t.timezone, holidays=t.holidays, currency=cur)
                )
            except OSError as exc:
                raise EconomicsConfigError(f"cannot read URDB file {t.file}: {exc.strerror or exc}") from None
            except (json.JSONDecodeError, UrdbError) as exc:
                raise EconomicsConfigError(f"URDB file {t.file}: {exc}") from None
        if isinstance(t, ErcotConfig):
            src = ErcotRealtime(t.settlement_point, t.base_url, timeout_s=t.timeout_s, session=self._session)
            return MarketPrices(src, t.max_age_s, t.refresh_s)
        if isinstance(t, HttpFeedConfig | MqttFeedConfig):
            fmt = FeedFormat(
                value_path=t.value_path,
                time_path=t.time_path,
                end_path=t.end_path,
                items_path=t.items_path,
                unit=t.unit,
                interval_s=t.interval_s,
                kind=t.format,
            )
            if isinstance(t, HttpFeedConfig):
                feed: PriceSource = HttpFeed(
                    t.url, fmt, currency=cur, headers=t.headers, timeout_s=t.timeout_s, session=self._session
                )
                return MarketPrices(feed, t.max_age_s, t.refresh_s)
            mqtt = MqttFeed(
                t.host, t.topic, fmt, port=t.port, currency=cur, username=t.username, password=t.password
            )
            return MarketPrices(mqtt, t.max_age_s, refresh_s=60.0)
        raise EconomicsConfigError(f"unknown tariff {t!r}")

    # --- scheduling -----------------------------------------------------------------------------

    def jobs(self) -> list[Job]:
        """Refreshes to run on a schedule; run each once at start-up too."""
        jobs = []
        if self.hashprice_chain is not None:
            every = min(getattr(c, "refresh_s", 600.0) for c in self.config.hashprice)
            jobs.append(Job("economics.hashprice", every, self.hashprice_chain.refresh))
        if isinstance(self.prices, MarketPrices | UrdbPrices):
            jobs.append(Job("economics.electricity", self.prices.refresh_s, self.prices.refresh))
        return jobs

    def schedule(self, scheduler: Any) -> None:
        """Add the jobs to an APScheduler (3.x) AsyncIOScheduler, each also run immediately."""
        import datetime as dt

        for job in self.jobs():
            scheduler.add_job(
                job.func,
                "interval",
                seconds=job.interval_s,
                id=job.name,
                next_run_time=dt.datetime.now(dt.UTC),
                max_instances=1,
                coalesce=True,
                replace_existing=True,
            )

    async def refresh_all(self) -> None:
        for job in self.jobs():
            await job.func()

    async def close(self) -> None:
        if self.hashprice_chain is not None:
            await self.hashprice_chain.close()
        if isinstance(self.prices, MarketPrices | UrdbPrices):
            await self.prices.source.close()

    # --- reading --------------------------------------------------------------------------------

    def hashprice(self, now: float | None = None) -> Reading[HashpriceValue]:
        if self.hashprice_chain is None:
            return Reading(None, None, True, "no hashprice source configured")
        return self.hashprice_chain.current(now)

    def energy_price(self, now: float | None = None) -> Reading[PricePoint]:
        """The energy price alone (tariff or market), without adders."""
        if self.prices is None:
            return Reading(None, None, True, "no tariff configured")
        return self.prices.reading(time.time() if now is None else now)

    def electricity_price(self, now: float | None = None) -> Reading[PricePoint]:
        """The all-in price: energy plus the configured adders."""
        r = self.energy_price(now)
        if r.value is None or not self.config.adders_per_mwh:
            return r
        adders = self.config.adders_total_per_mwh
        value = dataclasses.replace(
            r.value, per_mwh=r.value.per_mwh + adders, source=f"{r.value.source}+adders"
        )
        return dataclasses.replace(r, value=value)

    def evaluate(
        self,
        snapshot: Snapshot,
        identity: Identity | None,
        nominal_power_w: float | None = None,
        now: float | None = None,
    ) -> Economics:
        return self._evaluate(snapshot, identity, nominal_power_w, *self._inputs(now))

    def _inputs(self, now: float | None) -> tuple[float | None, float | None, bool]:
        hp, el = self.hashprice(now), self.electricity_price(now)
        return (
            hp.value.per_ph_day if hp.value else None,
            el.value.per_mwh if el.value else None,
            hp.stale or el.stale,
        )

    def _evaluate(
        self,
        snapshot: Snapshot,
        identity: Identity | None,
        nominal_power_w: float | None,
        hashprice: float | None,
        price_per_mwh: float | None,
        stale: bool,
        fallback_model: str = "",
    ) -> Economics:
        return unit_economics(
            snapshot,
            identity,
            hashprice,
            price_per_mwh,
            self.catalog,
            nominal_power_w if nominal_power_w is not None else self.config.default_power_w,
            pool_fee=self.config.pool_fee,
            dev_fee=self.config.dev_fee,
            currency=self.config.currency,
            stale_inputs=stale,
            fallback_model=fallback_model,
        )

    def evaluate_fleet(
        self, records: Any, now: float | None = None
    ) -> tuple[dict[str, Economics], FleetEconomics]:
        """Economics of every polled record (objects with id, snapshot, identity, nominal_power_w and
        optionally model, a configured model used when the identity's is not in the catalog)."""
        inputs = self._inputs(now)  # one price for the whole pass
        results = {}
        for rec in records:
            if rec.snapshot is None:
                continue
            try:
                results[rec.id] = self._evaluate(
                    rec.snapshot, rec.identity, rec.nominal_power_w, *inputs, getattr(rec, "model", "")
                )
            except Exception as exc:  # one miner's unreadable snapshot must not cost the fleet its figures
                VIEW_ERRORS.record("economics", rec.id, exc)
        fixed = self.prices.fixed_per_day if self.prices is not None else 0.0
        return results, fleet_economics(results.values(), fixed)
