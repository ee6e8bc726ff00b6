"""An in-process emulated fleet on a background event loop, so synchronous CLI code can talk to it."""

from __future__ import annotations

import asyncio
import itertools
import os
import threading
from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any

from fleetd.sim.fleet import Fleet, Group, SimMiner

BLOCK = 14  # this test area's loopback block: 127.14.x.y
# FLEETD_TEST_HOST_BASE shifts the subnets as it shifts tests.conftest's hosts, so that test runs of
# several worktrees at once start far apart (254 subnets are shared, so they can still meet).
_subnets = itertools.count(int(os.environ.get("FLEETD_TEST_HOST_BASE", "0") or 0) >> 8)


def subnet() -> str:
    """A fresh 127.14.N.0/24 prefix ("127.14.N.") for one test's miners, N in 1..254."""
    return f"127.{BLOCK}.{next(_subnets) % 254 + 1}."


class RunningFleet:
    def __init__(self, fleet: Fleet, miners: list[SimMiner], loop: asyncio.AbstractEventLoop) -> None:
        self.fleet = fleet
        self.miners = miners
        self.loop = loop

    def state(self, host: str) -> Any:
        return self.fleet.state(host)

    def call(self, fn: Any, *args: Any) -> Any:
        """Run `fn(*args)` on the fleet's loop thread (emulator state is not thread-safe)."""

        async def wrapper() -> Any:
            return fn(*args)

        return asyncio.run_coroutine_threadsafe(wrapper(), self.loop).result(5)


@contextmanager
def running_fleet(*groups: Group) -> Iterator[RunningFleet]:
    loop = asyncio.new_event_loop()
    thread = threading.Thread(target=loop.run_forever, name="sim-fleet", daemon=True)
    thread.start()
    fleet = Fleet(groups)
    try:
        miners = asyncio.run_coroutine_threadsafe(fleet.__aenter__(), loop).result(30)
        try:
            yield RunningFleet(fleet, miners, loop)
        finally:
            asyncio.run_coroutine_threadsafe(fleet.__aexit__(None, None, None), loop).result(30)
    finally:
        loop.call_soon_threadsafe(loop.stop)
        thread.join(10)
        loop.close()
