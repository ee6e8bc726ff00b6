"""Emulated avalon miners on this area's loopback block (127.39.x.y), on their real ports."""

from __future__ import annotations

import random
from collections.abc import AsyncIterator, Awaitable, Callable
from typing import Any

import pytest
from fleetd.drivers.base import Endpoint, Timeouts

from fleetd.sim.base import EmulatedMiner, Faults, MinerState
from fleetd.sim.models import lookup
from tests.conftest import loopback_host

BLOCK = 39
FAST = Timeouts(connect_s=1.0, read_s=2.0, verify_s=4.0, verify_interval_s=0.1)

Start = Callable[..., Awaitable[tuple[Any, Endpoint]]]


@pytest.fixture
async def start() -> AsyncIterator[Start]:
    """start(model, faults=..., timeouts=..., **emulator_options) -> (miner, endpoint)."""
    miners: list[EmulatedMiner] = []

    async def _start(
        model: str, *, faults: Faults | None = None, timeouts: Timeouts = FAST, **options: Any
    ) -> tuple[Any, Endpoint]:
        host = loopback_host(BLOCK)
        sim = lookup(model)
        cls: Any = sim.emulator_class()
        state = MinerState(
            spec=sim.spec, faults=faults or Faults(), ramp_s=0.2, jitter=0.0, rng=random.Random(host)
        )
        miner = cls(state, host, dict(cls.default_ports), **options)
        await miner.start()
        miners.append(miner)
        return miner, Endpoint(host, timeouts=timeouts)

    yield _start
    for miner in miners:
        await miner.stop()
