"""Prometheus exposition of FleetState: rendered on scrape (no per-poll work), cached per poll cycle.

Units follow Prometheus conventions: hashrates in hashes per second, power in watts, temperatures in
celsius, times in seconds; money is per day in the economics currency (fleetd_economics_info{currency}).
The text is written directly (exposition format 0.0.4) rather than through prometheus_client sample
objects: at 10,000 miners that is ~380,000 samples, and an object for each costs far more time and
memory. It is written family by family into a gzip stream, and only the compressed body is cached.
prometheus_client still supplies the process_* series.
"""

from __future__ import annotations

import asyncio
import gzip
import math
import time
import zlib
from collections.abc import Callable, Iterable, Iterator
from dataclasses import dataclass, field
from typing import Any

from aiohttp import web
from prometheus_client import CollectorRegistry, ProcessCollector, generate_latest

from fleetd import __version__
from fleetd.curtail.status import CurtailStatus
from fleetd.daemon.state import CycleStats, FleetState, Health, MinerRecord
from fleetd.economics.unit import Economics
from fleetd.exporters import prometheus_curtail
from fleetd.model import Hashboard, Mode, Snapshot
from fleetd.numbers import count, finite, hashrate_ths, power_w, temp_c
from fleetd.view_errors import VIEW_ERRORS

CONTENT_TYPE = "text/plain; version=0.0.4; charset=utf-8"
TH = 1e12  # hashes per second in one TH/s (the model's unit)

StateSource = FleetState | Callable[[], FleetState]

# name -> (type, help); the order here is the order of the output
FAMILIES: dict[str, tuple[str, str]] = {
    "fleetd_build_info": ("gauge", "fleetd version running (value 1)"),
    "fleetd_start_time_seconds": ("gauge", "Unix time the fleet state was created (daemon start)"),
    "fleetd_miners": ("gauge", "Miners by health: up, down (stopped answering), unknown (not polled yet)"),
    "fleetd_miners_mining": ("gauge", "Miners up and hashing"),
    "fleetd_fleet_hashrate_hashes_per_second": ("gauge", "Current hashrate of the miners up"),
    "fleetd_fleet_expected_hashrate_hashes_per_second": ("gauge", "Expected hashrate of the miners up"),
    "fleetd_fleet_power_watts": ("gauge", "Power of the miners up (measured, else the catalog's estimate)"),
    "fleetd_fleet_revenue_per_day": ("gauge", "Fleet revenue per day after pool and dev fees"),
    "fleetd_fleet_power_cost_per_day": ("gauge", "Fleet electricity cost per day"),
    "fleetd_fleet_profit_per_day": ("gauge", "Fleet profit per day, site fixed charges deducted"),
    "fleetd_fleet_fixed_cost_per_day": ("gauge", "Site fixed charges per day (tariff), not in unit profits"),
    "fleetd_fleet_unprofitable_miners": ("gauge", "Miners hashing at a loss"),
    "fleetd_fleet_economics_incomplete_miners": ("gauge", "Miners whose profit could not be computed"),
    "fleetd_model_miners": ("gauge", "Miners up per catalog model"),
    "fleetd_model_profit_per_day": ("gauge", "Profit per day per catalog model"),
    "fleetd_economics_info": ("gauge", "Currency of the money series (value 1)"),
    "fleetd_hashprice_per_petahash_day": ("gauge", "Gross hashprice in use, currency per PH/s per day"),
    "fleetd_electricity_price_per_megawatt_hour": ("gauge", "All-in electricity price in use, per MWh"),
    "fleetd_price_age_seconds": ("gauge", "Age of the price in use"),
    "fleetd_price_stale": ("gauge", "1 when the price in use is too old to trust or missing"),
    "fleetd_cycle_duration_seconds": ("gauge", "Duration of the last poll cycle"),
    "fleetd_cycle_end_timestamp_seconds": ("gauge", "Unix time the last poll cycle ended"),
    "fleetd_cycle_miners": ("gauge", "Miners in the last poll cycle by result: polled, ok, failed, skipped"),
    "fleetd_cycle_overran": ("gauge", "1 when the last poll cycle took longer than the poll interval"),
    "fleetd_cycles_total": ("counter", "Poll cycles completed since start"),
    "fleetd_cycle_overruns_total": ("counter", "Poll cycles that took longer than the poll interval"),
    "fleetd_storage_up": ("gauge", "1 while writes reach the database (open and not failing)"),
    "fleetd_storage_queue_depth": ("gauge", "Writes waiting for the database"),
    "fleetd_storage_dropped_writes_total": (
        "counter",
        "Writes lost: queue or spool full, rows refused, shutdown",
    ),
    "fleetd_storage_unstored_items": ("gauge", "Events, identity changes and rollups spooled, database down"),
    "fleetd_mqtt_connected": ("gauge", "1 while connected to the MQTT broker"),
    "fleetd_mqtt_queue_depth": ("gauge", "MQTT messages waiting to be sent"),
    "fleetd_mqtt_published_messages_total": ("counter", "MQTT messages handed to the broker connection"),
    "fleetd_mqtt_dropped_messages_total": ("counter", "MQTT messages dropped (queue full, not connected)"),
    "fleetd_metrics_render_seconds": ("gauge", "Time the previous rendering of this output took"),
    "fleetd_ha_role": ("gauge", "HA pair ([ha]): 1 for the role this instance holds, active or standby"),
    "fleetd_ha_last_heartbeat_timestamp_seconds": (
        "gauge",
        "HA: Unix time the active last confirmed its lock",
    ),
    "fleetd_health_findings": ("gauge", "Active health findings by code, component and severity"),
    "fleetd_health_miners_with_findings": ("gauge", "Miners with at least one active finding of a severity"),
    "fleetd_health_miner_findings": (
        "gauge",
        "Active findings of a miner by severity (miners with findings)",
    ),
    "fleetd_health_miner_finding": (
        "gauge",
        "One active finding of a miner (value 1): code, subject, severity",
    ),
    "fleetd_health_warnings": ("gauge", "Predictive-maintenance trend warnings by code, component, severity"),
    "fleetd_health_miner_warning": ("gauge", "A trend warning of a miner (value 1): code, subject, severity"),
    "fleetd_health_miner_warning_slope_per_day": ("gauge", "A warning's trend, in its metric's unit per day"),
    "fleetd_health_miner_warning_time_to_limit_hours": ("gauge", "Extrapolated hours until the limit"),
    "fleetd_health_trends_timestamp_seconds": ("gauge", "Unix time the trend job last ran"),
    "fleetd_health_trends_duration_seconds": ("gauge", "Duration of the trend job's last run"),
    "fleetd_miner_info": ("gauge", "Miner identity (value 1): firmware, driver"),
    "fleetd_miner_up": ("gauge", "1 when the miner answered its last polls"),
    "fleetd_miner_poll_failures": ("gauge", "Consecutive failed polls"),
    "fleetd_miner_last_success_timestamp_seconds": ("gauge", "Unix time of the last successful poll"),
    "fleetd_miner_mining": ("gauge", "1 when the miner is hashing"),
    "fleetd_miner_sleeping": ("gauge", "1 when the miner is in sleep mode"),
    "fleetd_miner_hashrate_hashes_per_second": ("gauge", "Current hashrate (firmware's short window)"),
    "fleetd_miner_hashrate_average_hashes_per_second": ("gauge", "Average hashrate (firmware's window)"),
    "fleetd_miner_expected_hashrate_hashes_per_second": ("gauge", "Hashrate the miner should make"),
    "fleetd_miner_power_watts": ("gauge", "Input power; source: measured, catalog, configured, ..."),
    "fleetd_miner_power_limit_watts": ("gauge", "Configured power limit"),
    "fleetd_miner_chip_temperature_max_celsius": ("gauge", "Hottest chip (else board) temperature"),
    "fleetd_miner_ambient_temperature_celsius": ("gauge", "Inlet or ambient temperature"),
    "fleetd_miner_board_chip_temperature_celsius": ("gauge", "Hottest chip temperature per hashboard"),
    "fleetd_miner_board_temperature_celsius": ("gauge", "Hottest PCB temperature per hashboard"),
    "fleetd_miner_board_hashrate_hashes_per_second": ("gauge", "Hashrate per hashboard"),
    "fleetd_miner_board_ok": ("gauge", "1 when the hashboard works"),
    "fleetd_miner_fan_speed_rpm": ("gauge", "Fan speed"),
    "fleetd_miner_shares_accepted_total": ("counter", "Shares accepted by the pools (firmware's count)"),
    "fleetd_miner_shares_rejected_total": ("counter", "Shares rejected by the pools (firmware's count)"),
    "fleetd_miner_uptime_seconds": ("gauge", "Time since the miner's firmware started"),
    "fleetd_miner_faults": ("gauge", "Errors the miner reports about itself"),
    "fleetd_miner_revenue_per_day": ("gauge", "Revenue per day after pool and dev fees"),
    "fleetd_miner_power_cost_per_day": ("gauge", "Electricity cost per day"),
    "fleetd_miner_profit_per_day": ("gauge", "Profit per day"),
    "fleetd_miner_efficiency_joules_per_terahash": ("gauge", "Efficiency, J/TH"),
    "fleetd_miner_breakeven_electricity_price_per_megawatt_hour": ("gauge", "Price at which profit is zero"),
    "fleetd_view_errors_total": (
        "counter",
        "Miner records skipped because their figures could not be read, by view (api, metrics, mqtt, "
        "health diagnosis, economics)",
    ),
}


def escape(value: str) -> str:
    """A label value as the text format wants it."""
    if "\\" in value or '"' in value or "\n" in value:
        return value.replace("\\", "\\\\").replace('"', '\\"').replace("\n", "\\n")
    return value


def fmt(value: float | int | bool) -> str:
    if isinstance(value, bool):
        return "1" if value else "0"
    if isinstance(value, int):
        return str(value)
    if math.isfinite(value):
        return repr(value)
    return "NaN" if math.isnan(value) else ("+Inf" if value > 0 else "-Inf")


@dataclass(slots=True)
class Extras:
    """What the daemon knows beyond FleetState, gathered on the event loop before a rendering."""

    cycles: int | None = None
    overruns: int | None = None
    storage: tuple[bool, int, int, int] | None = None  # up, queue depth, dropped, unstored
    mqtt: tuple[bool, int, int, int] | None = None  # connected, queue depth, published, dropped
    ha: tuple[str, float | None] | None = None  # role, last heartbeat; None without [ha]
    currency: str = ""
    prices: list[tuple[str, float | None, float | None, bool]] = field(default_factory=list)
    # (code, component, severity) -> count; miner -> [(code, subject, severity)]
    health: tuple[dict[tuple[str, str, str], int], dict[str, list[tuple[str, str, str]]]] | None = None
    curtail: CurtailStatus | None = None  # the daemon's curtail_status (fleetd_curtail_* series)
    curtail_rules: tuple[str, ...] = ()  # configured curtailment rule names
    warnings: tuple[Any, ...] | None = None  # HealthMonitor.export_warnings()


class _Out:
    """Samples of the small (non-miner) families, by family name."""

    def __init__(self) -> None:
        self.lines: dict[str, list[str]] = {}

    def add(self, name: str, labels: str, value: float | int | bool | None) -> None:
        if value is None:
            return
        line = f"{name}{{{labels}}} {fmt(value)}" if labels else f"{name} {fmt(value)}"
        self.lines.setdefault(name, []).append(line)


# Per-miner samples: an impossible figure (NaN, inf, out of range, wrong type) is no sample, as in the API.
def _ths(v: float | None) -> float | None:
    h = hashrate_ths(v)
    return None if h is None else h * TH


@dataclass(slots=True)
class _Row:
    """One miner as the per-miner families see it."""

    lb: str  # the common label set
    rec: MinerRecord
    snap: Snapshot | None  # only while up
    power: float | None
    source: str


def _max_chip(s: Snapshot) -> float | None:
    chips = [t for b in s.hashboards if (t := temp_c(b.chip_temp_c)) is not None]
    return max(chips) if chips else temp_c(s.temp_c)


def _shares(s: Snapshot, accepted: bool) -> int | None:
    if not s.pools:
        return None
    return count(sum(p.accepted if accepted else p.rejected for p in s.pools))


# per-miner families that are one value per miner: name -> value of a row (None: no sample)
_RowValue = Callable[[_Row], float | int | bool | None]
_ALWAYS: dict[str, _RowValue] = {
    "fleetd_miner_up": lambda r: r.snap is not None,
    "fleetd_miner_poll_failures": lambda r: r.rec.failures,
    "fleetd_miner_last_success_timestamp_seconds": lambda r: r.rec.last_ok_at,
}
_UP: dict[str, Callable[[Snapshot], float | int | bool | None]] = {
    "fleetd_miner_mining": lambda s: s.is_mining,
    "fleetd_miner_sleeping": lambda s: s.mode is Mode.SLEEP,
    "fleetd_miner_hashrate_hashes_per_second": lambda s: _ths(s.hashrate_ths),
    "fleetd_miner_hashrate_average_hashes_per_second": lambda s: _ths(s.hashrate_avg_ths),
    "fleetd_miner_expected_hashrate_hashes_per_second": lambda s: _ths(s.expected_hashrate_ths),
    "fleetd_miner_power_limit_watts": lambda s: power_w(s.power_limit_w),
    "fleetd_miner_chip_temperature_max_celsius": _max_chip,
    "fleetd_miner_ambient_temperature_celsius": lambda s: temp_c(s.env_temp_c),
    "fleetd_miner_shares_accepted_total": lambda s: _shares(s, True),
    "fleetd_miner_shares_rejected_total": lambda s: _shares(s, False),
    "fleetd_miner_uptime_seconds": lambda s: count(s.uptime_s),
    "fleetd_miner_faults": lambda s: len(s.errors),
}
_ECONOMICS: dict[str, Callable[[Economics], float | None]] = {
    "fleetd_miner_revenue_per_day": lambda e: finite(e.revenue_per_day),
    "fleetd_miner_power_cost_per_day": lambda e: finite(e.power_cost_per_day),
    "fleetd_miner_profit_per_day": lambda e: finite(e.profit_per_day),
    "fleetd_miner_efficiency_joules_per_terahash": lambda e: finite(e.efficiency_j_per_th),
    "fleetd_miner_breakeven_electricity_price_per_megawatt_hour": lambda e: finite(e.breakeven_per_mwh),
}
_BOARD: dict[str, Callable[[Hashboard], float | bool | None]] = {
    "fleetd_miner_board_chip_temperature_celsius": lambda b: temp_c(b.chip_temp_c),
    "fleetd_miner_board_temperature_celsius": lambda b: temp_c(b.board_temp_c),
    "fleetd_miner_board_hashrate_hashes_per_second": lambda b: _ths(b.hashrate_ths),
    "fleetd_miner_board_ok": lambda b: b.ok,
}


def _miner_lines(name: str, rows: list[_Row], components: bool) -> list[str]:
    """The samples of one per-miner family."""
    if name in _ALWAYS:
        get = _ALWAYS[name]
        return [f"{name}{{{r.lb}}} {fmt(v)}" for r in rows if (v := get(r)) is not None]
    if name in _UP:
        sget = _UP[name]
        return [
            f"{name}{{{r.lb}}} {fmt(v)}"
            for r in rows
            if r.snap is not None and (v := sget(r.snap)) is not None
        ]
    if name in _ECONOMICS:
        eget = _ECONOMICS[name]
        return [
            f"{name}{{{r.lb}}} {fmt(v)}"
            for r in rows
            if r.snap is not None and r.rec.economics is not None and (v := eget(r.rec.economics)) is not None
        ]
    if name == "fleetd_miner_info":
        out = []
        for r in rows:
            ident = r.rec.identity
            if ident is not None:
                driver = escape(r.rec.driver or ident.driver)
                out.append(f'{name}{{{r.lb},firmware="{escape(ident.firmware)}",driver="{driver}"}} 1')
        return out
    if name == "fleetd_miner_power_watts":
        return [f'{name}{{{r.lb},source="{r.source}"}} {fmt(r.power)}' for r in rows if r.power is not None]
    if not components:
        return []
    if name in _BOARD:
        bget = _BOARD[name]
        return [
            f'{name}{{{r.lb},board="{b.index}"}} {fmt(v)}'
            for r in rows
            if r.snap is not None
            for b in r.snap.hashboards
            if (v := bget(b)) is not None
        ]
    if name == "fleetd_miner_fan_speed_rpm":
        return [
            f'{name}{{{r.lb},fan="{f.index}"}} {rpm}'
            for r in rows
            if r.snap is not None
            for f in r.snap.fans
            if (rpm := count(f.rpm)) is not None
        ]
    raise KeyError(name)


def _isolated_lines(name: str, rows: list[_Row], components: bool) -> list[str]:
    """The samples of one per-miner family; when a miner's figures break it (a wrong type), that miner's
    samples are left out and counted, and every other miner's are kept."""
    try:
        return _miner_lines(name, rows, components)
    except Exception:
        pass
    out: list[str] = []
    for r in rows:
        try:
            out += _miner_lines(name, [r], components)
        except Exception as exc:
            VIEW_ERRORS.record("metrics", r.rec.id, exc)
    return out


def chunks(
    state: FleetState,
    miners: Iterable[MinerRecord] | None = None,
    *,
    extras: Extras | None = None,
    per_miner: bool = True,
    components: bool = True,
    render_s: float | None = None,
) -> Iterator[str]:
    """The exposition text of `state` (`miners` defaults to all of them), one family at a time, so that
    a rendering never holds every sample line at once."""
    out = _Out()
    add = out.add
    ex = extras or Extras()
    rows: list[_Row] = []
    counts = {Health.UP: 0, Health.DOWN: 0, Health.UNKNOWN: 0}
    mining = 0
    fleet_ths = fleet_expected = fleet_w = 0.0
    for rec in state.miners.values() if miners is None else miners:
        try:  # read (and check) everything first: a record that raises is skipped whole
            health = rec.health
            snap = rec.snapshot if health is Health.UP else None
            power: float | None = None
            source = ""
            ths = expected = None
            if snap is not None:
                # An impossible figure (NaN, inf, absurd, wrong type) is no sample and adds nothing.
                ths, expected = hashrate_ths(snap.hashrate_ths), hashrate_ths(snap.expected_hashrate_ths)
                eco = rec.economics
                if eco is not None and eco.power_w is not None:
                    power, source = power_w(eco.power_w), eco.power_source
                elif snap.power_w is not None:
                    power, source = power_w(snap.power_w), "measured"
            lb = ""
            if per_miner:
                ident = rec.identity
                lb = (
                    f'miner="{escape(rec.id)}",host="{escape(rec.host)}",site="{escape(rec.labels.site)}",'
                    f'rack="{escape(rec.labels.rack)}",model="{escape(ident.model if ident else rec.model)}",'
                    f'vendor="{escape(ident.vendor if ident else "")}"'
                )
                source = escape(source)
            counts[health] += 1
        except Exception as exc:
            VIEW_ERRORS.record("metrics", str(getattr(rec, "id", "?")), exc)
            continue
        if snap is not None:
            mining += snap.is_mining is True
            fleet_ths += ths or 0.0
            fleet_expected += expected or 0.0
            fleet_w += power or 0.0
        if per_miner:
            rows.append(_Row(lb, rec, snap, power, source))

    add("fleetd_build_info", f'version="{escape(__version__)}"', 1)
    add("fleetd_start_time_seconds", "", state.started_at)
    for health, n in counts.items():
        add("fleetd_miners", f'health="{health.value}"', n)
    add("fleetd_miners_mining", "", mining)
    add("fleetd_fleet_hashrate_hashes_per_second", "", fleet_ths * TH)
    add("fleetd_fleet_expected_hashrate_hashes_per_second", "", fleet_expected * TH)
    add("fleetd_fleet_power_watts", "", fleet_w)
    fe = state.economics
    if fe is not None:
        add("fleetd_fleet_revenue_per_day", "", fe.total.revenue_per_day)
        add("fleetd_fleet_power_cost_per_day", "", fe.total.power_cost_per_day)
        add("fleetd_fleet_profit_per_day", "", fe.profit_per_day)
        add("fleetd_fleet_fixed_cost_per_day", "", fe.fixed_cost_per_day)
        add("fleetd_fleet_unprofitable_miners", "", fe.total.unprofitable)
        add("fleetd_fleet_economics_incomplete_miners", "", fe.total.incomplete)
        for s in fe.by_model:
            add("fleetd_model_miners", f'model="{escape(s.label)}"', s.units)
            add("fleetd_model_profit_per_day", f'model="{escape(s.label)}"', s.profit_per_day)
    if ex.currency:
        add("fleetd_economics_info", f'currency="{escape(ex.currency)}"', 1)
    for kind, value, age, stale in ex.prices:
        price = "fleetd_hashprice_per_petahash_day" if kind == "hashprice" else PRICE_FAMILY
        add(price, "", value)
        add("fleetd_price_age_seconds", f'price="{kind}"', age)
        add("fleetd_price_stale", f'price="{kind}"', stale or value is None)
    c = state.last_cycle
    if c is not None:
        add("fleetd_cycle_duration_seconds", "", c.ended_at - c.started_at)
        add("fleetd_cycle_end_timestamp_seconds", "", c.ended_at)
        for result in ("polled", "ok", "failed", "skipped"):
            add("fleetd_cycle_miners", f'result="{result}"', getattr(c, result))
        add("fleetd_cycle_overran", "", c.overran)
    add("fleetd_cycles_total", "", ex.cycles)
    add("fleetd_cycle_overruns_total", "", ex.overruns)
    if ex.storage is not None:
        s_up, depth, dropped, unstored = ex.storage
        add("fleetd_storage_up", "", s_up)
        add("fleetd_storage_queue_depth", "", depth)
        add("fleetd_storage_dropped_writes_total", "", dropped)
        add("fleetd_storage_unstored_items", "", unstored)
    if ex.mqtt is not None:
        connected, depth, published, dropped = ex.mqtt
        add("fleetd_mqtt_connected", "", connected)
        add("fleetd_mqtt_queue_depth", "", depth)
        add("fleetd_mqtt_published_messages_total", "", published)
        add("fleetd_mqtt_dropped_messages_total", "", dropped)
    add("fleetd_metrics_render_seconds", "", render_s)
    if ex.ha is not None:
        for role in ("active", "standby"):
            add("fleetd_ha_role", f'role="{role}"', ex.ha[0] == role)
        add("fleetd_ha_last_heartbeat_timestamp_seconds", "", ex.ha[1])
    if ex.health is not None:
        _health_lines(add, *ex.health)
    if ex.warnings is not None:
        _warning_lines(add, *ex.warnings)

    for name, (kind, help_) in FAMILIES.items():
        if name.startswith("fleetd_miner_"):
            lines = _isolated_lines(name, rows, components) if rows else []
        elif name == "fleetd_view_errors_total":  # last: includes what this rendering skipped
            lines = [f'{name}{{view="{v}"}} {n}' for v, n in sorted(VIEW_ERRORS.snapshot().items())]
        else:
            lines = out.lines.get(name, [])
        if lines:
            yield f"# HELP {name} {help_}\n# TYPE {name} {kind}\n" + "\n".join(lines) + "\n"
    if ex.curtail is not None:
        labels = {r.rec.id: r.lb for r in rows} if per_miner else None
        yield from prometheus_curtail.chunks(ex.curtail, labels, ex.curtail_rules)


PRICE_FAMILY = "fleetd_electricity_price_per_megawatt_hour"
SEVERITIES = ("info", "warning", "critical")


def _health_lines(
    add: Callable[[str, str, float | int | bool | None], None],
    kinds: dict[tuple[str, str, str], int],
    per_miner: dict[str, list[tuple[str, str, str]]],
) -> None:
    for (code, component, severity), n in sorted(kinds.items()):
        add("fleetd_health_findings", f'code="{code}",component="{component}",severity="{severity}"', n)
    with_sev = dict.fromkeys(SEVERITIES, 0)
    for miner, found in per_miner.items():
        m = escape(miner)
        counts = dict.fromkeys(SEVERITIES, 0)
        for code, subject, severity in found:
            counts[severity] = counts.get(severity, 0) + 1
            labels = f'miner="{m}",code="{code}",subject="{escape(subject)}",severity="{severity}"'
            add("fleetd_health_miner_finding", labels, 1)
        for severity, n in counts.items():
            with_sev[severity] = with_sev.get(severity, 0) + (n > 0)
            add("fleetd_health_miner_findings", f'miner="{m}",severity="{severity}"', n)
    for severity, n in with_sev.items():
        add("fleetd_health_miners_with_findings", f'severity="{severity}"', n)


def _warning_lines(
    add: Callable[[str, str, float | int | bool | None], None],
    kinds: dict[tuple[str, str, str], int],
    rows: list[tuple[str, Any]],
    at: float | None,
    duration_s: float | None,
) -> None:
    for (code, component, severity), n in sorted(kinds.items()):
        add("fleetd_health_warnings", f'code="{code}",component="{component}",severity="{severity}"', n)
    for miner, w in rows:
        labels = f'miner="{escape(miner)}",code="{w.code}",subject="{escape(w.subject)}"'
        add("fleetd_health_miner_warning", f'{labels},severity="{w.severity}"', 1)
        add("fleetd_health_miner_warning_slope_per_day", f'{labels},metric="{w.metric}"', w.slope_per_day)
        add("fleetd_health_miner_warning_time_to_limit_hours", labels, w.time_to_limit_h)
    add("fleetd_health_trends_timestamp_seconds", "", at)
    add("fleetd_health_trends_duration_seconds", "", duration_s)


def render(state: FleetState, miners: Iterable[MinerRecord] | None = None, **options: Any) -> str:
    """The whole exposition text at once (tests, small fleets); see chunks()."""
    return "".join(chunks(state, miners, **options))


class Exporter:
    """Renders a FleetState (and, once bound, its Daemon's extras); one rendering per cycle and cache_s."""

    def __init__(self, source: StateSource) -> None:
        self.source = source
        self.daemon: Any = None
        self.cycles = 0
        self.overruns = 0
        self._cache: tuple[tuple[Any, ...], float, bytes] | None = None  # key, made at, gzip body
        self._render_s: float | None = None
        self._lock = asyncio.Lock()
        self._process = CollectorRegistry(auto_describe=False)
        ProcessCollector(registry=self._process)

    def bind(self, daemon: Any) -> None:
        """Take the Daemon's storage, MQTT, price and cycle-count figures as well."""
        self.daemon = daemon
        daemon.on_cycle.append(self._count)

    def _count(self, stats: CycleStats) -> None:
        self.cycles += 1
        self.overruns += stats.overran

    def state(self) -> FleetState:
        return self.source() if callable(self.source) else self.source

    def _settings(self) -> tuple[bool, bool, bool, float]:
        m = getattr(getattr(self.daemon, "config", None), "metrics", None)
        if m is None:
            return True, True, True, 10.0
        return m.enabled, m.per_miner, m.components, m.cache_s

    @property
    def enabled(self) -> bool:
        return self._settings()[0]

    def extras(self, now: float) -> Extras:
        d = self.daemon
        ex = Extras()
        if d is None:
            return ex
        ex.cycles, ex.overruns = self.cycles, self.overruns
        ex.storage = d.storage_status()
        mqtt = getattr(d, "mqtt", None)
        if mqtt is not None:
            ex.mqtt = (mqtt.connected, mqtt.queue_depth, mqtt.published, mqtt.dropped)
        mon = getattr(d, "health", None)
        if mon is not None:
            ex.health = mon.export()
            ex.warnings = mon.export_warnings()
        ex.curtail = getattr(d, "curtail_status", None)
        if ex.curtail is not None:
            ex.curtail_rules = prometheus_curtail.rule_names(d.config)
        ha = getattr(d, "ha", None)
        if ha is not None:
            ex.ha = (ha.role.value, ha.last_heartbeat_at)
        eco = d.economics
        if eco is not None:
            ex.currency = eco.config.currency
            hp = eco.hashprice(now)
            el = eco.electricity_price(now)
            ex.prices = [
                ("hashprice", hp.value.per_ph_day if hp.value else None, hp.age_s, hp.stale),
                ("electricity", el.value.per_mwh if el.value else None, el.age_s, el.stale),
            ]
        return ex

    def render_now(self) -> bytes:
        """A fresh, uncompressed rendering on the calling thread (tests, benchmarks)."""
        state = self.state()
        _, per_miner, components, _ = self._settings()
        text = render(state, extras=self.extras(time.time()), per_miner=per_miner, components=components)
        return text.encode() + generate_latest(self._process)

    def _render_gzip(
        self, state: FleetState, miners: list[MinerRecord], extras: Extras, **options: Any
    ) -> bytes:
        """Compressed family by family: neither all sample lines nor the whole text exist at once."""
        t0 = time.perf_counter()
        z = zlib.compressobj(1, zlib.DEFLATED, 31)  # wbits 31: a gzip container
        parts = [
            z.compress(c.encode())
            for c in chunks(state, miners, extras=extras, render_s=self._render_s, **options)
        ]
        parts.append(z.compress(generate_latest(self._process)))
        parts.append(z.flush())
        self._render_s = time.perf_counter() - t0
        return b"".join(parts)

    async def scrape_gzip(self) -> bytes:
        """The gzip-compressed exposition (10,000 miners: ~58 MB of text, ~3.5 MB compressed): the cached
        one when no cycle ended since and it is younger than cache_s, else a new one made in a worker
        thread from a copy of the miner list (the poller may add miners meanwhile)."""
        async with self._lock:
            state = self.state()
            _, per_miner, components, cache_s = self._settings()
            cycle = state.last_cycle
            key = (id(state), cycle.ended_at if cycle else None, len(state.miners), per_miner, components)
            key += (getattr(self.daemon, "curtail_status", None),)  # a new one after every pass
            key += (getattr(getattr(self.daemon, "ha", None), "role", None),)  # HA role changes show at once
            now = time.time()
            if self._cache is not None and self._cache[0] == key and now - self._cache[1] < cache_s:
                return self._cache[2]
            miners = list(state.miners.values())
            extras = self.extras(now)
            self._cache = None  # the old body goes before the new one is made
            body = await asyncio.to_thread(
                self._render_gzip, state, miners, extras, per_miner=per_miner, components=components
            )
            self._cache = (key, now, body)
            return body

    async def scrape(self) -> bytes:
        """The exposition uncompressed (for clients that do not take gzip; Prometheus does)."""
        return await asyncio.to_thread(gzip.decompress, await self.scrape_gzip())


EXPORTER_KEY = web.AppKey("fleetd_metrics_exporter", Exporter)


def install(app: web.Application, source: StateSource) -> None:
    """GET /metrics on `app`, over `source`."""
    app[EXPORTER_KEY] = Exporter(source)
    app.router.add_get("/metrics", metrics)


def bind_daemon(app: web.Application, daemon: Any) -> None:
    """Let /metrics of `app` include the daemon's own figures (storage, MQTT, prices, cycle counts)."""
    exporter = app.get(EXPORTER_KEY)
    if exporter is not None:
        exporter.bind(daemon)


async def metrics(request: web.Request) -> web.Response:
    exporter = request.app[EXPORTER_KEY]
    if not exporter.enabled:
        raise web.HTTPNotFound(reason="metrics are disabled ([metrics] enabled = false)")
    if "gzip" in request.headers.get("Accept-Encoding", ""):
        body = await exporter.scrape_gzip()
        headers = {"Content-Type": CONTENT_TYPE, "Content-Encoding": "gzip", "Vary": "Accept-Encoding"}
        return web.Response(body=body, headers=headers)
    return web.Response(body=await exporter.scrape(), headers={"Content-Type": CONTENT_TYPE})
