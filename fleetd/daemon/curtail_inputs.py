"""What the curtailment policy reads, built from the daemon's state: MinerViews, a PriceView, what is seen.

Pure functions of the fleet state, the catalog and the prices in use; the loop (fleetd.daemon.curtailment)
calls them once per pass.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from typing import TYPE_CHECKING

from fleetd.curtail.model import Action, Actual, MinerView, PricePoint, PriceView
from fleetd.curtail.ramp import ControlState
from fleetd.daemon.state import Health, MinerRecord
from fleetd.economics.hashprice import fee_factor
from fleetd.economics.unit import catalog_model, is_asleep, unit_hashrate_ths
from fleetd.model import Capability, Mode
from fleetd.numbers import MAX_HASHRATE_THS, MAX_POWER_W, number

if TYPE_CHECKING:
    from fleetd.economics.catalog import Catalog, Nominal
    from fleetd.economics.service import EconomicsService

HISTORY_S = 36 * 3600.0  # price history handed to the policy (strike windows look back this far at most)


@dataclass(frozen=True, slots=True)
class Running:
    """A miner's figures when it last ran at its normal mode (to judge a sleeping miner for resuming)."""

    hashrate_ths: float
    power_w: float | None


@dataclass(frozen=True, slots=True)
class Money:
    """The prices one pass judges every miner by."""

    hashprice_per_ph_day: float | None
    electricity_per_mwh: float | None
    pool_fee: float = 0.0
    dev_fee: float = 0.0
    stale: bool = True


def seen_actual(rec: MinerRecord, state: ControlState) -> Actual | None:
    """What the last poll shows the miner doing, or None (down, not polled, stopped for another reason)."""
    snap = rec.snapshot
    if rec.health is not Health.UP or snap is None:
        return None
    if is_asleep(snap):
        return Actual.SLEEPING
    if not snap.is_mining:
        return None
    t = state.target
    if t is not None and t.action is Action.LIMIT and snap.power_limit_w is not None:
        # Firmware with discrete levels (LuxOS profiles, Avalon work modes) runs the level with the most
        # power within the limit: a level at or below the target is the limit in effect.
        return Actual.LIMITED if snap.power_limit_w < (t.power_limit_w or 0) + 1.0 else Actual.RUNNING
    if state.actual is Actual.LIMITED and snap.mode is not Mode.NORMAL:
        return Actual.LIMITED
    return Actual.RUNNING


def running_figures(rec: MinerRecord, state: ControlState) -> Running | None:
    """The miner's figures now if it is hashing at its normal mode, else None."""
    snap = rec.snapshot
    if rec.health is not Health.UP or snap is None or not snap.is_mining or is_asleep(snap):
        return None
    if state.actual is Actual.LIMITED or snap.mode in (Mode.LOW, Mode.SLEEP):
        return None
    hashrate = number(unit_hashrate_ths(snap), 1e-9, MAX_HASHRATE_THS)  # NaN, inf, garbage: not a figure
    if hashrate is None:
        return None
    power = snap.power_w
    eco = rec.economics
    if power is None and eco is not None and eco.power_source != "asleep":
        power = eco.power_w
    return Running(hashrate, number(power, 0.0, MAX_POWER_W))


def miner_views(
    records: Iterable[MinerRecord],
    caps: Mapping[str, frozenset[Capability]],
    running: Mapping[str, Running],
    catalog: Catalog | None,
    money: Money,
    limits: Mapping[str, tuple[int, int]] | None = None,
) -> list[MinerView]:
    """One MinerView per miner: running figures measured, else remembered, else the catalog's.

    `limits` holds each miner's lowest and highest power limit as its driver knows them (LuxOS profiles,
    Avalon work modes); a miner without one gets no power-limit target from the policy."""
    views = []
    hp, el = money.hashprice_per_ph_day, money.electricity_per_mwh
    per_ths_day = hp * fee_factor(money.pool_fee, money.dev_fee) / 1000.0 if hp is not None else None
    per_w_day = el * 24.0 / 1e6 if el is not None else None
    models: dict[tuple[str, str], tuple[str, Nominal | None, float]] = {}
    for rec in records:
        key = (rec.identity.model if rec.identity is not None else "", rec.model)
        known = models.get(key)
        if known is None:
            known = models[key] = _model_figures(rec, catalog)
        model, nominal, asleep_w = known
        run = running.get(rec.id)
        hashrate, power = (run.hashrate_ths, run.power_w) if run is not None else (None, None)
        if nominal is not None:
            hashrate = hashrate if hashrate is not None else nominal.hashrate_ths
            power = power if power is not None else nominal.power_w
        if power is None and rec.nominal_power_w:
            power = rec.nominal_power_w
        profit = None
        if per_ths_day is not None and per_w_day is not None and hashrate is not None and power is not None:
            profit = hashrate * per_ths_day - power * per_w_day
        c = caps.get(rec.id, _NO_CAPS)
        lo, hi = (limits or {}).get(rec.id) or (None, None)
        views.append(
            MinerView(
                id=rec.id,
                site=rec.labels.site,
                model=model,
                rack=rec.labels.rack,
                up=rec.health is Health.UP,
                hashrate_ths=hashrate,
                power_w=power,
                sleep_power_w=asleep_w,
                profit_per_day=profit,
                efficiency_j_per_th=power / hashrate if power is not None and hashrate else None,
                can_sleep=Capability.SLEEP in c,
                can_limit=Capability.POWER_LIMIT in c,
                min_power_limit_w=lo,
                max_power_limit_w=hi,
                stale_economics=money.stale,
            )
        )
    return views


_NO_CAPS: frozenset[Capability] = frozenset()


def _model_figures(rec: MinerRecord, catalog: Catalog | None) -> tuple[str, Nominal | None, float]:
    """The catalog model of a record, its normal-mode figures and its sleep power (0 when unknown)."""
    model = catalog_model(rec.identity, catalog, rec.model) or rec.model
    if catalog is None or not model:
        return model, None, 0.0
    sleeping = catalog.nominal(model, "sleep", fallback=False)
    return model, catalog.nominal(model), sleeping.power_w if sleeping is not None else 0.0


def money_of(eco: EconomicsService | None, now: float) -> Money:
    if eco is None:
        return Money(None, None)
    hp, el = eco.hashprice(now), eco.electricity_price(now)
    return Money(
        hp.value.per_ph_day if hp.value else None,
        el.value.per_mwh if el.value else None,
        eco.config.pool_fee,
        eco.config.dev_fee,
        hp.stale or el.stale,
    )


def price_view(eco: EconomicsService | None, seen: Mapping[float, float], now: float) -> PriceView:
    """The all-in electricity price now and its recent intervals (the market's history, else those seen)."""
    if eco is None:
        return PriceView(None, 0.0, True)
    from fleetd.economics.service import MarketPrices

    r = eco.electricity_price(now)
    hp = eco.hashprice(now).value
    hashprice = hp.per_ph_day if hp is not None else None
    if r.value is None:
        return PriceView(None, 0.0, True, hashprice_usd_per_ph_day=hashprice)
    point = r.value
    adders = eco.config.adders_total_per_mwh if eco.config.adders_per_mwh else 0.0
    interval = point.end - point.start if point.end > point.start else 900.0
    history: dict[float, float] = dict(seen)
    if isinstance(eco.prices, MarketPrices):
        for p in eco.prices.history.between(now - HISTORY_S, now + 1.0):
            if p.start <= now:
                history[p.start] = p.per_mwh + adders
    history[point.start] = point.per_mwh
    points = tuple(PricePoint(t, history[t]) for t in sorted(history) if t >= now - HISTORY_S)
    return PriceView(
        now_usd_per_mwh=point.per_mwh,
        at=point.start,  # with the current interval last in history, it is counted once
        stale=r.stale,
        interval_s=min(interval, 3600.0),
        history=points,
        hashprice_usd_per_ph_day=hashprice,
        age_s=r.age_s if r.age_s is not None else 0.0,
    )
