"""Polls every miner once per cycle with bounded concurrency; the only writer of FleetState.

A cycle hands the due miners, oldest-due first, to at most `concurrency` worker coroutines that share one
iterator (no task per poll). Every poll is bounded by `timeout_s`, so a dead or slow miner holds one worker
and nothing else. A cycle still polling at its deadline stops taking new miners: the rest stay due and go
first next cycle, and the cycle is reported as overran instead of silently stretching the schedule.
"""

from __future__ import annotations

import asyncio
import contextlib
import hashlib
import logging
import random
import time
from collections import Counter
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path

from fleetd.config import PollingConfig
from fleetd.daemon.events import Event, EventKind
from fleetd.daemon.state import CycleStats, FleetState, Health, Labels, MinerRecord
from fleetd.drivers import Driver, Endpoint, detect, driver_class
from fleetd.model import Identity, Snapshot
from fleetd.transport.errors import DeviceError, UnreachableError

log = logging.getLogger("fleetd.poller")

_KEY_FIELDS = ("model", "firmware", "serial", "mac")  # Identity.key()
OVERRUN_REPEAT_S = 600.0  # while cycles keep overrunning, say so again this often
NAMES_IN_LOG = 10  # miners named in one grouped "went down" / "back up" log line


@dataclass(frozen=True, slots=True)
class MinerTarget:
    """A miner to poll: where it is, how to speak to it, how to label it."""

    host: str
    endpoint: Endpoint
    driver: str = "auto"
    labels: Labels = field(default_factory=Labels)
    nominal_power_w: float | None = None
    source: str = "config"  # "config" or "discovery"
    model: str = ""  # configured model, for catalog lookups

    @property
    def id(self) -> str:
        port = self.endpoint.api_port
        return self.host if port == 4028 else f"{self.host}:{port}"


class _Slot:
    """Per-miner runtime the state record does not hold: endpoint, cached driver, order."""

    __slots__ = ("driver", "order", "record", "target")

    def __init__(self, target: MinerTarget, record: MinerRecord) -> None:
        self.target = target
        self.record = record
        self.driver: Driver | None = None
        # A stable pseudo-random position spreads neighbours (same rack, same switch) across the cycle.
        self.order = int.from_bytes(hashlib.blake2b(record.id.encode(), digest_size=4).digest(), "big")


class Poller:
    """Owns the per-miner driver cache and the poll schedule; fills `state`."""

    def __init__(
        self,
        state: FleetState,
        polling: PollingConfig,
        *,
        on_event: Callable[[Event], None] | None = None,
        on_identity: Callable[[MinerRecord, Identity | None, Identity], None] | None = None,
        on_sample: Callable[[MinerRecord, Snapshot, float], None] | None = None,
        driver_state_dir: Path | None = None,
    ) -> None:
        self.state = state
        self.polling = polling
        # Given to every driver: where it keeps what must outlive the process (e.g. modes to restore on wake).
        self.driver_state_dir = driver_state_dir
        self.on_event = on_event or (lambda e: None)
        self.on_identity = on_identity
        self.on_sample = on_sample
        self._slots: dict[str, _Slot] = {}
        self._ordered: list[_Slot] = []
        self._dirty = False
        self._closing: set[asyncio.Task[None]] = set()
        self._stopping = False
        self._overrun_since: float | None = None
        self._overrun_said_at = 0.0
        self.cycles = 0
        self.last_progress_at = time.time()  # last time a poll completed or a cycle ended
        self.polled_ids: list[str] = []  # ids polled in the last cycle (for storage of latest state)
        # State changes of this cycle, logged as one line each kind at its end (a switch failing takes
        # hundreds of miners down at once); events stay one per miner.
        self._went_down: list[tuple[str, str]] = []
        self._came_up: list[tuple[str, int]] = []
        self._sample_failed = False

    # --- the miner set -------------------------------------------------------------------------------------
    def add(self, target: MinerTarget) -> MinerRecord:
        """Add or update a miner; an existing record keeps its state, a changed endpoint drops the driver."""
        mid = target.id
        slot = self._slots.get(mid)
        if slot is not None:
            rec = slot.record
            if slot.target.endpoint != target.endpoint or slot.target.driver != target.driver:
                self._drop_driver_later(slot)
            slot.target = target
            rec.labels = target.labels
            rec.nominal_power_w = target.nominal_power_w
            rec.model = target.model
            if target.driver != "auto":
                rec.driver = target.driver
            return rec
        rec = self.state.miners.get(mid)
        if rec is None:
            rec = MinerRecord(id=mid, host=target.host)
            self.state.miners[mid] = rec
        rec.labels = target.labels
        rec.nominal_power_w = target.nominal_power_w
        rec.model = target.model
        if target.driver != "auto":
            rec.driver = target.driver
        self._slots[mid] = _Slot(target, rec)
        self._dirty = True
        return rec

    def remove(self, miner_id: str) -> None:
        slot = self._slots.pop(miner_id, None)
        self.state.miners.pop(miner_id, None)
        if slot is not None:
            self._dirty = True
            self._drop_driver_later(slot)

    def targets(self) -> dict[str, MinerTarget]:
        return {mid: s.target for mid, s in self._slots.items()}

    def driver(self, miner_id: str) -> Driver | None:
        """The cached driver of a miner (for the executor), or None before detection."""
        slot = self._slots.get(miner_id)
        return slot.driver if slot else None

    def _drop_driver_later(self, slot: _Slot) -> None:
        drv, slot.driver = slot.driver, None
        if drv is not None:
            try:
                loop = asyncio.get_running_loop()
            except RuntimeError:  # no loop: the driver never connected in this one
                return
            task = loop.create_task(_close(drv))
            self._closing.add(task)
            task.add_done_callback(self._closing.discard)

    # --- cycles --------------------------------------------------------------------------------------------
    def stop(self) -> None:
        """Workers take no new miners; polls in flight finish or time out."""
        self._stopping = True

    def resume(self) -> None:
        """Take miners again after stop() (the daemon restarting)."""
        self._stopping = False

    async def cycle(self, start: float | None = None) -> CycleStats:
        """Poll every due miner once; returns (and stores in state) the cycle's stats."""
        p = self.polling
        start = time.time() if start is None else start
        deadline = start + p.interval_s
        horizon = start + min(0.5, 0.02 * p.interval_s)  # clock slack: "due at the next start" is due now
        if self._dirty:
            self._ordered = sorted(self._slots.values(), key=lambda s: s.order)
            self._dirty = False
        # Oldest-due first; the sort is stable, so equals keep their spread order. Overrun leftovers go first.
        due = sorted((s for s in self._ordered if s.record.next_poll_at <= horizon), key=_due_key)
        counts = [0, 0]  # ok, failed
        polled: list[str] = []
        pending = iter(due)

        async def worker() -> None:
            for slot in pending:
                if self._stopping or time.time() >= deadline:
                    # Put it back in spirit: it stays due and goes first next cycle.
                    break
                ok = await self._poll(slot, start)
                counts[0 if ok else 1] += 1
                polled.append(slot.record.id)

        n = min(p.concurrency, len(due))
        try:
            if n:
                await asyncio.gather(*(worker() for _ in range(n)))
        finally:
            self._log_changes()
        end = time.time()
        skipped = len(due) - len(polled)
        overran = skipped > 0 or end - start > p.interval_s
        stats = CycleStats(start, end, len(polled), counts[0], counts[1], overran, skipped)
        self.state.last_cycle = stats
        self.polled_ids = polled
        self.cycles += 1
        self.last_progress_at = end
        if overran and not self._stopping:
            self._report_overrun(stats, skipped)
        elif self._overrun_since is not None and not overran:
            log.info("poll cycles fit their interval again (%d miners in %.1f s)", len(polled), end - start)
            self._overrun_since = None
        return stats

    def _report_overrun(self, stats: CycleStats, skipped: int) -> None:
        now = stats.ended_at
        took = stats.ended_at - stats.started_at
        msg = (
            f"poll cycle overran its {self.polling.interval_s:g} s interval: {stats.polled} polled in "
            f"{took:.1f} s, {skipped} left for the next cycle; raise polling.concurrency or interval_s"
        )
        first = self._overrun_since is None
        if first:
            self._overrun_since = now
        if first or now - self._overrun_said_at >= OVERRUN_REPEAT_S:
            self._overrun_said_at = now
            log.warning(msg)
            self.on_event(Event(EventKind.CYCLE_OVERRAN, msg, level="warning"))

    # --- one miner -----------------------------------------------------------------------------------------
    async def _poll(self, slot: _Slot, cycle_start: float) -> bool:
        rec = slot.record
        try:
            async with asyncio.timeout(self.polling.timeout_s):
                drv = slot.driver or await self._connect(slot)
                reading = await drv.read()
        except (DeviceError, TimeoutError, OSError) as exc:
            self._failed(slot, exc)
            return False
        except Exception as exc:  # a driver bug must not stop the poller
            log.debug("driver error polling %s", rec.id, exc_info=True)
            self._failed(slot, exc)
            return False
        now = time.time()
        ident = reading.identity
        old = rec.identity
        if old is None or old.key() != ident.key():
            self._identity_seen(slot, old, ident)
        rec.identity = ident
        rec.snapshot = reading.snapshot
        if rec.health is not Health.UP:
            if rec.health is Health.DOWN:
                msg = f"miner {rec.id} is back up after {rec.failures} failed polls"
                self._came_up.append((rec.id, rec.failures))
                self.on_event(Event(EventKind.MINER_UP, msg, rec.id))
            rec.health = Health.UP
        rec.failures = 0
        rec.last_error = ""
        rec.last_ok_at = now
        rec.next_poll_at = cycle_start + self.polling.interval_s
        self.last_progress_at = now
        if self.on_sample is not None:
            try:
                self.on_sample(rec, reading.snapshot, now)
            except Exception:  # a rollup bug must not fail the poll nor the cycle
                if self._sample_failed:
                    log.debug("sample of %s not counted", rec.id, exc_info=True)
                else:
                    self._sample_failed = True
                    log.exception("counting a sample of %s failed (said once; later ones at debug)", rec.id)
        return True

    async def _connect(self, slot: _Slot) -> Driver:
        target = slot.target
        if target.driver == "auto":
            found = await detect(target.endpoint)
            if found is None:
                raise UnreachableError("no known miner API answers", host=target.host, command="detect")
            cls, _ident = found
            before = slot.record.driver
            if before and before != cls.name:  # first detections are routine; a change is news
                msg = f"miner {slot.record.id}: now speaks {cls.name} (was {before})"
                log.info(msg)
                self.on_event(Event(EventKind.DRIVER_DETECTED, msg, slot.record.id))
            else:
                log.debug("miner %s: detected %s driver", slot.record.id, cls.name)
        else:
            cls = driver_class(target.driver)
        drv = slot.driver = cls(target.endpoint)
        drv.state_dir = self.driver_state_dir
        slot.record.driver = cls.name
        return drv

    def _identity_seen(self, slot: _Slot, old: Identity | None, new: Identity) -> None:
        rec = slot.record
        if old is not None:
            changes = [
                f"{name} {a!r} -> {b!r}"
                for name, a, b in zip(_KEY_FIELDS, old.key(), new.key(), strict=True)
                if a != b
            ]
            msg = f"miner {rec.id} identity changed: {', '.join(changes)}"
            log.warning(msg)
            self.on_event(Event(EventKind.IDENTITY_CHANGED, msg, rec.id, "warning"))
            if slot.target.driver == "auto":
                self._drop_driver_later(slot)  # new firmware or machine: detect its driver again next poll
        if self.on_identity is not None:
            self.on_identity(rec, old, new)

    def _failed(self, slot: _Slot, exc: BaseException) -> None:
        rec = slot.record
        p = self.polling
        rec.failures += 1
        rec.last_error = _reason(exc, rec.host)
        now = time.time()
        self.last_progress_at = now
        if rec.failures >= p.down_after:
            if rec.health is not Health.DOWN:
                rec.health = Health.DOWN
                msg = f"miner {rec.id} is down: {rec.last_error} (polling it less often until it answers)"
                self._went_down.append((rec.id, rec.last_error))
                self.on_event(Event(EventKind.MINER_DOWN, msg, rec.id, "warning"))
            else:
                log.debug("miner %s still down: %s", rec.id, rec.last_error)
            backoff = min(p.interval_s * 2 ** (rec.failures - p.down_after + 1), p.max_backoff_s)
            rec.next_poll_at = now + max(p.interval_s, backoff) * random.uniform(0.9, 1.1)
        else:
            log.debug("poll of %s failed: %s", rec.id, rec.last_error)
            rec.next_poll_at = 0.0  # due again next cycle
        if rec.failures % p.redetect_after == 0 and slot.driver is not None:
            self._drop_driver_later(slot)  # a stale session or another machine: connect afresh

    def _log_changes(self) -> None:
        down, self._went_down = self._went_down, []
        up, self._came_up = self._came_up, []
        if len(down) == 1:
            ((mid, reason),) = down
            log.warning("miner %s is down: %s (polling it less often until it answers)", mid, reason)
        elif down:
            reason, count = Counter(r for _, r in down).most_common(1)[0]
            log.warning(
                "%d miners went down: %s (polling them less often until they answer; %s: %d of them)",
                len(down),
                _names([mid for mid, _ in down]),
                reason,
                count,
            )
        if len(up) == 1:
            ((mid, failures),) = up
            log.info("miner %s is back up after %d failed polls", mid, failures)
        elif up:
            log.info("%d miners are back up: %s", len(up), _names([mid for mid, _ in up]))

    async def close(self) -> None:
        drivers = [s.driver for s in self._slots.values() if s.driver is not None]
        for s in self._slots.values():
            s.driver = None
        await asyncio.gather(*(_close(d) for d in drivers), *self._closing)


def _names(ids: list[str]) -> str:
    """'a, b, c' or 'a, b, ..., j (+K more)'."""
    more = len(ids) - NAMES_IN_LOG
    return ", ".join(ids[:NAMES_IN_LOG]) + (f" (+{more} more)" if more > 0 else "")


def _due_key(slot: _Slot) -> float:
    return slot.record.next_poll_at


def _reason(exc: BaseException, host: str) -> str:
    if isinstance(exc, TimeoutError):
        return "no answer within the poll timeout"
    text = str(exc) or type(exc).__name__
    if isinstance(exc, DeviceError):  # "host: why" or "host (command): why": the host is said elsewhere
        return text.removeprefix(f"{host}: ").removeprefix(f"{host} ")
    if not isinstance(exc, OSError):
        return f"driver error: {type(exc).__name__}: {text}"
    return text


async def _close(drv: Driver) -> None:
    with contextlib.suppress(Exception):
        await drv.close()
