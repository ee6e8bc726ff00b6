"""Import of an OpenEI Utility Rate Database (URDB) record into a time-of-use tariff."""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from datetime import date
from typing import Any

from fleetd.economics.tariffs import TouTariff
from fleetd.economics.units import per_kwh_to_per_mwh

# URDB fixed-charge units to days; "$/month" uses the mean month length.
_FIXED_UNITS_DAYS = {"$/day": 1.0, "$/month": 365.25 / 12.0, "$/year": 365.25}


class UrdbError(ValueError):
    """The URDB record lacks or garbles a field the import needs."""


def _record(payload: Mapping[str, Any]) -> Mapping[str, Any]:
    items = payload.get("items")
    if items is not None:  # the API's response wrapper
        if not isinstance(items, list) or not items:
            raise UrdbError("URDB response has no items")
        return items[0]
    return payload


def _schedule(rec: Mapping[str, Any], key: str) -> tuple[tuple[int, ...], ...]:
    sched = rec.get(key)
    if (
        not isinstance(sched, list)
        or len(sched) != 12
        or any(not isinstance(row, list) or len(row) != 24 for row in sched)
    ):
        raise UrdbError(f"URDB {key} must be 12 lists of 24 period indexes")
    try:
        return tuple(tuple(int(p) for p in row) for row in sched)
    except (TypeError, ValueError):
        raise UrdbError(f"URDB {key} holds a non-integer period") from None


def period_rates_per_kwh(structure: Any) -> tuple[float, ...]:
    """Rate + adj of each period's first tier, in $/kWh (higher tiers need monthly usage and are ignored)."""
    if not isinstance(structure, list) or not structure:
        raise UrdbError("URDB energyratestructure is missing or empty")
    rates = []
    for i, tiers in enumerate(structure):
        if not isinstance(tiers, list) or not tiers or not isinstance(tiers[0], Mapping):
            raise UrdbError(f"URDB energyratestructure period {i} has no tiers")
        first = tiers[0]
        unit = first.get("unit", "kWh")
        if unit != "kWh":
            raise UrdbError(f"URDB energy rate unit {unit!r} in period {i} is not supported (only kWh)")
        try:
            rates.append(float(first.get("rate", 0.0) or 0.0) + float(first.get("adj", 0.0) or 0.0))
        except (TypeError, ValueError):
            raise UrdbError(f"URDB rate or adj of period {i} is not a number") from None
    return tuple(rates)


def fixed_charge_per_day(rec: Mapping[str, Any]) -> float:
    charge = rec.get("fixedchargefirstmeter")
    if charge in (None, ""):
        return 0.0
    units = rec.get("fixedchargeunits") or "$/month"
    if units not in _FIXED_UNITS_DAYS:
        raise UrdbError(f"URDB fixedchargeunits {units!r} is not supported")
    return float(charge) / _FIXED_UNITS_DAYS[units]


def tariff_from_urdb(
    payload: Mapping[str, Any],
    *,
    timezone: str,
    holidays: Iterable[date] = (),
    currency: str = "USD",
) -> TouTariff:
    """Build a TouTariff from a URDB record (or an API response holding `items`); periods index from 0."""
    rec = _record(payload)
    rates = period_rates_per_kwh(rec.get("energyratestructure"))
    weekday = _schedule(rec, "energyweekdayschedule")
    weekend = _schedule(rec, "energyweekendschedule")
    name = str(rec.get("name") or rec.get("label") or "urdb")
    try:
        return TouTariff(
            rates_per_mwh=tuple(per_kwh_to_per_mwh(r) for r in rates),
            weekday=weekday,
            weekend=weekend,
            timezone=timezone,
            holidays=frozenset(holidays),
            period_names=tuple(f"period{i}" for i in range(len(rates))),
            currency=currency,
            source=f"urdb:{name}",
            fixed_per_day=fixed_charge_per_day(rec),
        )
    except ValueError as exc:
        raise UrdbError(f"URDB record: {exc}") from None
