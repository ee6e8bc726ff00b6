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
    """How a verification ended: whether `ok` held, the last reading, the last read error."""

    ok: bool
    last: T | None
    error: DeviceError | None


def deadline_in(seconds: float) -> float:
    """The event-loop time `seconds` from now (what `until` compares against)."""
    return asyncio.get_running_loop().time() + seconds


async def until(
    read: Callable[[], Awaitable[T]], ok: Callable[[T], bool], *, deadline: float, interval: float
) -> Outcome[T]:
    """Call `read` every `interval` s until `ok` holds for its result or the loop time passes `deadline`.

    A failed read does not end the wait (a miner may drop its API while it switches power), except an
    AuthError, which no amount of waiting fixes.
    """
    loop = asyncio.get_running_loop()
    last: T | None = None
    error: DeviceError | None = None
    while True:
        try:
            last = await read()
            if ok(last):
                return Outcome(True, last, None)
        except AuthError:
            raise
        except DeviceError as exc:
            error = exc
        if loop.time() + interval > deadline:
            return Outcome(False, last, error)
        await asyncio.sleep(interval)
