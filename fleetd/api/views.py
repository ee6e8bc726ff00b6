"""Pure builders of the API's JSON documents from FleetState; no I/O, no aiohttp."""

from __future__ import annotations

import re
from collections.abc import Callable, Iterable
from dataclasses import asdict
from typing import TYPE_CHECKING, Any

from fleetd.daemon.rollups import configured_power
from fleetd.daemon.state import CycleStats, FleetState, Health, MinerRecord
from fleetd.model import Snapshot
from fleetd.numbers import (
    MAX_PROFIT_USD_PER_DAY,
    count,
    finite,
    hashrate_ths,
    number,
    power_w,
    temp_c,
)
from fleetd.view_errors import VIEW_ERRORS

if TYPE_CHECKING:
    from fleetd.economics.unit import Economics, FleetEconomics, Summary
    from fleetd.economics.values import Reading

HEALTH_VALUES: tuple[str, ...] = tuple(h.value for h in Health)
POWER_SOURCES: tuple[str, ...] = ("measured", "catalog", "catalog-sleep", "configured", "asleep", "unknown")

PowerOf = Callable[[MinerRecord, Snapshot], tuple[float | None, str]]
"""The power estimate of an up miner and its source (the daemon's, else measured/configured)."""


def power_estimate(rec: MinerRecord, power_of: PowerOf = configured_power) -> tuple[float | None, str]:
    """Power of a miner that is up, with its source; (None, 'unknown') when down or never polled."""
    snap = rec.snapshot
    if rec.health is not Health.UP or snap is None:
        return None, "unknown"
    return power_of(rec, snap)


QUERY_INT_MAX = 1_000_000_000  # offsets and limits beyond this are mistakes, not pages
_WHOLE = re.compile(r"[+-]?[0-9]+")


def _r(value: float | None, digits: int) -> float | None:
    f = finite(value)
    return None if f is None else round(f, digits)


def _profit(value: object) -> float | None:
    return number(value, -MAX_PROFIT_USD_PER_DAY, MAX_PROFIT_USD_PER_DAY)


def economics_dict(eco: Economics) -> dict[str, Any]:
    """One miner's money per day (in `currency`) and the inputs it was computed from."""
    return {
        "currency": eco.currency,
        "revenue_per_day": _r(eco.revenue_per_day, 4),
        "power_cost_per_day": _r(eco.power_cost_per_day, 4),
        "profit_per_day": _r(eco.profit_per_day, 4),
        "profitable": eco.profitable,
        "power_cost_share": _r(eco.power_cost_share, 4),
        "efficiency_j_per_th": _r(eco.efficiency_j_per_th, 2),
        "breakeven_per_mwh": _r(eco.breakeven_per_mwh, 2),
        "breakeven_hashprice_per_ph_day": _r(eco.breakeven_hashprice_per_ph_day, 4),
        "hashrate_ths": _r(eco.hashrate_ths, 3),
        "power_w": _r(eco.power_w, 1),
        "power_source": eco.power_source,
        "hashprice_per_ph_day": eco.hashprice_per_ph_day,
        "electricity_per_mwh": eco.electricity_per_mwh,
        "stale_inputs": eco.stale_inputs,
    }


def model_of(rec: MinerRecord) -> str:
    return rec.identity.model if rec.identity else ""


def miner_summary(rec: MinerRecord, power_of: PowerOf = configured_power) -> dict[str, Any]:
    """One miner as listed by /api/miners: labels, identity headline, latest key figures, economics."""
    ident = rec.identity
    snap = rec.snapshot
    est_w, est_source = power_estimate(rec, power_of)
    eco = rec.economics if rec.health is Health.UP else None  # a down miner earns and costs nothing known
    return {
        "id": rec.id,
        "host": rec.host,
        "site": rec.labels.site,
        "rack": rec.labels.rack,
        "position": rec.labels.position,
        "state": rec.health.value,
        "driver": rec.driver,
        "vendor": ident.vendor if ident else "",
        "model": ident.model if ident else "",
        "firmware": ident.firmware if ident else "",
        "nominal_power_w": rec.nominal_power_w,
        # Impossible figures (NaN, inf, out of range, wrong type) show as unknown, never as a number.
        "hashrate_ths": hashrate_ths(snap.hashrate_ths) if snap else None,
        "expected_hashrate_ths": hashrate_ths(snap.expected_hashrate_ths) if snap else None,
        "power_w": power_w(snap.power_w) if snap else None,
        "temp_c": temp_c(snap.temp_c) if snap else None,
        "is_mining": snap.is_mining if snap else False,
        "mode": snap.mode.value if snap else None,
        "uptime_s": count(snap.uptime_s) if snap else None,
        "faults": len(snap.errors) if snap else 0,
        "polled_at": snap.polled_at if snap else None,
        "last_ok_at": rec.last_ok_at,
        "last_error": rec.last_error,
        "failures": rec.failures,
        "power_est_w": _r(est_w, 1),
        "power_source": est_source,
        "economics": economics_dict(eco) if eco is not None else None,
    }


def miner_detail(rec: MinerRecord, power_of: PowerOf = configured_power) -> dict[str, Any]:
    """One miner in full: the summary plus identity, the whole latest snapshot and scheduling facts."""
    out = miner_summary(rec, power_of)
    out["identity"] = asdict(rec.identity) if rec.identity else None
    out["snapshot"] = rec.snapshot.to_dict() if rec.snapshot else None
    out["next_poll_at"] = rec.next_poll_at
    return out


def _split(values: Iterable[str]) -> set[str]:
    """Repeated and comma-separated query values, lower-cased."""
    return {v.strip().lower() for raw in values for v in raw.split(",") if v.strip()}


def filter_miners(
    records: Iterable[MinerRecord],
    *,
    sites: Iterable[str] = (),
    models: Iterable[str] = (),
    states: Iterable[str] = (),
    profitable: bool | None = None,
) -> list[MinerRecord]:
    """Records matching every given filter; within one filter any value matches (case-insensitive).

    `profitable` keeps only up miners whose profit is known and positive (True) or not (False).
    """
    site_set, model_set, state_set = _split(sites), _split(models), _split(states)
    bad = state_set - set(HEALTH_VALUES)
    if bad:
        raise ValueError(f"state must be one of {', '.join(HEALTH_VALUES)}; got {', '.join(sorted(bad))}")
    out = []
    for rec in records:
        if site_set and rec.labels.site.lower() not in site_set:
            continue
        if model_set and model_of(rec).lower() not in model_set:
            continue
        if state_set and rec.health.value not in state_set:
            continue
        if profitable is not None:
            eco = rec.economics if rec.health is Health.UP else None
            if eco is None or eco.profitable is None or eco.profitable is not profitable:
                continue
        out.append(rec)
    return out


def parse_int(
    name: str, raw: str | None, default: int | None, low: int = 0, high: int = QUERY_INT_MAX
) -> int | None:
    """A whole-number query parameter within [low, high]; `default` when absent or empty."""
    if raw is None or raw.strip() == "":
        return default
    text = raw.strip()
    if _WHOLE.fullmatch(text) is None:  # not "1e3", "nan", "1_000", "--1" nor other scripts' digits
        raise ValueError(f"{name} must be a whole number, got {raw[:40]!r}")
    if len(text) > 12:
        raise ValueError(f"{name} must be between {low} and {high}, got {text[:40]}")
    value = int(text)
    if not low <= value <= high:
        raise ValueError(f"{name} must be between {low} and {high}, got {value}")
    return value


def parse_bool(name: str, raw: str | None) -> bool | None:
    """A true/false query parameter; None when absent or empty."""
    if raw is None or raw.strip() == "":
        return None
    value = raw.strip().lower()
    if value in ("true", "1", "yes"):
        return True
    if value in ("false", "0", "no"):
        return False
    raise ValueError(f"{name} must be true or false, got {raw!r}")


# health, mining, hashrate, expected, measured power, estimated power, its source (None: no snapshot),
# profit per day, hashing (for "unprofitable")
_Figures = tuple[
    Health, bool, float | None, float | None, float | None, float | None, str | None, float | None, bool
]


def _figures(rec: MinerRecord, power_of: PowerOf) -> _Figures:
    """What one miner adds to the totals, read (and checked) before anything is added: an impossible figure
    (NaN, inf, out of range, wrong type) counts as unknown, so that it cannot make the totals absurd."""
    snap = rec.snapshot
    if rec.health is not Health.UP or snap is None:
        return (rec.health, False, None, None, None, None, None, None, False)
    est_w, est_source = power_of(rec, snap)
    eco = rec.economics
    profit = _profit(eco.profit_per_day) if eco is not None else None
    return (
        rec.health,
        snap.is_mining is True,
        hashrate_ths(snap.hashrate_ths),
        hashrate_ths(snap.expected_hashrate_ths),
        power_w(snap.power_w),
        power_w(est_w),
        str(est_source),
        profit,
        profit is not None and (hashrate_ths(eco.hashrate_ths) or 0.0) > 0,  # type: ignore[union-attr]
    )


class _Totals:
    """Running sums for one group of miners."""

    __slots__ = (
        "down",
        "expected_ths",
        "hashrate_ths",
        "miners",
        "mining",
        "power_est_w",
        "power_unreported",
        "power_w",
        "priced",
        "profit",
        "sources",
        "unprofitable",
        "up",
    )

    def __init__(self) -> None:
        self.miners = self.up = self.down = self.mining = self.power_unreported = 0
        self.hashrate_ths = self.expected_ths = self.power_w = self.power_est_w = 0.0
        self.sources: dict[str, list[float]] = {}  # source -> [miners, watts]
        self.priced = self.unprofitable = 0  # miners with a known profit; of which hashing at a loss
        self.profit = 0.0

    def add(self, f: _Figures) -> None:
        health, mining, ths, expected, watts, est_w, est_source, profit, hashing = f
        self.miners += 1
        if health is Health.DOWN:
            self.down += 1
        if health is not Health.UP:
            return  # a down miner's last snapshot is stale: it contributes nothing
        self.up += 1
        if est_source is None:  # up but never polled
            return
        self.mining += mining
        if ths is not None:
            self.hashrate_ths += ths
        if expected is not None:
            self.expected_ths += expected
        if watts is not None:
            self.power_w += watts
        else:
            self.power_unreported += 1
        if est_w is not None:
            self.power_est_w += est_w
        acc = self.sources.get(est_source) or self.sources.setdefault(est_source, [0, 0.0])
        acc[0] += 1
        acc[1] += est_w or 0.0
        if profit is not None:
            self.priced += 1
            self.profit += profit
            self.unprofitable += profit <= 0 and hashing

    def to_dict(self) -> dict[str, Any]:
        return {
            "miners": self.miners,
            "up": self.up,
            "down": self.down,
            "unknown": self.miners - self.up - self.down,
            "mining": self.mining,
            "hashrate_ths": round(self.hashrate_ths, 3),
            "expected_hashrate_ths": round(self.expected_ths, 3),
            "power_w": round(self.power_w, 1),
            "power_unreported": self.power_unreported,
            "power_est_w": round(self.power_est_w, 1),
            "power_by_source": {
                k: {"miners": int(n), "power_w": round(w, 1)} for k, (n, w) in sorted(self.sources.items())
            },
            "efficiency_j_per_th": (
                round(self.power_est_w / self.hashrate_ths, 2) if self.hashrate_ths > 0 else None
            ),
            "profit_per_day": round(self.profit, 2) if self.priced else None,
            "unprofitable": self.unprofitable,
        }


def cycle_dict(cycle: CycleStats | None) -> dict[str, Any] | None:
    if cycle is None:
        return None
    return {
        "started_at": cycle.started_at,
        "ended_at": cycle.ended_at,
        "duration_s": round(cycle.ended_at - cycle.started_at, 3),
        "polled": cycle.polled,
        "ok": cycle.ok,
        "failed": cycle.failed,
        "overran": cycle.overran,
    }


def _summary_dict(s: Summary) -> dict[str, Any]:
    return {
        "miners": s.units,
        "hashrate_ths": round(s.hashrate_ths, 3),
        "power_w": round(s.power_w, 1),
        "revenue_per_day": round(s.revenue_per_day, 2),
        "power_cost_per_day": round(s.power_cost_per_day, 2),
        "profit_per_day": round(s.profit_per_day, 2),
        "unprofitable": s.unprofitable,
        "incomplete": s.incomplete,
        "efficiency_j_per_th": _r(s.efficiency_j_per_th, 2),
        "power_cost_share": _r(s.power_cost_share, 4),
    }


def fleet_economics_dict(fe: FleetEconomics, currency: str) -> dict[str, Any]:
    """Fleet money per day: unit totals, site fixed charges, and one summary per model."""
    return {
        "currency": currency,
        **_summary_dict(fe.total),
        "fixed_cost_per_day": round(fe.fixed_cost_per_day, 2),
        "profit_per_day": round(fe.profit_per_day, 2),  # after fixed charges
        "units_profit_per_day": round(fe.total.profit_per_day, 2),
        "by_model": [{"model": s.label, **_summary_dict(s)} for s in fe.by_model],
    }


def fleet_totals(state: FleetState, power_of: PowerOf = configured_power) -> dict[str, Any]:
    """Fleet-wide totals, with the same figures per model and per site (only UP miners add figures)."""
    total = _Totals()
    by_model: dict[str, _Totals] = {}
    by_site: dict[str, _Totals] = {}
    currency = ""
    for rec in list(state.miners.values()):
        try:
            f = _figures(rec, power_of)
            model, site = model_of(rec), rec.labels.site
        except Exception as exc:  # one miner's broken record must not cost the fleet its totals
            VIEW_ERRORS.record("api", rec.id, exc)
            continue
        total.add(f)
        (by_model.get(model) or by_model.setdefault(model, _Totals())).add(f)
        (by_site.get(site) or by_site.setdefault(site, _Totals())).add(f)
        if not currency and rec.economics is not None:
            currency = rec.economics.currency
    out = total.to_dict()
    out["last_cycle"] = cycle_dict(state.last_cycle)
    out["by_model"] = [{"model": k, **v.to_dict()} for k, v in sorted(by_model.items())]
    out["by_site"] = [{"site": k, **v.to_dict()} for k, v in sorted(by_site.items())]
    fe = state.economics
    out["economics"] = fleet_economics_dict(fe, currency or "USD") if fe is not None else None
    return out


def _price(reading: Reading[Any] | None, value: float | None, unit: str, ts: float | None) -> dict[str, Any]:
    if reading is None or reading.value is None:
        return {
            "value": None,
            "unit": unit,
            "source": "",
            "timestamp": None,
            "age_s": None,
            "stale": True,
            "error": reading.error if reading is not None else "economics not configured",
        }
    return {
        "value": value,
        "unit": unit,
        "source": reading.value.source,
        "timestamp": ts,
        "age_s": _r(reading.age_s, 1) if reading.age_s is not None else None,
        "stale": reading.stale,
        "error": reading.error,
    }


def prices(service: Any, now: float) -> dict[str, Any]:
    """The hashprice and electricity price in use (an EconomicsService, or None when not configured).

    The electricity price is all-in (adders included), as the economics use it.
    """
    if service is None:
        return {
            "configured": False,
            "currency": None,
            "pool_fee": None,
            "dev_fee": None,
            "hashprice": _price(None, None, "", None),
            "electricity": _price(None, None, "", None),
        }
    cur = service.config.currency
    hp = service.hashprice(now)
    el = service.electricity_price(now)
    hv, ev = hp.value, el.value
    return {
        "configured": True,
        "currency": cur,
        "pool_fee": service.config.pool_fee,
        "dev_fee": service.config.dev_fee,
        "hashprice": _price(hp, hv.per_ph_day if hv else None, f"{cur}/PH/day", hv.timestamp if hv else None),
        # The time the price is known to hold at, so that timestamp + age_s = now: now for a price in
        # effect (a tariff's, or a market interval covering now), else the end of its interval.
        "electricity": _price(
            el, ev.per_mwh if ev else None, f"{cur}/MWh", now - (el.age_s or 0.0) if ev else None
        ),
    }


def health(
    state: FleetState,
    *,
    now: float,
    poll_interval_s: float,
    loop_lag_s: float | None = None,
    progressing: bool | None = None,
    ha: dict[str, Any] | None = None,
) -> tuple[bool, dict[str, Any]]:
    """Whether poll cycles are progressing: the last one ended recently enough (or the daemon just started).

    With an HA pair (`ha`, the coordinator's status), a standby is healthy while it is ready to take over
    (`progressing` then says so) and its status is "standby".

    Without the daemon's own verdict (`progressing`), polling counts as stalled when no cycle ended
    within three poll intervals (at least 30 s): a single overrun is the poller's to report.
    """
    allowed = max(3 * poll_interval_s, 30.0)
    cycle = state.last_cycle
    age = now - cycle.ended_at if cycle is not None else None
    if progressing is None:
        progressing = age <= allowed if age is not None else now - state.started_at <= allowed
    ok = progressing
    status = ("ok" if cycle is not None else "starting") if ok else "stalled"
    body: dict[str, Any] = {
        "status": status,
        "now": now,
        "started_at": state.started_at,
        "last_cycle_ended_at": cycle.ended_at if cycle else None,
        "last_cycle_age_s": round(age, 3) if age is not None else None,
        "max_cycle_age_s": allowed,
        "loop_lag_ms": round(loop_lag_s * 1000, 1) if loop_lag_s is not None else None,
        "miners": len(state.miners),
        "up": state.up(),
        "down": state.down(),
    }
    if ha is not None:
        body["ha"] = ha
        if ha.get("role") == "standby":
            body["status"] = "standby" if ok else "stalled"
    return ok, body


def page(items: list[Any], *, limit: int | None, offset: int) -> list[Any]:
    return items[offset : offset + limit] if limit is not None else items[offset:]
