"""Per-unit and per-fleet profitability: pure functions of a snapshot, prices, fees and the catalog."""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass

from fleetd import numbers
from fleetd.economics.catalog import SLEEP, Catalog
from fleetd.economics.hashprice import fee_factor
from fleetd.economics.units import energy_mwh_per_day, ths_to_phs
from fleetd.model import Identity, Mode, Snapshot

MEASURED = "measured"
CATALOG = "catalog"
CATALOG_SLEEP = "catalog-sleep"  # asleep, not reporting power: the model's idle draw from the catalog
CONFIGURED = "configured"
ASLEEP = "asleep"  # asleep, not reporting power, model has no sleep figure: counted as drawing nothing
UNKNOWN = "unknown"


@dataclass(frozen=True, slots=True)
class Economics:
    """Money per day for one unit or a what-if, in `currency`; None where an input is missing."""

    hashrate_ths: float | None
    power_w: float | None
    power_source: str  # measured | catalog | catalog-sleep | configured | asleep | unknown
    hashprice_per_ph_day: float | None  # gross, before fees
    electricity_per_mwh: float | None  # all-in, adders included
    revenue_per_day: float | None  # after pool and dev fees
    power_cost_per_day: float | None
    profit_per_day: float | None
    efficiency_j_per_th: float | None
    breakeven_per_mwh: float | None  # electricity price at which profit is zero
    breakeven_hashprice_per_ph_day: float | None  # gross hashprice at which profit is zero
    power_cost_share: float | None  # power cost / revenue
    currency: str = "USD"
    model: str = ""
    stale_inputs: bool = False

    @property
    def profitable(self) -> bool | None:
        return None if self.profit_per_day is None else self.profit_per_day > 0


def economics(
    hashrate_ths: float | None,
    power_w: float | None,
    hashprice_per_ph_day: float | None,
    electricity_per_mwh: float | None,
    *,
    pool_fee: float = 0.0,
    dev_fee: float = 0.0,
    power_source: str = CONFIGURED,
    currency: str = "USD",
    model: str = "",
    stale_inputs: bool = False,
) -> Economics:
    """Revenue = hashrate x hashprice x (1 - fees); cost = energy per day x price; and what follows."""
    net = fee_factor(pool_fee, dev_fee)
    revenue = cost = profit = eff = be_price = be_hp = share = None
    phs = ths_to_phs(hashrate_ths) if hashrate_ths is not None else None
    energy = energy_mwh_per_day(power_w) if power_w is not None else None
    if phs is not None and hashprice_per_ph_day is not None:
        revenue = phs * hashprice_per_ph_day * net
    if energy is not None and electricity_per_mwh is not None:
        cost = energy * electricity_per_mwh
    if revenue is not None and cost is not None:
        profit = revenue - cost
        share = cost / revenue if revenue > 0 else None
    if power_w is not None and hashrate_ths:
        eff = power_w / hashrate_ths
    if revenue and energy:  # earning nothing (asleep), no electricity price breaks even: n/a, not $0
        be_price = revenue / energy
    if cost is not None and phs:
        be_hp = cost / (phs * net)
    return Economics(
        hashrate_ths=hashrate_ths,
        power_w=power_w,
        power_source=power_source,
        hashprice_per_ph_day=hashprice_per_ph_day,
        electricity_per_mwh=electricity_per_mwh,
        revenue_per_day=revenue,
        power_cost_per_day=cost,
        profit_per_day=profit,
        efficiency_j_per_th=eff,
        breakeven_per_mwh=be_price,
        breakeven_hashprice_per_ph_day=be_hp,
        power_cost_share=share,
        currency=currency,
        model=model,
        stale_inputs=stale_inputs,
    )


def is_asleep(snapshot: Snapshot) -> bool:
    return snapshot.mode is Mode.SLEEP and not snapshot.is_mining


def unit_hashrate_ths(snapshot: Snapshot) -> float:
    """The hashrate to earn on: the firmware's average, else the current figure; 0 when asleep or unknown."""
    if is_asleep(snapshot):
        return 0.0  # an average since boot would still credit hashes no longer made
    # An impossible figure (NaN, inf, negative, absurd) is no hashrate to earn on.
    avg = numbers.hashrate_ths(snapshot.hashrate_avg_ths)
    if avg is not None:
        return avg
    return numbers.hashrate_ths(snapshot.hashrate_ths) or 0.0


def unit_power(
    snapshot: Snapshot,
    identity: Identity | None,
    catalog: Catalog | None,
    nominal_power_w: float | None,
    fallback_model: str = "",
) -> tuple[float | None, str]:
    """Power and where it came from: measured, else catalog nominal for model and mode, else configured.

    A sleeping unit that reports no power draws its model's catalog sleep figure (control board, fans).
    `fallback_model` (a configured model) is looked up when the identity's model is not in the catalog.
    """
    measured = numbers.power_w(snapshot.power_w)  # NaN, inf or an absurd figure: not measured
    if measured:
        return measured, MEASURED
    model = catalog_model(identity, catalog, fallback_model)
    if is_asleep(snapshot):
        idle = catalog.nominal(model, SLEEP) if catalog is not None and model else None
        return (idle.power_w, CATALOG_SLEEP) if idle is not None else (0.0, ASLEEP)
    if catalog is not None and model:
        mode = snapshot.mode.value if snapshot.mode not in (Mode.UNKNOWN, Mode.SLEEP) else "normal"
        nominal = catalog.nominal(model, mode)
        if nominal is not None:
            return nominal.power_w, CATALOG
    if nominal_power_w is not None:
        return nominal_power_w, CONFIGURED
    return None, UNKNOWN


def catalog_model(identity: Identity | None, catalog: Catalog | None, fallback_model: str = "") -> str:
    """The identity's model, or `fallback_model` when the catalog knows only that one."""
    model = identity.model if identity is not None else ""
    if fallback_model and catalog is not None and (not model or catalog.find(model) is None):
        return fallback_model
    return model or fallback_model


def unit_economics(
    snapshot: Snapshot,
    identity: Identity | None,
    hashprice_per_ph_day: float | None,
    electricity_per_mwh: float | None,
    catalog: Catalog | None = None,
    nominal_power_w: float | None = None,
    *,
    pool_fee: float = 0.0,
    dev_fee: float = 0.0,
    currency: str = "USD",
    stale_inputs: bool = False,
    fallback_model: str = "",
) -> Economics:
    """Economics of one polled unit; the power figure's origin is in `power_source`."""
    power, source = unit_power(snapshot, identity, catalog, nominal_power_w, fallback_model)
    model = catalog_model(identity, catalog, fallback_model)
    if catalog is not None and model:
        entry = catalog.find(model)
        model = entry.name if entry else model
    return economics(
        unit_hashrate_ths(snapshot),
        power,
        hashprice_per_ph_day,
        electricity_per_mwh,
        pool_fee=pool_fee,
        dev_fee=dev_fee,
        power_source=source,
        currency=currency,
        model=model,
        stale_inputs=stale_inputs,
    )


@dataclass(frozen=True, slots=True)
class Summary:
    """Totals over a group of units; units whose profit could not be computed are counted in `incomplete`."""

    label: str
    units: int
    hashrate_ths: float
    power_w: float
    revenue_per_day: float
    power_cost_per_day: float
    profit_per_day: float
    unprofitable: int
    incomplete: int

    @property
    def efficiency_j_per_th(self) -> float | None:
        return self.power_w / self.hashrate_ths if self.hashrate_ths > 0 else None

    @property
    def power_cost_share(self) -> float | None:
        return self.power_cost_per_day / self.revenue_per_day if self.revenue_per_day > 0 else None


def summarize(label: str, results: Iterable[Economics]) -> Summary:
    units = incomplete = unprofitable = 0
    ths = watts = revenue = cost = 0.0
    top = numbers.MAX_PROFIT_USD_PER_DAY
    for r in results:
        units += 1
        # An impossible figure (NaN, inf, absurd) makes the unit incomplete, never the fleet's totals absurd.
        rev = numbers.number(r.revenue_per_day, -top, top)
        spent = numbers.number(r.power_cost_per_day, -top, top)
        if r.profit_per_day is None or rev is None or spent is None:
            incomplete += 1
            continue
        ths += numbers.hashrate_ths(r.hashrate_ths) or 0.0
        watts += numbers.power_w(r.power_w) or 0.0
        revenue += rev
        cost += spent
        unprofitable += r.profit_per_day <= 0 and (r.hashrate_ths or 0) > 0  # asleep is not 'unprofitable'
    return Summary(label, units, ths, watts, revenue, cost, revenue - cost, unprofitable, incomplete)


@dataclass(frozen=True, slots=True)
class FleetEconomics:
    total: Summary
    by_model: tuple[Summary, ...]
    fixed_cost_per_day: float = 0.0  # site charges (tariff fixed charges), not attributed to units

    @property
    def profit_per_day(self) -> float:
        return self.total.profit_per_day - self.fixed_cost_per_day


def fleet_economics(results: Iterable[Economics], fixed_cost_per_day: float = 0.0) -> FleetEconomics:
    """Fleet totals and per-model summaries (sorted by model name)."""
    groups: dict[str, list[Economics]] = {}
    everything = []
    for r in results:
        everything.append(r)
        groups.setdefault(r.model or "unknown", []).append(r)
    by_model = tuple(summarize(name, groups[name]) for name in sorted(groups))
    return FleetEconomics(summarize("fleet", everything), by_model, fixed_cost_per_day)
