"""Verifying a command from the miner's own telemetry: re-read until the change shows, or give up."""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from typing import Generic, TypeVar

from fleetd.transport.errors import AuthError, DeviceError

T = TypeVar("T")


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
    """
    loop = asyncio.get_running_loop()
    t0 = loop.time() if started is None else started
    last: T | None = None
    error: DeviceError | None = None
    while True:
        try:
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
