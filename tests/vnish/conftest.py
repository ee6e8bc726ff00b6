"""Emulated VNish miners on this area's loopback block (127.51.x.y): web API on 8080."""

from __future__ import annotations

import random
from collections.abc import AsyncIterator, Awaitable, Callable
from typing import Any

import pytest
from fleetd.drivers.base import Endpoint, Timeouts

from fleetd.sim.base import EmulatedMiner, Faults, MinerState
from fleetd.sim.models import lookup
from tests.conftest import loopback_host

BLOCK = 51
WEB_PORT = 8080  # the real port is 80, which needs root
FAST = Timeouts(connect_s=1.0, read_s=2.0, verify_s=2.0, verify_interval_s=0.1)

Start = Callable[..., Awaitable[tuple[Any, Endpoint]]]


@pytest.fixture
async def start() -> AsyncIterator[Start]:
    """start(model, faults=..., timeouts=..., **emulator_options) -> (miner, endpoint)."""
    miners: list[EmulatedMiner] = []

    async def _start(
        model: str,
        *,
        faults: Faults | None = None,
        timeouts: Timeouts = FAST,
        block: int = BLOCK,
        **options: Any,
    ) -> tuple[Any, Endpoint]:
        host = loopback_host(block)
        sim = lookup(model)
        cls: Any = sim.emulator_class()
        state = MinerState(
            spec=sim.spec, faults=faults or Faults(), ramp_s=0.2, jitter=0.0, rng=random.Random(host)
        )
        ports = {name: (WEB_PORT if name == "web" else port) for name, port in cls.default_ports.items()}
        miner = cls(state, host, ports, **options)
        await miner.start()
        miners.append(miner)
        return miner, Endpoint(host, web_port=WEB_PORT, timeouts=timeouts)

    yield _start
    for miner in miners:
        await miner.stop()
