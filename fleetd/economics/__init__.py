"""Economics: hashprice, electricity prices and tariffs, per-unit and fleet profitability.

The modules here are pure (no I/O); network sources live in fleetd.economics.sources and are composed
by fleetd.economics.service.EconomicsService.
"""

from fleetd.economics.catalog import Catalog, Nominal
from fleetd.economics.config import EconomicsConfig
from fleetd.economics.hashprice import block_subsidy_btc, blocks_per_ph_day, hashprice_per_ph_day
from fleetd.economics.unit import Economics, FleetEconomics, economics, fleet_economics, unit_economics
from fleetd.economics.values import HashpriceValue, PricePoint, Reading

__all__ = [
    "Catalog",
    "Economics",
    "EconomicsConfig",
    "FleetEconomics",
    "HashpriceValue",
    "Nominal",
    "PricePoint",
    "Reading",
    "block_subsidy_btc",
    "blocks_per_ph_day",
    "economics",
    "fleet_economics",
    "hashprice_per_ph_day",
    "unit_economics",
]
