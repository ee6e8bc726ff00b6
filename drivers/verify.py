"""Verifying a command from the miner's own telemetry: re-read until the change shows, or give up."""

from __future__ import annotations

import asyncio
import contextvars
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from typing import Generic, TypeVar

from fleetd.model import Snapshot
from fleetd.transport.errors import AuthError, DeviceError, NotCompliedError
from fleetd.transport.timeouts import Timeouts

T = TypeVar("T")

# Set by a caller verifying many commands at once (the executor): each re-read holds a slot of it, and
# the waits between re-reads hold none.
READ_GATE: contextvars.ContextVar[asyncio.Semaphore | None] = contextvars.ContextVar(
    "fleetd_verify_read_gate", default=None
)


@dataclass(frozen=True, slots=True)
class Outcome(Generic[T]):
    """How a verification ended: whether `ok` held, the last reading, the last read error, and how long
    it took (seconds since `started`, the command's time, by the event-loop clock)."""

    ok: bool
    last: T | None
    error: DeviceError | None
    elapsed_s: float = 0.0

    def waited(self, limit_s: float) -> str:
        """ "8.1 s (limit 8 s)": what really happened, for messages."""
        return f"{self.elapsed_s:.1f} s (limit {limit_s:g} s)"


def deadline_in(seconds: float) -> float:
    """The event-loop time `seconds` from now (what `until` compares against)."""
    return asyncio.get_running_loop().time() + seconds


async def until(
    read: Callable[[], Awaitable[T]],
    ok: Callable[[T], bool],
    *,
    deadline: float,
    interval: float,
    started: float | None = None,
) -> Outcome[T]:
    """Call `read` every `interval` s until `ok` holds for its result or the loop time passes `deadline`.

    The last read is at the deadline (not an interval before it), so a miner gets all the time allowed.
    A failed read does not end the wait (a miner may drop its API while it switches power), except an
    AuthError, which no amount of waiting fixes. `started` (default: now) is when the command was sent.
    Each read holds a slot of READ_GATE when the caller set one.
    """
    loop = asyncio.get_running_loop()
    t0 = loop.time() if started is None else started
    last: T | None = None
    error: DeviceError | None = None
    gate = READ_GATE.get()
    while True:
        try:
            if gate is None:
                last = await read()
            else:
                async with gate:
                    last = await read()
            if ok(last):
                return Outcome(True, last, None, loop.time() - t0)
        except AuthError:
            raise
        except DeviceError as exc:
            error = exc
        remaining = deadline - loop.time()
        if remaining <= 0:
            return Outcome(False, last, error, loop.time() - t0)
        await asyncio.sleep(min(interval, remaining))


async def confirm(
    read: Callable[[], Awaitable[Snapshot]],
    ok: Callable[[Snapshot], bool],
    *,
    action: str,
    host: str,
    timeouts: Timeouts,
    describe: Callable[[Snapshot], str],
    by: str = "",
    deadline: float | None = None,
) -> Snapshot:
    """Re-read until `ok` holds and return that reading; else NotCompliedError saying what was last seen.

    `describe` renders the last reading for the message ("hashrate 0.00 TH/s, mode sleep"); `by` names
    who acknowledged the command when it was not the miner itself (" by pyasic"). `deadline` (event-loop
    time; default `timeouts.verify_s` from now) is the command's, set when it was sent.
    """
    if deadline is None:
        deadline = deadline_in(timeouts.verify_s)
    end = await until(
        read,
        ok,
        deadline=deadline,
        interval=timeouts.verify_interval_s,
        started=deadline - timeouts.verify_s,
    )
    if end.ok and end.last is not None:
        return end.last
    seen = "no reading"
    if end.last is not None:
        seen = describe(end.last)
    elif end.error is not None:
        seen = f"last error: {end.error.message}"
    raise NotCompliedError(
        f"{action} acknowledged{by} but not in effect after {end.waited(timeouts.verify_s)} ({seen})",
        host=host,
        command=action,
    )


def rate(snap: Snapshot) -> str:
    """ "12.34 TH/s" or "unknown", for verification messages."""
    return "unknown" if snap.hashrate_ths is None else f"{snap.hashrate_ths:.2f} TH/s"


def watts(value: float | None) -> str:
    return "unknown" if value is None else f"{value:g} W"
