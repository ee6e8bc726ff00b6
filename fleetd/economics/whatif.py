"""What-if grids: profit per day over BTC price x electricity price, and where it turns negative."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

from fleetd.economics.hashprice import btc_per_ph_day, fee_factor
from fleetd.economics.units import energy_mwh_per_day, per_kwh_to_per_mwh, per_mwh_to_per_kwh, ths_to_phs


@dataclass(frozen=True, slots=True)
class Grid:
    """profit[i][j]: profit per day at electricity_per_kwh[i] and btc_prices[j], for `units` machines."""

    label: str
    units: int
    hashrate_ths: float  # per unit
    power_w: float  # per unit
    btc_prices: tuple[float, ...]
    electricity_per_kwh: tuple[float, ...]
    profit: tuple[tuple[float, ...], ...]
    breakeven_per_kwh: tuple[float, ...]  # by BTC price: energy price (before adders) at zero profit
    breakeven_btc_price: tuple[float, ...]  # by electricity price: BTC price where profit hits 0

    @property
    def efficiency_j_per_th(self) -> float:
        return self.power_w / self.hashrate_ths


def profit_grid(
    label: str,
    hashrate_ths: float,
    power_w: float,
    btc_prices: Sequence[float],
    electricity_per_kwh: Sequence[float],
    *,
    difficulty: float,
    subsidy_btc: float,
    fees_btc_per_block: float = 0.0,
    pool_fee: float = 0.0,
    dev_fee: float = 0.0,
    adders_per_mwh: float = 0.0,
    units: int = 1,
) -> Grid:
    if hashrate_ths <= 0 or power_w <= 0 or units <= 0:
        raise ValueError("hashrate, power and unit count must be > 0")
    btc_per_day = btc_per_ph_day(difficulty, subsidy_btc, fees_btc_per_block) * ths_to_phs(hashrate_ths)
    btc_net = btc_per_day * fee_factor(pool_fee, dev_fee) * units
    mwh = energy_mwh_per_day(power_w) * units
    rows = tuple(
        tuple(btc_net * price - mwh * (per_kwh_to_per_mwh(kwh) + adders_per_mwh) for price in btc_prices)
        for kwh in electricity_per_kwh
    )
    be_kwh = tuple(per_mwh_to_per_kwh(btc_net * price / mwh - adders_per_mwh) for price in btc_prices)
    be_btc = tuple(mwh * (per_kwh_to_per_mwh(kwh) + adders_per_mwh) / btc_net for kwh in electricity_per_kwh)
    prices, kwhs = tuple(btc_prices), tuple(electricity_per_kwh)
    return Grid(label, units, hashrate_ths, power_w, prices, kwhs, rows, be_kwh, be_btc)
