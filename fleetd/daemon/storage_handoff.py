"""Storage hand-off: opening (and retrying) storage, inventory and state writes, the unstored buffer."""

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
from fleetd.daemon.state import FleetState, MinerRecord
from fleetd.model import Identity

if TYPE_CHECKING:
    from pathlib import Path

    from fleetd.storage.store import InventoryRow, Storage

log = logging.getLogger("fleetd.daemon")

STORAGE_RETRY_S = 30.0  # a database unavailable at start is tried again this often
UNSTORED_MAX = 10_000  # events and identity changes kept in memory while storage is unavailable


class StorageHandoff:
    """Daemon part: everything the daemon writes to storage, and what waits while storage is away."""

    config: Config
    state_dir: Path
    state: FleetState
    poller: Poller
    rollups: Rollups
    storage: Storage | None
    unstored_dropped: int
    _use_storage: bool
    _stop: asyncio.Event
    # ("event", Event) and ("identity", id, host, Identity, driver, at) waiting for storage to come back
    _unstored: deque[tuple[Any, ...]]

    def storage_status(self) -> tuple[bool, int, int, int] | None:
        """(up, queued writes, dropped writes, items held in memory) for metrics; None without storage."""
        if not self._use_storage:
            return None
        if self.storage is None:
            return (False, 0, 0, len(self._unstored))
        return (True, self.storage.queue_depth, self.storage.dropped, 0)

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
