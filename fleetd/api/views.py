"""Pure builders of the API's JSON documents from FleetState; no I/O, no aiohttp."""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from dataclasses import asdict
from typing import Any

from fleetd.daemon.state import CycleStats, FleetState, Health, MinerRecord

HEALTH_VALUES: tuple[str, ...] = tuple(h.value for h in Health)


def model_of(rec: MinerRecord) -> str:
    return rec.identity.model if rec.identity else ""


def miner_summary(rec: MinerRecord) -> dict[str, Any]:
    """One miner as listed by /api/miners: labels, identity headline, latest key figures."""
    ident = rec.identity
    snap = rec.snapshot
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
        "hashrate_ths": snap.hashrate_ths if snap else None,
        "expected_hashrate_ths": snap.expected_hashrate_ths if snap else None,
        "power_w": snap.power_w if snap else None,
        "temp_c": snap.temp_c if snap else None,
        "is_mining": snap.is_mining if snap else False,
        "mode": snap.mode.value if snap else None,
        "uptime_s": snap.uptime_s if snap else None,
        "faults": len(snap.errors) if snap else 0,
        "polled_at": snap.polled_at if snap else None,
        "last_ok_at": rec.last_ok_at,
        "last_error": rec.last_error,
        "failures": rec.failures,
    }


def miner_detail(rec: MinerRecord) -> dict[str, Any]:
    """One miner in full: the summary plus identity, the whole latest snapshot and scheduling facts."""
    out = miner_summary(rec)
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
) -> list[MinerRecord]:
    """Records matching every given filter; within one filter any value matches (case-insensitive)."""
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
        out.append(rec)
    return out


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
        "up",
    )

    def __init__(self) -> None:
        self.miners = self.up = self.down = self.mining = self.power_unreported = 0
        self.hashrate_ths = self.expected_ths = self.power_w = self.power_est_w = 0.0

    def add(self, rec: MinerRecord) -> None:
        self.miners += 1
        if rec.health is Health.DOWN:
            self.down += 1
        if rec.health is not Health.UP:
            return  # a down miner's last snapshot is stale: it contributes nothing
        self.up += 1
        snap = rec.snapshot
        if snap is None:
            return
        if snap.is_mining:
            self.mining += 1
        if snap.hashrate_ths is not None:
            self.hashrate_ths += snap.hashrate_ths
        if snap.expected_hashrate_ths is not None:
            self.expected_ths += snap.expected_hashrate_ths
        if snap.power_w is not None:
            self.power_w += snap.power_w
            self.power_est_w += snap.power_w
        else:
            self.power_unreported += 1
            if snap.is_mining and rec.nominal_power_w:
                self.power_est_w += rec.nominal_power_w

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
            "efficiency_j_per_th": (
                round(self.power_est_w / self.hashrate_ths, 2) if self.hashrate_ths > 0 else None
            ),
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


def fleet_totals(state: FleetState) -> dict[str, Any]:
    """Fleet-wide totals, with the same figures per model and per site (only UP miners add figures)."""
    total = _Totals()
    by_model: dict[str, _Totals] = {}
    by_site: dict[str, _Totals] = {}
    for rec in list(state.miners.values()):
        total.add(rec)
        model = model_of(rec)
        (by_model.get(model) or by_model.setdefault(model, _Totals())).add(rec)
        site = rec.labels.site
        (by_site.get(site) or by_site.setdefault(site, _Totals())).add(rec)
    out = total.to_dict()
    out["last_cycle"] = cycle_dict(state.last_cycle)
    out["by_model"] = [{"model": k, **v.to_dict()} for k, v in sorted(by_model.items())]
    out["by_site"] = [{"site": k, **v.to_dict()} for k, v in sorted(by_site.items())]
    return out


def health(
    state: FleetState,
    *,
    now: float,
    poll_interval_s: float,
    loop_lag_s: float | None = None,
    progressing: bool | None = None,
) -> tuple[bool, dict[str, Any]]:
    """Whether poll cycles are progressing: the last one ended recently enough (or the daemon just started).

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
    return ok, body


def page(items: list[Any], *, limit: int | None, offset: int) -> list[Any]:
    return items[offset : offset + limit] if limit is not None else items[offset:]


def query_list(query: Mapping[str, str], key: str) -> list[str]:
    getall = getattr(query, "getall", None)
    if getall is not None:
        return list(getall(key, []))
    return [query[key]] if key in query else []
