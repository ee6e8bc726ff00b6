"""The Daemon: configuration in, a polled FleetState, storage and periodic jobs out.

Embed it: `d = Daemon(config, state_dir=...)`, `await d.start()`, read `d.state`, `await d.stop()`.
Signals, systemd notify and logging setup live in fleetd.daemon.service, not here.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import os
import random
import time
from collections import deque
from collections.abc import Callable
from pathlib import Path
from typing import TYPE_CHECKING, Any

from fleetd.config import Config, DiscoveryConfig, MinerConfig
from fleetd.daemon.events import Event, EventKind
from fleetd.daemon.poller import MinerTarget, Poller
from fleetd.daemon.rollups import Pricing, Rollups
from fleetd.daemon.state import CycleStats, FleetState, Health, Labels, MinerRecord
from fleetd.drivers import Endpoint, Timeouts
from fleetd.model import Identity, Mode, Snapshot

if TYPE_CHECKING:
    from apscheduler.schedulers.asyncio import AsyncIOScheduler

    from fleetd.economics.catalog import Catalog
    from fleetd.economics.service import EconomicsService
    from fleetd.exporters.mqtt import MqttPublisher
    from fleetd.storage.store import InventoryRow, Storage

log = logging.getLogger("fleetd.daemon")

DEFAULT_STATE_DIR = Path(".state")
DRIVER_STATE_SUBDIR = "drivers"  # drivers' own files (Antminer: modes to restore on wake)
ROLLUP_FLUSH_S = 300.0  # hourly rollup rows are topped up this often (and at stop)
STORAGE_RETRY_S = 30.0  # a database unavailable at start is tried again this often
UNSTORED_MAX = 10_000  # events and identity changes kept in memory while storage is unavailable
PRICES_VALID_S = 60.0  # rollups re-read the prices at least this often (and at each price interval's end)
PRICES_RETRY_S = 1.0  # ... or this often while a price is missing (sources not fetched yet)
PRICES_RECORD_S = 30.0  # new price points are looked for and stored this often
_LEVELS = {"debug": logging.DEBUG, "info": logging.INFO, "warning": logging.WARNING, "error": logging.ERROR}


def resolve_state_dir(explicit: str | Path | None, config: Config) -> Path:
    """--state-dir, else the config's state_dir, else systemd's $STATE_DIRECTORY, else ./.state."""
    if explicit:
        return Path(explicit)
    if config.state_dir:
        return Path(config.state_dir)
    env = os.environ.get("STATE_DIRECTORY", "")
    if env:
        return Path(env.split(":")[0])
    return DEFAULT_STATE_DIR


def next_cycle_delay(
    started: float, now: float, interval_s: float, jitter_s: float, rng: random.Random | None = None
) -> float:
    """Seconds until the next cycle: the rest of the interval plus a random jitter (so several daemons,
    or restarts, do not hit the network in step); a cycle that overran is followed at once."""
    rest = started + interval_s - now
    if rest <= 0.0:
        return 0.0
    return rest + (rng or random).uniform(0.0, jitter_s)


class Daemon:
    """One fleet: poller, state, storage and scheduler, started and stopped together."""

    def __init__(
        self,
        config: Config,
        *,
        state_dir: str | Path | None = None,
        storage: bool = True,
    ) -> None:
        self.config = config
        self.state_dir = resolve_state_dir(state_dir, config)
        self.state = FleetState()
        self.events: deque[Event] = deque(maxlen=1000)  # the most recent, newest last
        self.rollups = Rollups(self._max_gap(config), power_of=self.power_estimate, prices_at=self._prices_at)
        self.poller = Poller(
            self.state,
            config.polling,
            on_event=self.emit,
            on_identity=self._identity_seen,
            on_sample=self.rollups.sample,
            driver_state_dir=self.state_dir / DRIVER_STATE_SUBDIR,
        )
        self._use_storage = storage
        self.storage: Storage | None = None
        self.scheduler: AsyncIOScheduler | None = None
        self.economics: EconomicsService | None = None  # when the config has an [economics] section
        self.catalog: Catalog | None = None  # the economics catalog (nominal power by model and mode)
        self.mqtt: MqttPublisher | None = None  # when the config has an [mqtt] section
        self.on_cycle: list[Callable[[CycleStats], None]] = []  # called after every poll cycle
        self._stop = asyncio.Event()
        self._task: asyncio.Task[None] | None = None
        self._storage_task: asyncio.Task[None] | None = None
        self._shared: dict[Any, Any] = {}
        # ("event", Event) and ("identity", id, host, Identity, driver, at) waiting for storage to come back
        self._unstored: deque[tuple[Any, ...]] = deque()
        self.unstored_dropped = 0
        self._prices_sent: set[tuple[Any, ...]] = set()
        self._prices_checked_at = 0.0
        self.started = False

    # --- lifecycle -----------------------------------------------------------------------------------------
    async def start(self) -> None:
        """Open storage (migrations applied), load the inventory, start polling and the periodic jobs."""
        if self.started:
            return
        inventory: list[InventoryRow] = []
        self._stop.clear()
        self.poller._stopping = False
        self.poller.last_progress_at = time.time()
        if self._use_storage:
            self.state_dir.mkdir(parents=True, exist_ok=True)
            opened = await self._open_storage(first=True)
            if opened is None:  # polling goes on without it; storage is retried in the background
                self._storage_task = asyncio.create_task(self._retry_storage(), name="fleetd-storage-retry")
            else:
                inventory = opened
        self._apply_targets(self.config, self._targets(self.config), initial=True)
        self._restore(inventory)
        self.economics = self._build_economics(self.config)
        self.catalog = self._load_catalog()
        self._start_scheduler()
        self._start_mqtt()
        self._task = asyncio.create_task(self._poll_loop(), name="fleetd-poll")
        self.started = True
        self.emit(Event(EventKind.STARTED, f"fleetd started with {len(self.state.miners)} miners"))

    async def stop(self) -> None:
        """Finish (or time out) polls in flight, write what is pending, close everything."""
        if not self.started:
            return
        self.started = False
        self._stop.set()
        self.poller.stop()
        if self.scheduler is not None:
            self.scheduler.shutdown(wait=False)
            self.scheduler = None
        if self._storage_task is not None:
            self._storage_task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._storage_task
            self._storage_task = None
        if self._task is not None:
            grace = self.config.polling.timeout_s + 2.0
            try:
                await asyncio.wait_for(asyncio.shield(self._task), grace)
            except TimeoutError:
                self._task.cancel()
                with contextlib.suppress(asyncio.CancelledError):
                    await self._task
            self._task = None
        await self.poller.close()
        if self.mqtt is not None:  # after the last cycle's messages; says "offline"
            if self.mqtt.on_cycle in self.on_cycle:
                self.on_cycle.remove(self.mqtt.on_cycle)
            await asyncio.to_thread(self.mqtt.stop)
            self.mqtt = None
        self._write_rollups()
        if self.economics is not None:
            with contextlib.suppress(Exception):
                await self.economics.close()
            self.economics = None
        self._write_latest(list(self.state.miners))
        self.emit(Event(EventKind.STOPPED, "fleetd stopped"))
        if self.storage is None and self._unstored:
            log.error("%d events and identity changes not stored: storage unavailable", len(self._unstored))
        if self.storage is not None:
            await asyncio.to_thread(self.storage.close)
            self.storage = None

    async def wait(self) -> None:
        """Until the poll loop ends (stop())."""
        await self._stop.wait()

    # --- storage -------------------------------------------------------------------------------------------
    async def _open_storage(self, *, first: bool) -> list[InventoryRow] | None:
        """Connect and migrate; the stored inventory, or None (reported) when the database is unavailable."""
        from fleetd.storage.store import Storage, redact_url

        sc = self.config.storage
        url = self.config.storage_url(self.state_dir)
        store = Storage(
            url,
            queue_size=sc.queue_size,
            on_error=self._storage_error,
            echo=sc.echo,
            latest_every_s=sc.latest_state_every_s,
        )
        try:
            await asyncio.to_thread(store.open)
            inventory = await asyncio.to_thread(store.load_inventory)
        except Exception as exc:
            with contextlib.suppress(Exception):
                await asyncio.to_thread(store.close, 1.0)
            reason = (str(exc).splitlines() or [""])[0]
            msg = (
                f"storage unavailable at {redact_url(store.url)}: {type(exc).__name__}: {reason}; "
                f"polling goes on, retrying every {STORAGE_RETRY_S:g} s"
            )
            if first:
                log.error(msg)
                self.emit(Event(EventKind.STORAGE_ERROR, msg, level="error"))
            else:
                log.debug(msg)
            return None
        self.storage = store
        return inventory

    async def _retry_storage(self) -> None:
        while not self._stop.is_set():
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(self._stop.wait(), STORAGE_RETRY_S)
            if self._stop.is_set():
                return
            inventory = await self._open_storage(first=False)
            if inventory is None:
                continue
            log.warning("storage available again; writing the inventory polled meanwhile")
            self._restore(inventory)
            stored = {row.id: row.identity for row in inventory}
            stored.update(self._write_unstored())
            targets = self.poller.targets()
            for mid, rec in self.state.miners.items():
                if mid in targets:
                    self._store_miner(rec, targets[mid])
                known = stored.get(mid)
                if rec.identity is not None and (known is None or known.key() != rec.identity.key()):
                    self._identity_seen(rec, known, rec.identity)
            return

    def _write_unstored(self) -> dict[str, Identity]:
        """Write what happened while storage was away; returns the newest identity written per miner."""
        assert self.storage is not None
        items, self._unstored = self._unstored, deque()
        written: dict[str, Identity] = {}
        for item in items:
            if item[0] == "event":
                self.storage.add_event(item[1])
            else:
                _, mid, host, ident, driver, at = item
                self.storage.add_identity(mid, host, ident, driver, at=at)
                written[mid] = ident
        dropped, self.unstored_dropped = self.unstored_dropped, 0
        if dropped:
            msg = (
                f"{dropped} events and identity changes were lost while storage was unavailable "
                f"(at most {UNSTORED_MAX} are kept in memory)"
            )
            log.error(msg)
            self.emit(Event(EventKind.STORAGE_ERROR, msg, level="error"))
        return written

    def _store_later(self, item: tuple[Any, ...]) -> None:
        if len(self._unstored) >= UNSTORED_MAX:
            self._unstored.popleft()  # the oldest go first; the count is reported when storage is back
            self.unstored_dropped += 1
        self._unstored.append(item)

    # --- polling -------------------------------------------------------------------------------------------
    async def _poll_loop(self) -> None:
        while not self._stop.is_set():
            p = self.config.polling
            started = time.time()
            try:
                stats = await self.poller.cycle(started)
            except Exception:
                log.exception("poll cycle failed")
                stats = None
            if stats is not None:
                self._write_latest(self.poller.polled_ids)
                try:
                    self._after_cycle(stats.ended_at)
                except Exception:  # economics must never stop polling
                    log.exception("economics after the poll cycle failed")
                for hook in self.on_cycle:
                    try:
                        hook(stats)
                    except Exception:
                        log.exception("cycle hook failed")
            delay = next_cycle_delay(started, time.time(), p.interval_s, p.jitter_s)
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(self._stop.wait(), delay)

    def progressing(self, now: float | None = None) -> bool:
        """Whether poll cycles are making progress (for the systemd watchdog and /healthz)."""
        now = time.time() if now is None else now
        p = self.config.polling
        return (
            self._task is not None
            and not self._task.done()
            and (now - self.poller.last_progress_at <= 2 * (p.interval_s + p.timeout_s + p.jitter_s))
        )

    def status_line(self) -> str:
        st = self.state
        n = len(st.miners)
        line = f"{st.up()} up, {st.down()} down of {n} miners"
        c = st.last_cycle
        if c is None:
            return line + "; first poll cycle running"
        line += f"; last cycle {c.polled} polls ({c.failed} failed) in {c.ended_at - c.started_at:.1f} s"
        return line + (" OVERRAN" if c.overran else "")

    # --- configuration -------------------------------------------------------------------------------------
    async def reload(self, config: Config) -> list[str]:
        """Apply a new, validated configuration; returns what only takes effect after a restart."""
        old = self.config
        later = []
        if config.storage != old.storage or config.state_dir != old.state_dir:
            later.append("storage")
        if config.api != old.api:
            later.append("api.listen")
        if config.mqtt != old.mqtt:
            later.append("mqtt")
        wanted = self._targets(config)  # may raise (an unreadable secret) before anything changes
        self.config = config
        self.poller.polling = config.polling
        self.rollups.max_gap_s = self._max_gap(config)
        logging.getLogger("fleetd").setLevel(_LEVELS[config.logging.level])
        self._apply_targets(config, wanted, initial=False)
        if config.economics != old.economics:
            await self._replace_economics(config)
        if self.scheduler is not None:
            self._schedule_discovery()
        msg = f"configuration reloaded: {len(self.state.miners)} miners"
        if later:
            msg += f"; restart to apply changes to {', '.join(later)}"
        log.info(msg)
        self.emit(Event(EventKind.CONFIG_RELOADED, msg))
        return later

    def _endpoint(self, config: Config, target: MinerConfig | DiscoveryConfig, host: str) -> Endpoint:
        # Secrets are resolved once per credentials set and config (not per miner); objects are shared.
        cache = self._shared
        if cache.get("config") is not config:
            p = config.polling
            cache.clear()
            cache["config"] = config
            cache["timeouts"] = Timeouts(connect_s=p.connect_timeout_s, read_s=p.timeout_s)
        key = ("credentials", config.credentials_name(target))
        creds = cache.get(key)
        if creds is None:
            creds = cache[key] = config.credentials_for(target)
        return Endpoint(host, **target.ports(), credentials=creds, timeouts=cache["timeouts"])

    def _targets(self, config: Config) -> dict[str, MinerTarget]:
        """Every configured miner, plus discovered ones still inside a discovery range (new settings)."""
        wanted: dict[str, MinerTarget] = {}
        for m in config.miners:
            t = MinerTarget(
                host=m.host,
                endpoint=self._endpoint(config, m, m.host),
                driver=m.driver,
                labels=Labels(m.site, m.rack, m.position),
                nominal_power_w=m.nominal_power_w,
                source="config",
                model=m.model,
            )
            wanted[t.id] = t
        for mid, t in self.poller.targets().items():
            if t.source == "discovery" and mid not in wanted:
                d = self._discovery_for(t.host, config)
                if d is not None:
                    wanted[mid] = self._discovered_target(config, d, t.host, t.endpoint.api_port)
        return wanted

    def _apply_targets(self, config: Config, wanted: dict[str, MinerTarget], *, initial: bool) -> None:
        current = self.poller.targets()
        for mid in current:
            if mid in wanted:
                continue
            self.poller.remove(mid)
            self.rollups.forget(mid)
            msg = f"miner {mid} removed: no longer configured or in a discovery range"
            log.info(msg)
            self.emit(Event(EventKind.MINER_REMOVED, msg, mid))
        for mid, t in wanted.items():
            known = mid in current or mid in self.state.miners
            rec = self.poller.add(t)
            if current.get(mid) != t:
                self._store_miner(rec, t)
            if not known and not initial:
                self.emit(Event(EventKind.MINER_ADDED, f"miner {mid} added from the configuration", mid))

    def _restore(self, inventory: list[InventoryRow]) -> None:
        """Seed state from storage: identities (to notice swaps across restarts) and discovered miners."""
        configured = {m.host for m in self.config.miners}
        for row in inventory:
            if row.source == "discovery" and self.config.discovery and row.host not in configured:
                disc = self._discovery_for(row.host, self.config)
                if disc is not None:
                    self.poller.add(self._discovered_target(self.config, disc, row.host, row.api_port))
            rec = self.state.miners.get(row.id)
            if rec is None:
                continue
            if rec.identity is None:
                rec.identity = row.identity
            if row.driver and not rec.driver:
                rec.driver = row.driver

    def _discovery_for(self, host: str, config: Config) -> DiscoveryConfig | None:
        import ipaddress

        for d in config.discovery:
            ts = d.target_set()
            if host in {t.host for t in ts.names}:
                return d
            try:
                addr = ipaddress.ip_address(host)
            except ValueError:
                continue
            for (version, _port), spans in ts.ranges.items():
                if version == addr.version and any(a <= int(addr) <= b for a, b in spans):
                    return d
        return None

    def _discovered_target(self, config: Config, d: DiscoveryConfig, host: str, api_port: int) -> MinerTarget:
        endpoint = self._endpoint(config, d, host)
        if api_port != endpoint.api_port:
            from dataclasses import replace

            endpoint = replace(endpoint, api_port=api_port)
        return MinerTarget(host, endpoint, d.driver, Labels(d.site, d.rack, ""), None, "discovery")

    @staticmethod
    def _max_gap(config: Config) -> float:
        p = config.polling
        return 2.5 * p.interval_s + p.timeout_s + p.jitter_s

    def _start_mqtt(self) -> None:
        if self.config.mqtt is None:
            return
        from fleetd.exporters.mqtt import MqttPublisher

        try:
            pub = MqttPublisher(self.config.mqtt, lambda: self.state)
            pub.start()
        except Exception as exc:  # e.g. an unreadable TLS CA file: polling goes on without MQTT
            log.error("MQTT publishing disabled: %s: %s", type(exc).__name__, exc)
            return
        self.mqtt = pub
        self.on_cycle.append(pub.on_cycle)

    # --- periodic jobs -------------------------------------------------------------------------------------
    def _start_scheduler(self) -> None:
        from apscheduler.schedulers.asyncio import AsyncIOScheduler

        sched = AsyncIOScheduler(timezone="UTC", job_defaults={"coalesce": True, "max_instances": 1})
        self.scheduler = sched
        sched.add_job(self._write_rollups, "interval", seconds=ROLLUP_FLUSH_S, id="rollups")
        if self.economics is not None:
            self.economics.schedule(sched)  # hashprice and electricity price refreshes
        self._schedule_discovery()
        sched.start()

    def _schedule_discovery(self) -> None:
        from datetime import UTC, datetime

        sched = self.scheduler
        assert sched is not None
        for job in sched.get_jobs():
            if job.id.startswith("discovery-"):
                job.remove()
        for i, d in enumerate(self.config.discovery):
            sched.add_job(
                self._discover_job,
                "interval",
                args=[i],
                seconds=d.interval_s,
                id=f"discovery-{i}",
                next_run_time=datetime.now(UTC),
                misfire_grace_time=None,
            )

    async def discover_now(self) -> int:
        """Scan every discovery range once; returns how many new miners were added."""
        added = 0
        for i in range(len(self.config.discovery)):
            added += await self._discover(i)
        return added

    async def _discover_job(self, index: int) -> None:
        try:
            await self._discover(index)
        except asyncio.CancelledError:  # the scheduler shuts down mid-scan: nothing to report
            log.debug("discovery scan interrupted by shutdown")

    async def _discover(self, index: int) -> int:
        from fleetd.discovery import scan

        config = self.config
        if index >= len(config.discovery):
            return 0
        d = config.discovery[index]
        probe = self._endpoint(config, d, "0.0.0.0")
        p = config.polling
        try:
            found, stats = await scan(
                d.target_set(),
                api_port=probe.api_port,
                web_port=probe.web_port,
                timeout_s=p.connect_timeout_s + p.timeout_s,
                concurrency=min(256, p.concurrency),
                credentials=probe.credentials,
                read_hashrate=False,
            )
        except Exception:
            log.exception("discovery scan of %s failed", ", ".join(d.targets))
            return 0
        if self.config is not config:  # reloaded meanwhile: the next scan uses the new ranges
            return 0
        known = self.poller.targets()
        added = 0
        for f in found:
            t = self._discovered_target(config, d, f.identity.host, f.api_port)
            if t.id in known:
                continue
            rec = self.poller.add(t)
            rec.driver = f.identity.driver
            self._store_miner(rec, t)
            added += 1
            msg = f"discovered miner {t.id}: {f.identity.model}"
            log.info(msg)
            self.emit(Event(EventKind.MINER_ADDED, msg, t.id))
        log.info(
            "discovery of %s: %d addresses scanned, %d miners answered, %d new",
            ", ".join(d.targets),
            stats.done,
            stats.found,
            added,
        )
        return added

    # --- events and storage --------------------------------------------------------------------------------
    def emit(self, event: Event) -> None:
        self.events.append(event)
        if self.storage is not None:
            self.storage.add_event(event)
        elif self._use_storage:
            self._store_later(("event", event))

    def _storage_error(self, message: str) -> None:
        # Called from the writer thread; the event stays in memory (the database is what failed).
        loop = self._loop
        if loop is not None and not loop.is_closed():
            ev = Event(EventKind.STORAGE_ERROR, message, level="error")
            with contextlib.suppress(RuntimeError):
                loop.call_soon_threadsafe(self.events.append, ev)

    @property
    def _loop(self) -> asyncio.AbstractEventLoop | None:
        return self._task.get_loop() if self._task is not None else None

    def _store_miner(self, rec: MinerRecord, t: MinerTarget) -> None:
        if self.storage is None:
            return
        self.storage.upsert_miner(
            {
                "id": rec.id,
                "host": t.host,
                "api_port": t.endpoint.api_port,
                "site": t.labels.site,
                "rack": t.labels.rack,
                "position": t.labels.position,
                "nominal_power_w": t.nominal_power_w,
                "source": t.source,
            }
        )

    def _identity_seen(self, rec: MinerRecord, old: Identity | None, new: Identity) -> None:
        if self.storage is not None:
            self.storage.add_identity(rec.id, rec.host, new, rec.driver)
        elif self._use_storage:
            self._store_later(("identity", rec.id, rec.host, new, rec.driver, time.time()))

    async def _replace_economics(self, config: Config) -> None:
        self._write_rollups()
        old, self.economics = self.economics, self._build_economics(config)
        self.catalog = self._load_catalog()
        self.rollups.reprice()
        if self.scheduler is not None:
            for job in self.scheduler.get_jobs():
                if job.id.startswith("economics."):
                    job.remove()
            if self.economics is not None:
                self.economics.schedule(self.scheduler)
        if old is not None:
            with contextlib.suppress(Exception):
                await old.close()

    def _build_economics(self, config: Config) -> EconomicsService | None:
        if config.economics is None:
            return None
        try:
            from fleetd.economics import EconomicsConfig
            from fleetd.economics.service import EconomicsService

            return EconomicsService(EconomicsConfig.model_validate(config.economics))
        except Exception as exc:  # validated at load; a source that cannot be built must not stop polling
            log.error("economics disabled: %s", exc)
            return None

    def _load_catalog(self) -> Catalog | None:
        """The economics service's catalog, else the default one; None (reported) when unreadable."""
        if self.economics is not None:
            return self.economics.catalog
        from fleetd.economics.catalog import Catalog, CatalogError

        try:
            return Catalog.load()
        except CatalogError as exc:
            log.error("model catalog unavailable; energy of miners not reporting power unknown: %s", exc)
            return None

    def power_estimate(self, rec: MinerRecord, snap: Snapshot) -> tuple[float | None, str]:
        """Power for energy totals: measured, else the catalog's for model and mode, else configured."""
        from fleetd.economics.unit import MEASURED, UNKNOWN, unit_power

        if snap.power_w:
            return snap.power_w, MEASURED
        if not snap.is_mining and snap.mode is not Mode.SLEEP:
            return None, UNKNOWN  # stopped or failed but not asleep: no figure to trust
        nominal = rec.nominal_power_w
        if nominal is None and self.economics is not None:
            nominal = self.economics.config.default_power_w
        return unit_power(snap, rec.identity, self.catalog, nominal, rec.model)

    def nominal_power(self, rec: MinerRecord) -> tuple[float | None, str]:
        """Nominal power of a miner in normal mode (also before its first poll): catalog, else configured."""
        from fleetd.economics.unit import catalog_model

        model = catalog_model(rec.identity, self.catalog, rec.model)
        nominal = self.catalog.nominal(model) if self.catalog is not None and model else None
        if nominal is not None:
            return nominal.power_w, "catalog"
        return (rec.nominal_power_w, "configured") if rec.nominal_power_w else (None, "unknown")

    def _prices_at(self, now: float) -> Pricing:
        """Prices for rollups: valid until the electricity price's interval ends, at most PRICES_VALID_S."""
        eco = self.economics
        if eco is None:
            return Pricing(None, None, "", now + PRICES_VALID_S)
        from fleetd.economics.hashprice import fee_factor

        hp = eco.hashprice(now).value
        el = eco.electricity_price(now).value
        until = now + (PRICES_VALID_S if hp is not None and el is not None else PRICES_RETRY_S)
        if el is not None and now < el.end:
            until = min(until, el.end)
        keep = fee_factor(eco.config.pool_fee, eco.config.dev_fee)
        per_th = hp.per_ph_day * keep / 1000.0 / 86400.0 if hp is not None else None
        per_kwh = el.per_mwh / 1000.0 if el is not None else None
        return Pricing(per_th, per_kwh, eco.config.currency, until)

    def _after_cycle(self, now: float) -> None:
        """Per-miner and fleet economics of the miners up; new price points to storage."""
        eco = self.economics
        miners = self.state.miners
        if eco is None:
            if self.state.economics is not None:
                self.state.economics = None
                for rec in miners.values():
                    rec.economics = None
            return
        up = [rec for rec in miners.values() if rec.health is Health.UP]
        results, fleet = eco.evaluate_fleet(up, now)
        for rec in miners.values():
            rec.economics = results.get(rec.id)
        self.state.economics = fleet
        if now - self._prices_checked_at >= PRICES_RECORD_S:
            self._prices_checked_at = now
            self._record_prices(now)

    def _record_prices(self, now: float) -> None:
        """Store price points not stored yet: the hashprice in use, and every electricity interval known."""
        from fleetd.economics.service import MarketPrices

        eco, store = self.economics, self.storage
        if eco is None or store is None:
            return
        sent = self._prices_sent
        if len(sent) > 50_000:  # the database deduplicates too; this only saves writes
            sent.clear()
        # (kind, source, location, start, end, value, unit, currency)
        found: list[tuple[str, str, str, float, float | None, float, str, str]] = []
        hp = eco.hashprice(now).value
        if hp is not None:
            found.append(
                ("hashprice", hp.source, "", hp.timestamp, None, hp.per_ph_day, hp.unit, hp.currency)
            )
        prices = eco.prices
        if isinstance(prices, MarketPrices):
            points = prices.history.between(now - 2 * 86400, float("inf"))
        else:
            current = eco.energy_price(now).value
            points = [current] if current is not None else []
        found += [
            ("electricity", p.source, p.location, p.start, p.end, p.per_mwh, p.unit, p.currency)
            for p in points
        ]
        for kind, source, location, start, end, value, unit, currency in found:
            key = (kind, source, location, start)
            if key in sent:
                continue
            sent.add(key)
            store.add_price(
                kind,
                source=source,
                location=location,
                start=start,
                end=end,
                value=value,
                unit=unit,
                currency=currency,
                fetched_at=now,
            )

    def _write_rollups(self) -> None:
        if self.storage is None:  # kept accumulating in memory until storage is back
            return
        rows = self.rollups.drain()
        if rows:
            self.storage.add_rollups(rows)

    def _write_latest(self, ids: list[str]) -> None:
        if self.storage is None or not ids:
            return
        miners = self.state.miners
        rows: list[tuple[Any, ...]] = []
        for mid in ids:
            rec = miners.get(mid)
            if rec is not None:
                rows.append((mid, rec.health, rec.snapshot, rec.failures, rec.last_error, rec.last_ok_at))
        self.storage.set_latest(rows)

    # --- reading back --------------------------------------------------------------------------------------
    def miner(self, miner_id: str) -> MinerRecord | None:
        return self.state.miners.get(miner_id)

    def up_ids(self) -> list[str]:
        return [m.id for m in self.state.miners.values() if m.health is Health.UP]
