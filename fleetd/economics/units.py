"""Unit conversions used across the economics code."""

from __future__ import annotations

SECONDS_PER_DAY = 86_400.0
HOURS_PER_DAY = 24.0
SATS_PER_BTC = 100_000_000


def per_kwh_to_per_mwh(price: float) -> float:
    return price * 1000.0


def per_mwh_to_per_kwh(price: float) -> float:
    return price / 1000.0


def cents_per_kwh_to_per_mwh(cents: float) -> float:
    return cents * 10.0


def ths_to_phs(ths: float) -> float:
    return ths / 1000.0


def phs_to_ths(phs: float) -> float:
    return phs * 1000.0


def per_th_day_to_per_ph_day(value: float) -> float:
    return value * 1000.0


def sats_to_btc(sats: float) -> float:
    return sats / SATS_PER_BTC


def energy_mwh_per_day(power_w: float) -> float:
    """Energy drawn in one day at a constant power, in MWh."""
    return power_w * HOURS_PER_DAY / 1_000_000.0


def efficiency_j_per_th(power_w: float, hashrate_ths: float) -> float | None:
    """Joules per terahash (= W per TH/s); None when the unit hashes nothing."""
    return power_w / hashrate_ths if hashrate_ths > 0 else None


# Sanity bounds: a value outside them is a feed or unit error, never a price to act on. Energy prices may be
# negative (being paid to consume); the widest market caps are a few $10,000/MWh (ERCOT $5,000, NEM A$17,500).
MAX_ABS_PER_MWH = 100_000.0
MAX_HASHPRICE_PER_PH_DAY = 1_000_000.0  # today ~$50; the bound leaves room for weak currencies


def check_per_mwh(value: float, what: str = "price") -> float:
    """`value` if it is a plausible energy price per MWh (negative allowed), else ValueError."""
    if not abs(value) <= MAX_ABS_PER_MWH:  # also refuses NaN
        raise ValueError(f"{what} {value:g} per MWh is out of range (|price| <= {MAX_ABS_PER_MWH:,.0f})")
    return value


def check_hashprice(value: float, what: str = "hashprice") -> float:
    """`value` if it is a plausible gross hashprice per PH/s per day, else ValueError."""
    if not 0 < value <= MAX_HASHPRICE_PER_PH_DAY:
        raise ValueError(
            f"{what} {value:g} per PH/s per day is out of range (0 < x <= {MAX_HASHPRICE_PER_PH_DAY:,.0f})"
        )
    return value


PRICE_UNITS = {
    "per_mwh": 1.0,
    "per_kwh": 1000.0,
    "cents_per_kwh": 10.0,
}


def to_per_mwh(value: float, unit: str) -> float:
    """Convert a price in `unit` (per_mwh, per_kwh, cents_per_kwh) to currency per MWh."""
    try:
        return value * PRICE_UNITS[unit]
    except KeyError:
        raise ValueError(f"unknown price unit {unit!r} (expected one of {', '.join(PRICE_UNITS)})") from None
