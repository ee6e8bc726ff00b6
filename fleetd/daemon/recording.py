"""Event and identity-change recording: kept in memory, sent to storage, or held until storage is back."""

from __future__ import annotations

import asyncio
import contextlib
import time
from collections import deque
from typing import TYPE_CHECKING

from fleetd.daemon.events import Event, EventKind
from fleetd.daemon.state import MinerRecord
from fleetd.model import Identity

if TYPE_CHECKING:
    from fleetd.storage.store import Storage


class Recording:
    """Daemon part: what happened (events) and which hardware answered (identity changes)."""

    events: deque[Event]
    storage: Storage | None
    _use_storage: bool
    _task: asyncio.Task[None] | None

    def emit(self, event: Event) -> None:
        self.events.append(event)
        store = self._writing()
        if store is not None:
            store.add_event(event)
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

    def _identity_seen(self, rec: MinerRecord, old: Identity | None, new: Identity) -> None:
        store = self._writing()
        if store is not None:
            store.add_identity(rec.id, rec.host, new, rec.driver)
        elif self._use_storage:
            self._store_later(("identity", rec.id, rec.host, new, rec.driver, time.time()))
