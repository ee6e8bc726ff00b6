"""Fixtures for the emulator tests: in-process fleets on this area's loopback block."""

from __future__ import annotations

from collections.abc import AsyncIterator, Awaitable, Callable
from typing import Any

import pytest

from fleetd.sim.fleet import Fleet, Group
from tests.conftest import loopback_host, web_port
from tests.sim.helpers import BLOCK

Start = Callable[..., Awaitable[tuple[Fleet, str]]]


@pytest.fixture
async def start() -> AsyncIterator[Start]:
    """start(model, **group_options) -> (fleet, host): one started miner on a fresh address."""
    fleets: list[Fleet] = []

    async def _start(model: str = "Antminer S19 Pro", count: int = 1, **options: Any) -> tuple[Fleet, str]:
        host = loopback_host(BLOCK)
        if count > 1:  # keep the block's counter ahead of the addresses this group uses
            for _ in range(count - 1):
                loopback_host(BLOCK)
        options.setdefault("ports", {"web": web_port()})
        options.setdefault("jitter", 0.0)
        options.setdefault("ramp_s", 0.3)
        fleet = Fleet([Group(model, count, host, **options)])
        await fleet.__aenter__()
        fleets.append(fleet)
        return fleet, host

    yield _start
    for fleet in fleets:
        await fleet.__aexit__(None, None, None)
