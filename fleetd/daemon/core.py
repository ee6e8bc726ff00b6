"""The Daemon: configuration in, a polled FleetState, storage and periodic jobs out.

Embed it: `d = Daemon(config, state_dir=...)`, `await d.start()`, read `d.state`, `await d.stop()`.
Signals, systemd notify and logging setup live in fleetd.daemon.service, not here. The Daemon's parts
(targets, recording, storage hand-off, economics hooks, periodic jobs) live in their own modules.
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

from fleetd.config import Config
from fleetd.daemon.economics_hooks import PRICES_RECORD_S, PRICES_RETRY_S, PRICES_VALID_S, EconomicsHooks
from fleetd.daemon.events import Event, EventKind
from fleetd.daemon.health_hooks import HealthHooks
from fleetd.daemon.jobs import ROLLUP_FLUSH_S, PeriodicJobs
from fleetd.daemon.poller import Poller
from fleetd.daemon.recording import Recording
from fleetd.daemon.rollups import Rollups
from fleetd.daemon.state import CycleStats, FleetState, MinerRecord
from fleetd.daemon.storage_handoff import STORAGE_RETRY_S, UNSTORED_MAX, StorageHandoff
from fleetd.daemon.targets import Targets

if TYPE_CHECKING:
    from apscheduler.schedulers.asyncio import AsyncIOScheduler

    from fleetd.curtail.status import CurtailStatus
    from fleetd.daemon.curtail_controls import ControlsStore
    from fleetd.daemon.curtailment import CurtailmentLoop
    from fleetd.daemon.ha import HaCoordinator
    from fleetd.economics.catalog import Catalog
    from fleetd.economics.service import EconomicsService
    from fleetd.exporters.mqtt import MqttPublisher
    from fleetd.health.monitor import HealthMonitor
    from fleetd.storage.store import InventoryRow, Storage

__all__ = [  # the tunables moved with their parts stay importable from here
    "DEFAULT_STATE_DIR",
    "DRIVER_STATE_SUBDIR",
    "PRICES_RECORD_S",
    "PRICES_RETRY_S",
    "PRICES_VALID_S",
    "ROLLUP_FLUSH_S",
    "STORAGE_RETRY_S",
    "UNSTORED_MAX",
    "Daemon",
    "next_cycle_delay",
    "resolve_state_dir",
]

log = logging.getLogger("fleetd.daemon")

DEFAULT_STATE_DIR = Path(".state")
DRIVER_STATE_SUBDIR = "drivers"  # drivers' own files (Antminer: modes to restore on wake)
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


class Daemon(Targets, Recording, StorageHandoff, EconomicsHooks, HealthHooks, PeriodicJobs):
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
        self.health: HealthMonitor | None = None  # miner health findings (after the first cycle)
        self.curtail_controls: ControlsStore | None = None  # when the config has a [curtailment] section
        self.curtailment: CurtailmentLoop | None = None  # the loop that decides and acts (same condition)
        self.curtail_status: CurtailStatus | None = None  # its latest picture, for the views
        self.ha: HaCoordinator | None = None  # [ha] enabled: started and stopped by the lock's holder
        self.on_cycle: list[Callable[[CycleStats], None]] = []  # called after every poll cycle
        self._stop = asyncio.Event()
        self._task: asyncio.Task[None] | None = None
        self._storage_task: asyncio.Task[None] | None = None
        self._shared: dict[Any, Any] = {}
        self._prices_sent: set[tuple[Any, ...]] = set()
        self._prices_checked_at = 0.0
        self.started = False

    # --- lifecycle -----------------------------------------------------------------------------------------
    async def start(self) -> None:
        """Open storage (migrations applied), load the inventory, start polling and the periodic jobs."""
        if self._ha_delegates():  # standby: the rest runs when this instance takes the HA lock
            await self.ha.start()  # type: ignore[union-attr]
            return
        if self.started:
            return
        inventory: list[InventoryRow] = []
        self._stop.clear()
        self.poller.resume()
        self.poller.last_progress_at = time.time()
        if self._use_storage:
            self.state_dir.mkdir(parents=True, exist_ok=True)
            opened = await self._open_storage(first=True)
            if opened is None:  # polling goes on without it; storage is retried in the background
                self._storage_task = asyncio.create_task(self._retry_storage(), name="fleetd-storage-retry")
                inventory = self._inventory_readonly()
            else:
                inventory = opened
        self._apply_targets(self.config, self._targets(self.config), initial=True)
        self._restore(inventory)
        self.economics = self._build_economics(self.config)
        self.catalog = self._load_catalog()
        if self.config.curtailment is not None and self.curtail_controls is None:
            from fleetd.daemon.curtail_controls import CONTROLS_FILE, ControlsStore

            self.curtail_controls = ControlsStore(
                self.state_dir / CONTROLS_FILE, on_event=self.emit, shared=self._use_storage
            )
        await self._attach_controls()  # before the first decision: an HA takeover honours the pair's pins
        await self._start_curtailment()
        self._start_scheduler()
        self._start_mqtt()
        # inbound MQTT demand response: [curtailment.mqtt_dr] with [mqtt] (fleetd.exporters.mqtt_curtail)
        self.mqtt_dr = None
        if self.config.mqtt is not None and self.config.curtailment is not None:
            from fleetd.exporters.mqtt_curtail import start_dr

            self.mqtt_dr = start_dr(self)
        self._task = asyncio.create_task(self._poll_loop(), name="fleetd-poll")
        self.started = True
        self.emit(Event(EventKind.STARTED, f"fleetd started with {len(self.state.miners)} miners"))

    async def stop(self) -> None:
        """Finish (or time out) polls in flight, write what is pending, close everything."""
        if self._ha_delegates():  # stops what runs, then frees the HA lock
            await self.ha.stop()  # type: ignore[union-attr]
            self._stop.set()  # wait() returns, also for a standby that never polled
            return
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
        await self._stop_curtailment()
        await self.poller.close()
        if getattr(self, "mqtt_dr", None) is not None:  # inbound MQTT demand response
            from fleetd.exporters.mqtt_curtail import stop_dr

            await stop_dr(self)
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
        if self.curtail_controls is not None:  # later changes (a standby's) wait in its file
            self.curtail_controls.detach()
        self.emit(Event(EventKind.STOPPED, "fleetd stopped"))
        if self.storage is None:
            self._spool_at_stop()
        await self._finish_replay()
        if self.storage is not None:
            await asyncio.to_thread(self.storage.close)
            self.storage = None

    async def wait(self) -> None:
        """Until the poll loop ends (stop())."""
        await self._stop.wait()

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
                try:
                    self._health_cycle(stats.ended_at)
                except Exception:  # nor must diagnosis
                    log.exception("health diagnosis after the poll cycle failed")
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
        if self.ha is not None and not self.ha.active:
            return self.ha.progressing()
        p = self.config.polling
        return (
            self._task is not None
            and not self._task.done()
            and (now - self.poller.last_progress_at <= 2 * (p.interval_s + p.timeout_s + p.jitter_s))
        )

    def status_line(self) -> str:
        if self.ha is not None and not self.ha.active:
            return self.ha.status_line()
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
        if config.ha != old.ha:
            later.append("ha")
        if self.ha is not None and not self.started:  # standby: the new file applies at takeover
            self.config = config.model_copy(update={"ha": old.ha})
            logging.getLogger("fleetd").setLevel(_LEVELS[config.logging.level])
            log.info(
                "configuration reloaded (standby)"
                + (f"; restart to apply {', '.join(later)}" if later else "")
            )
            return later
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

    @staticmethod
    def _max_gap(config: Config) -> float:
        p = config.polling
        return 2.5 * p.interval_s + p.timeout_s + p.jitter_s

    async def _start_curtailment(self) -> None:
        if self.config.curtailment is None or self.curtailment is not None:
            return
        from fleetd.daemon.curtailment import CurtailmentLoop

        self.curtailment = CurtailmentLoop(self)
        await self.curtailment.start()
        self.on_cycle.append(self.curtailment.poke)

    async def _attach_controls(self) -> None:
        """Share the curtailment controls through storage (once it is open): pending changes written, the
        stored ones loaded. Without it they stay those of the file, written to storage when it opens."""
        store = self.curtail_controls
        if store is None or self.storage is None:
            return
        try:
            await asyncio.to_thread(store.attach, self.storage)
        except Exception as exc:
            why = f"{type(exc).__name__}: {(str(exc).splitlines() or [''])[0]}"
            msg = f"curtailment controls not loaded from storage ({why}); using {store.path}"
            log.error(msg)
            self.emit(Event(EventKind.STORAGE_ERROR, msg, level="error"))

    async def _stop_curtailment(self) -> None:
        """After the last poll cycle, before the drivers close: commands in flight get a short grace."""
        loop, self.curtailment = self.curtailment, None
        if loop is None:
            return
        if loop.poke in self.on_cycle:
            self.on_cycle.remove(loop.poke)
        await loop.stop()

    def _start_mqtt(self) -> None:
        if self.config.mqtt is None:
            return
        from fleetd.exporters.mqtt import MqttPublisher

        try:
            pub = MqttPublisher(
                self.config.mqtt, lambda: self.state, lambda: getattr(self, "curtail_status", None)
            )
            pub.start()
        except Exception as exc:  # e.g. an unreadable TLS CA file: polling goes on without MQTT
            log.error("MQTT publishing disabled: %s: %s", type(exc).__name__, exc)
            return
        self.mqtt = pub
        self.on_cycle.append(pub.on_cycle)

    # --- high availability (fleetd.daemon.ha) --------------------------------------------------------------
    def _ha_delegates(self) -> bool:
        """Whether start()/stop() go through the HA coordinator (which calls them back itself)."""
        if self.ha is None and self.config.ha.enabled:
            from fleetd.daemon.ha import HaCoordinator

            self.ha = HaCoordinator(self, self.config.ha, self.config.storage_url(self.state_dir))
        return self.ha is not None and not self.ha.in_control

    def may_command(self) -> bool:
        """Whether a power command may go out now: no HA pair, or this instance's lock confirmed recently."""
        return self.ha is None or self.ha.may_command()

    async def stop_polling_now(self) -> None:
        """HA step-down: end the poll loop (and what runs after its cycles) at once, polls in flight cut."""
        self.poller.stop()
        if self._task is not None:
            self._task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._task
            self._task = None

    def fresh_state(self) -> None:
        """HA standby: no stale miners shown or exported; a takeover starts again from storage."""
        self.state = FleetState()
        self.rollups = Rollups(
            self._max_gap(self.config), power_of=self.power_estimate, prices_at=self._prices_at
        )
        self.poller = Poller(
            self.state,
            self.config.polling,
            on_event=self.emit,
            on_identity=self._identity_seen,
            on_sample=self.rollups.sample,
            driver_state_dir=self.state_dir / DRIVER_STATE_SUBDIR,
        )
        self.health = None
        self.curtail_status = None  # nor stale curtailment series (the active exports the pair's)

    # --- reading back --------------------------------------------------------------------------------------
    def miner(self, miner_id: str) -> MinerRecord | None:
        return self.state.miners.get(miner_id)
