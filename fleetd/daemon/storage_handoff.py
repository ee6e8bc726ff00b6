"""Storage hand-off: opening (and retrying) storage, inventory and state writes, the spool of the rest."""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections import deque
from typing import TYPE_CHECKING, Any

from fleetd.config import Config
from fleetd.daemon.events import Event, EventKind
from fleetd.daemon.poller import MinerTarget, Poller
from fleetd.daemon.rollups import Rollups
from fleetd.daemon.spool import SPOOL_FILE, Spool
from fleetd.daemon.state import FleetState, MinerRecord

if TYPE_CHECKING:
    from pathlib import Path

    from fleetd.storage.store import InventoryRow, Storage

log = logging.getLogger("fleetd.daemon")

STORAGE_RETRY_S = 30.0  # a database unavailable at start is tried again this often
UNSTORED_MAX = 10_000  # events, identity changes and rollups spooled while storage is unavailable
REPLAY_FLUSH_S = 60.0  # how long replaying the spool may wait for the database to commit it
REPLAY_STEP_S = 2.0  # ... checking this often whether the daemon is stopping


class StorageHandoff:
    """Daemon part: everything the daemon writes to storage, and what waits while storage is away."""

    config: Config
    state_dir: Path
    state: FleetState
    poller: Poller
    rollups: Rollups
    storage: Storage | None
    events: deque[Event]
    _use_storage: bool
    _stop: asyncio.Event
    _spool_: Spool | None = None
    started: bool

    @property
    def _spool(self) -> Spool:
        """Writes waiting for storage (events, identity changes, rollups), in the state directory."""
        if self._spool_ is None:
            self._spool_ = Spool(self.state_dir / SPOOL_FILE, UNSTORED_MAX)
        return self._spool_

    _replay_task: asyncio.Task[None] | None = None

    def _writing(self) -> Storage | None:
        """Storage while its writes go through; else None, and what would be written goes to the spool
        (it survives a restart there, where storage's own queue would not)."""
        store = self.storage
        return store if store is not None and store.failing_since is None else None

    def _replay_when_writing(self) -> None:
        """Once storage writes again after failing, replay what was spooled meanwhile (in the background)."""
        if (
            self.started
            and self._writing() is not None
            and len(self._spool)
            and (self._replay_task is None or self._replay_task.done())
        ):
            assert self.storage is not None
            self._replay_task = asyncio.create_task(self._replay_spool(self.storage), name="fleetd-spool")

    async def _finish_replay(self, timeout_s: float = 10.0) -> None:
        """At stop: let a replay in progress finish (or give up on it: replayed again at the next start)."""
        task, self._replay_task = self._replay_task, None
        if task is None or task.done():
            return
        try:
            await asyncio.wait_for(task, timeout_s)
        except (TimeoutError, asyncio.CancelledError):
            log.warning("storage: spool replay unfinished at stop; it is replayed at the next start")

    @property
    def unstored_dropped(self) -> int:
        """Writes lost because the spool was full."""
        return self._spool.dropped

    def storage_status(self) -> tuple[bool, int, int, int] | None:
        """(up, queued writes, dropped writes, items spooled) for metrics; None without storage.

        Up means writes are going through: open and not failing. Dropped counts every write lost, to a
        full queue or spool, to the database refusing the rows, or at shutdown.
        """
        if not self._use_storage:
            return None
        spooled = len(self._spool)
        if self.storage is None:
            return (False, 0, self._spool.dropped, spooled)
        up = self.storage.failing_since is None
        return (up, self.storage.queue_depth, self.storage.dropped + self._spool.dropped, spooled)

    async def _open_storage(self, *, first: bool) -> list[InventoryRow] | None:
        """Connect, migrate, replay the spool; the stored inventory, or None (reported) when unavailable."""
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
            # Before the inventory is read, so that it already holds the identities spooled meanwhile.
            await self._replay_spool(store)
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
        await self._replay_spool(store)  # what was spooled during the first replay
        return inventory

    def _inventory_readonly(self) -> list[InventoryRow]:
        """The inventory of a database that can be read but not written (SQLite in a read-only or full
        state directory), so that known miners are not announced again; [] when it cannot be read."""
        from fleetd.storage.store import load_inventory_readonly

        try:
            inventory = load_inventory_readonly(self.config.storage_url(self.state_dir))
        except Exception as exc:
            log.debug("inventory not readable either: %s", exc)
            return []
        if inventory:
            log.warning(
                "storage not writable: %d miners known from it; writes spooled meanwhile", len(inventory)
            )
        return inventory

    async def _replay_spool(self, store: Storage) -> None:
        """Write what the spool holds through `store` (new items go to a fresh spool meanwhile)."""
        spool = self._spool
        items = spool.take()
        if not items and not spool.dropped:
            return
        self._write_unstored(store, items)
        waited = 0.0
        while not await asyncio.to_thread(store.flush, REPLAY_STEP_S):
            waited += REPLAY_STEP_S
            if waited >= REPLAY_FLUSH_S or self._stop.is_set():  # kept on disk: replayed at the next start
                log.error("storage: the spool was not committed in %g s; it is replayed again", waited)
                return
        spool.done()
        log.warning("storage: wrote %d items spooled while it was unavailable", len(items))

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
            await self._attach_controls()  # type: ignore[attr-defined]  # Daemon
            self._restore(inventory)
            stored = {row.id: row.identity for row in inventory}
            targets = self.poller.targets()
            for mid, rec in self.state.miners.items():
                if mid in targets:
                    self._store_miner(rec, targets[mid])
                known = stored.get(mid)
                if rec.identity is not None and (known is None or known.key() != rec.identity.key()):
                    self._identity_seen(rec, known, rec.identity)
            return

    def _write_unstored(self, store: Storage, items: list[tuple[Any, ...]]) -> None:
        """Enqueue what happened while storage was away, and say how much of it was lost."""
        for item in items:
            if item[0] == "event":
                store.add_event(item[1])
            elif item[0] == "identity":
                _, mid, host, ident, driver, at = item
                store.add_identity(mid, host, ident, driver, at=at)
            elif item[0] == "rollup":
                store.add_rollups([item[1]])
        spool = self._spool
        dropped, spool.dropped = spool.dropped, 0
        if dropped:
            msg = (
                f"{dropped} events, identity changes and rollups were lost while storage was unavailable "
                f"(at most {UNSTORED_MAX} are spooled)"
            )
            log.error(msg)
            store.dropped += dropped  # stays counted in the metric
            store.add_event(Event(EventKind.STORAGE_ERROR, msg, level="error"))
            self.events.append(Event(EventKind.STORAGE_ERROR, msg, level="error"))

    def _store_later(self, item: tuple[Any, ...]) -> None:
        self._spool.append(item)

    def _spool_at_stop(self) -> None:
        """Say what waits for storage at stop: in the spool file for the next start, or lost from memory."""
        spool = self._spool
        held = len(spool) - spool.on_disk
        if spool.on_disk:
            log.warning("%d writes spooled in %s for the next start", spool.on_disk, spool.path)
        if held:
            log.error("%d events and identity changes not stored: storage and spool unavailable", held)

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

    def _write_rollups(self) -> None:
        self._write_health_hours()  # type: ignore[attr-defined]  # HealthHooks
        rows = self.rollups.drain()
        store = self._writing()
        if store is None:
            if self._use_storage:
                for row in rows:
                    self._store_later(("rollup", row))
            return
        if rows:
            store.add_rollups(rows)

    def _write_latest(self, ids: list[str]) -> None:
        self._replay_when_writing()
        if self.storage is None or not ids:
            return
        miners = self.state.miners
        rows: list[tuple[Any, ...]] = []
        for mid in ids:
            rec = miners.get(mid)
            if rec is not None:
                rows.append((mid, rec.health, rec.snapshot, rec.failures, rec.last_error, rec.last_ok_at))
        self.storage.set_latest(rows)
