"""Prometheus exposition of FleetState: rendered on scrape (no per-poll work), cached per poll cycle.

Units follow Prometheus conventions: hashrates in hashes per second, power in watts, temperatures in
celsius, times in seconds; money is per day in the economics currency (fleetd_economics_info{currency}).
The text is written directly (exposition format 0.0.4) rather than through prometheus_client sample
objects: at 10,000 miners that is ~300,000 samples, and building objects for each costs far more.
prometheus_client still supplies the process_* series.
"""

from __future__ import annotations

import asyncio
import gzip
import math
import time
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from typing import Any

from aiohttp import web
from prometheus_client import CollectorRegistry, ProcessCollector, generate_latest

from fleetd import __version__
from fleetd.daemon.state import CycleStats, FleetState, Health, MinerRecord
from fleetd.model import Mode

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
    "fleetd_storage_up": ("gauge", "1 while the database is open"),
    "fleetd_storage_queue_depth": ("gauge", "Writes waiting for the database"),
    "fleetd_storage_dropped_writes_total": ("counter", "Writes dropped because the storage queue was full"),
    "fleetd_storage_unstored_items": ("gauge", "Events and identity changes held in memory, database down"),
    "fleetd_mqtt_connected": ("gauge", "1 while connected to the MQTT broker"),
    "fleetd_mqtt_queue_depth": ("gauge", "MQTT messages waiting to be sent"),
    "fleetd_mqtt_published_messages_total": ("counter", "MQTT messages handed to the broker connection"),
    "fleetd_mqtt_dropped_messages_total": ("counter", "MQTT messages dropped (queue full, not connected)"),
    "fleetd_metrics_render_seconds": ("gauge", "Time the previous rendering of this output took"),
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
    currency: str = ""
    prices: list[tuple[str, float | None, float | None, bool]] = field(default_factory=list)


class _Out:
    """Samples grouped by family, written in FAMILIES order."""

    def __init__(self) -> None:
        self.lines: dict[str, list[str]] = {name: [] for name in FAMILIES}

    def add(self, name: str, labels: str, value: float | int | bool | None) -> None:
        if value is None:
            return
        self.lines[name].append(f"{name}{{{labels}}} {fmt(value)}" if labels else f"{name} {fmt(value)}")

    def text(self) -> str:
        parts: list[str] = []
        for name, samples in self.lines.items():
            if samples:
                kind, help_ = FAMILIES[name]
                parts.append(f"# HELP {name} {help_}\n# TYPE {name} {kind}\n")
                parts.append("\n".join(samples))
                parts.append("\n")
        return "".join(parts)


def _ths(v: float | None) -> float | None:
    return None if v is None else v * TH


def render(
    state: FleetState,
    miners: Iterable[MinerRecord] | None = None,
    *,
    extras: Extras | None = None,
    per_miner: bool = True,
    components: bool = True,
    render_s: float | None = None,
) -> str:
    """The exposition text of `state` (`miners` defaults to all of them)."""
    out = _Out()
    add = out.add
    ex = extras or Extras()
    add("fleetd_build_info", f'version="{escape(__version__)}"', 1)
    add("fleetd_start_time_seconds", "", state.started_at)
    counts = {Health.UP: 0, Health.DOWN: 0, Health.UNKNOWN: 0}
    mining = 0
    fleet_ths = fleet_expected = fleet_w = 0.0
    for rec in state.miners.values() if miners is None else miners:
        counts[rec.health] += 1
        snap = rec.snapshot
        up = rec.health is Health.UP and snap is not None
        eco = rec.economics
        power: float | None = None
        source = ""
        if up:
            assert snap is not None
            mining += snap.is_mining
            fleet_ths += snap.hashrate_ths or 0.0
            fleet_expected += snap.expected_hashrate_ths or 0.0
            if eco is not None and eco.power_w is not None:
                power, source = eco.power_w, eco.power_source
            elif snap.power_w is not None:
                power, source = snap.power_w, "measured"
            fleet_w += power or 0.0
        if not per_miner:
            continue
        ident = rec.identity
        lb = (
            f'miner="{escape(rec.id)}",host="{escape(rec.host)}",site="{escape(rec.labels.site)}",'
            f'rack="{escape(rec.labels.rack)}",model="{escape(ident.model if ident else rec.model)}",'
            f'vendor="{escape(ident.vendor if ident else "")}"'
        )
        if ident is not None:
            add(
                "fleetd_miner_info",
                f'{lb},firmware="{escape(ident.firmware)}",driver="{escape(rec.driver or ident.driver)}"',
                1,
            )
        add("fleetd_miner_up", lb, up)
        add("fleetd_miner_poll_failures", lb, rec.failures)
        add("fleetd_miner_last_success_timestamp_seconds", lb, rec.last_ok_at)
        if not up:
            continue
        assert snap is not None
        add("fleetd_miner_mining", lb, snap.is_mining)
        add("fleetd_miner_sleeping", lb, snap.mode is Mode.SLEEP)
        add("fleetd_miner_hashrate_hashes_per_second", lb, _ths(snap.hashrate_ths))
        add("fleetd_miner_hashrate_average_hashes_per_second", lb, _ths(snap.hashrate_avg_ths))
        add("fleetd_miner_expected_hashrate_hashes_per_second", lb, _ths(snap.expected_hashrate_ths))
        if power is not None:
            add("fleetd_miner_power_watts", f'{lb},source="{source}"', power)
        add("fleetd_miner_power_limit_watts", lb, snap.power_limit_w)
        chips = [b.chip_temp_c for b in snap.hashboards if b.chip_temp_c is not None]
        add("fleetd_miner_chip_temperature_max_celsius", lb, max(chips) if chips else snap.temp_c)
        add("fleetd_miner_ambient_temperature_celsius", lb, snap.env_temp_c)
        if components:
            for b in snap.hashboards:
                blb = f'{lb},board="{b.index}"'
                add("fleetd_miner_board_chip_temperature_celsius", blb, b.chip_temp_c)
                add("fleetd_miner_board_temperature_celsius", blb, b.board_temp_c)
                add("fleetd_miner_board_hashrate_hashes_per_second", blb, _ths(b.hashrate_ths))
                add("fleetd_miner_board_ok", blb, b.ok)
            for f in snap.fans:
                add("fleetd_miner_fan_speed_rpm", f'{lb},fan="{f.index}"', f.rpm)
        if snap.pools:
            add("fleetd_miner_shares_accepted_total", lb, sum(p.accepted for p in snap.pools))
            add("fleetd_miner_shares_rejected_total", lb, sum(p.rejected for p in snap.pools))
        add("fleetd_miner_uptime_seconds", lb, snap.uptime_s)
        add("fleetd_miner_faults", lb, len(snap.errors))
        if eco is not None:
            add("fleetd_miner_revenue_per_day", lb, eco.revenue_per_day)
            add("fleetd_miner_power_cost_per_day", lb, eco.power_cost_per_day)
            add("fleetd_miner_profit_per_day", lb, eco.profit_per_day)
            add("fleetd_miner_efficiency_joules_per_terahash", lb, eco.efficiency_j_per_th)
            add("fleetd_miner_breakeven_electricity_price_per_megawatt_hour", lb, eco.breakeven_per_mwh)

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
        name = (
            "fleetd_hashprice_per_petahash_day"
            if kind == "hashprice"
            else ("fleetd_electricity_price_per_megawatt_hour")
        )
        add(name, "", value)
        add("fleetd_price_age_seconds", f'price="{kind}"', age)
        add("fleetd_price_stale", f'price="{kind}"', stale or value is None)
    _cycle(out, state.last_cycle)
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
    return out.text()


def _cycle(out: _Out, c: CycleStats | None) -> None:
    if c is None:
        return
    out.add("fleetd_cycle_duration_seconds", "", c.ended_at - c.started_at)
    out.add("fleetd_cycle_end_timestamp_seconds", "", c.ended_at)
    for result in ("polled", "ok", "failed", "skipped"):
        out.add("fleetd_cycle_miners", f'result="{result}"', getattr(c, result))
    out.add("fleetd_cycle_overran", "", c.overran)


class Exporter:
    """Renders a FleetState (and, once bound, its Daemon's extras); one rendering per cycle and cache_s."""

    def __init__(self, source: StateSource) -> None:
        self.source = source
        self.daemon: Any = None
        self.cycles = 0
        self.overruns = 0
        self._cache: tuple[tuple[Any, ...], float, bytes] | None = None
        self._gzipped: tuple[bytes, bytes] | None = None  # (plain body it was made from, gzip of it)
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
        if getattr(d, "_use_storage", False):
            store = d.storage
            if store is None:
                ex.storage = (False, 0, 0, len(d._unstored))
            else:
                ex.storage = (True, store._q.qsize(), store.dropped, 0)
        mqtt = getattr(d, "mqtt", None)
        if mqtt is not None:
            ex.mqtt = (mqtt.connected, mqtt.queue_depth, mqtt.published, mqtt.dropped)
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
        """A fresh rendering, on the calling thread (tests, benchmarks)."""
        state = self.state()
        _, per_miner, components, _ = self._settings()
        text = render(state, extras=self.extras(time.time()), per_miner=per_miner, components=components)
        return text.encode() + generate_latest(self._process)

    async def scrape_gzip(self) -> bytes:
        """scrape(), gzip-compressed (10,000 miners: ~58 MB of text, ~3.5 MB compressed), also cached."""
        body = await self.scrape()
        async with self._lock:
            if self._gzipped is None or self._gzipped[0] is not body:
                self._gzipped = (body, await asyncio.to_thread(gzip.compress, body, 1))
            return self._gzipped[1]

    async def scrape(self) -> bytes:
        """The cached rendering when no cycle ended since and it is younger than cache_s; else a new one
        made in a worker thread from a copy of the miner list (the poller may add miners meanwhile)."""
        async with self._lock:
            state = self.state()
            _, per_miner, components, cache_s = self._settings()
            key = (id(state), id(state.last_cycle), id(state.economics), len(state.miners), per_miner)
            now = time.time()
            if self._cache is not None and self._cache[0] == key and now - self._cache[1] < cache_s:
                return self._cache[2]
            miners = list(state.miners.values())
            extras = self.extras(now)
            render_s = self._render_s

            def work() -> bytes:
                t0 = time.perf_counter()
                text = render(
                    state,
                    miners,
                    extras=extras,
                    per_miner=per_miner,
                    components=components,
                    render_s=render_s,
                )
                body = text.encode() + generate_latest(self._process)
                self._render_s = time.perf_counter() - t0
                return body

            body = await asyncio.to_thread(work)
            self._cache = (key, now, body)
            return body


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
