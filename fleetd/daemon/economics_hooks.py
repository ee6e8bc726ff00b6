"""Economics hooks: building the service, power figures for energy, prices for rollups and storage."""

from __future__ import annotations

import contextlib
import logging
from typing import TYPE_CHECKING, Any

from fleetd import numbers
from fleetd.config import Config
from fleetd.daemon.rollups import Pricing, Rollups
from fleetd.daemon.state import FleetState, Health, MinerRecord
from fleetd.model import Mode, Snapshot

if TYPE_CHECKING:
    from apscheduler.schedulers.asyncio import AsyncIOScheduler

    from fleetd.economics.catalog import Catalog
    from fleetd.economics.service import EconomicsService
    from fleetd.storage.store import Storage

log = logging.getLogger("fleetd.daemon")

PRICES_VALID_S = 60.0  # rollups re-read the prices at least this often (and at each price interval's end)
PRICES_RETRY_S = 1.0  # ... or this often while a price is missing (sources not fetched yet)
PRICES_RECORD_S = 30.0  # new price points are looked for and stored this often


class EconomicsHooks:
    """Daemon part: where economics meets polling, rollups and storage."""

    state: FleetState
    rollups: Rollups
    storage: Storage | None
    scheduler: AsyncIOScheduler | None
    economics: EconomicsService | None
    catalog: Catalog | None
    _prices_sent: set[tuple[Any, ...]]
    _prices_checked_at: float

    async def _replace_economics(self, config: Config) -> None:
        self._write_rollups()
        old, self.economics = self.economics, self._build_economics(config)
        self.catalog = self._load_catalog()
        self.rollups.reprice()
        if self.scheduler is not None:
            for job in self.scheduler.get_jobs():
                if job.id.startswith("economics."):
                    job.remove()
            if self.economics is not None:
                self.economics.schedule(self.scheduler)
        if old is not None:
            with contextlib.suppress(Exception):
                await old.close()

    def _build_economics(self, config: Config) -> EconomicsService | None:
        if config.economics is None:
            return None
        try:
            from fleetd.economics import EconomicsConfig
            from fleetd.economics.service import EconomicsService

            return EconomicsService(EconomicsConfig.model_validate(config.economics))
        except Exception as exc:  # validated at load; a source that cannot be built must not stop polling
            log.error("economics disabled: %s", exc)
            return None

    def _load_catalog(self) -> Catalog | None:
        """The economics service's catalog, else the default one; None (reported) when unreadable."""
        if self.economics is not None:
            return self.economics.catalog
        from fleetd.economics.catalog import Catalog, CatalogError

        try:
            return Catalog.load()
        except CatalogError as exc:
            log.error("model catalog unavailable; energy of miners not reporting power unknown: %s", exc)
            return None

    def power_estimate(self, rec: MinerRecord, snap: Snapshot) -> tuple[float | None, str]:
        """Power for energy totals: measured, else the catalog's for model and mode, else configured."""
        from fleetd.economics.unit import MEASURED, UNKNOWN, unit_power

        measured = numbers.power_w(snap.power_w)  # NaN, inf or an absurd figure: estimated instead
        if measured:
            return measured, MEASURED
        if not snap.is_mining and snap.mode is not Mode.SLEEP:
            return None, UNKNOWN  # stopped or failed but not asleep: no figure to trust
        nominal = rec.nominal_power_w
        if nominal is None and self.economics is not None:
            nominal = self.economics.config.default_power_w
        return unit_power(snap, rec.identity, self.catalog, nominal, rec.model)

    def nominal_power(self, rec: MinerRecord) -> tuple[float | None, str]:
        """Nominal power of a miner in normal mode (also before its first poll): catalog, else configured."""
        from fleetd.economics.unit import catalog_model

        model = catalog_model(rec.identity, self.catalog, rec.model)
        nominal = self.catalog.nominal(model) if self.catalog is not None and model else None
        if nominal is not None:
            return nominal.power_w, "catalog"
        return (rec.nominal_power_w, "configured") if rec.nominal_power_w else (None, "unknown")

    def _prices_at(self, now: float) -> Pricing:
        """Prices for rollups: valid until the electricity price's interval ends, at most PRICES_VALID_S."""
        eco = self.economics
        if eco is None:
            return Pricing(None, None, "", now + PRICES_VALID_S)
        from fleetd.economics.hashprice import fee_factor

        hp = eco.hashprice(now).value
        el = eco.electricity_price(now).value
        until = now + (PRICES_VALID_S if hp is not None and el is not None else PRICES_RETRY_S)
        if el is not None and now < el.end:
            until = min(until, el.end)
        keep = fee_factor(eco.config.pool_fee, eco.config.dev_fee)
        per_th = hp.per_ph_day * keep / 1000.0 / 86400.0 if hp is not None else None
        per_kwh = el.per_mwh / 1000.0 if el is not None else None
        return Pricing(per_th, per_kwh, eco.config.currency, until)

    def _after_cycle(self, now: float) -> None:
        """Per-miner and fleet economics of the miners up; new price points to storage."""
        eco = self.economics
        miners = self.state.miners
        if eco is None:
            if self.state.economics is not None:
                self.state.economics = None
                for rec in miners.values():
                    rec.economics = None
            return
        up = [rec for rec in miners.values() if rec.health is Health.UP]
        results, fleet = eco.evaluate_fleet(up, now)
        for rec in miners.values():
            rec.economics = results.get(rec.id)
        self.state.economics = fleet
        if now - self._prices_checked_at >= PRICES_RECORD_S:
            self._prices_checked_at = now
            self._record_prices(now)

    def _record_prices(self, now: float) -> None:
        """Store price points not stored yet: the hashprice in use, and every electricity interval known."""
        from fleetd.economics.service import MarketPrices

        eco, store = self.economics, self.storage
        if eco is None or store is None:
            return
        sent = self._prices_sent
        if len(sent) > 50_000:  # the database deduplicates too; this only saves writes
            sent.clear()
        # (kind, source, location, start, end, value, unit, currency)
        found: list[tuple[str, str, str, float, float | None, float, str, str]] = []
        hp = eco.hashprice(now).value
        if hp is not None:
            found.append(
                ("hashprice", hp.source, "", hp.timestamp, None, hp.per_ph_day, hp.unit, hp.currency)
            )
        prices = eco.prices
        if isinstance(prices, MarketPrices):
            points = prices.history.between(now - 2 * 86400, float("inf"))
        else:
            current = eco.energy_price(now).value
            points = [current] if current is not None else []
        found += [
            ("electricity", p.source, p.location, p.start, p.end, p.per_mwh, p.unit, p.currency)
            for p in points
        ]
        for kind, source, location, start, end, value, unit, currency in found:
            key = (kind, source, location, start)
            if key in sent:
                continue
            sent.add(key)
            store.add_price(
                kind,
                source=source,
                location=location,
                start=start,
                end=end,
                value=value,
                unit=unit,
                currency=currency,
                fetched_at=now,
            )
