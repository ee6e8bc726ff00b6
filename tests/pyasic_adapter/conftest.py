"""Emulated miners for the pyasic adapter on this area's loopback blocks (127.140-149.x.y), real ports."""

from __future__ import annotations

import random
from collections.abc import AsyncIterator, Awaitable, Callable
from typing import Any

import pytest
from fleetd.drivers import use_fallbacks
from fleetd.drivers.base import Endpoint, Timeouts

from fleetd.sim.base import EmulatedMiner, Faults, MinerState
from fleetd.sim.models import lookup
from fleetd.transport.btminer import forget_tokens
from tests.conftest import loopback_host

BLOCK = 140
FAST = Timeouts(connect_s=1.0, read_s=3.0, verify_s=3.0, verify_interval_s=0.1)
S19PRO = "Antminer S19 Pro"
M50S = "Whatsminer M50S_VH50"
M60S = "Whatsminer M60S_VK40"

Start = Callable[..., Awaitable[tuple[Any, Endpoint]]]


@pytest.fixture(autouse=True)
def _no_fallbacks() -> Any:
    """Detection's fallback switch is process-wide: every test starts and ends with it off."""
    use_fallbacks(frozenset())
    yield
    use_fallbacks(frozenset())


@pytest.fixture
async def start() -> AsyncIterator[Start]:
    """start(model, faults=..., timeouts=...) -> (emulated miner, endpoint), on the real ports."""
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
        try:
            miner = cls(state, host, dict(cls.default_ports), **options)
            await miner.start()
        except PermissionError as exc:  # pyasic speaks only to the real ports (80 needs root)
            pytest.skip(f"cannot bind the real ports of {model} on {host}: {exc}")
        miners.append(miner)
        return miner, Endpoint(host, timeouts=timeouts)

    yield _start
    for miner in miners:
        await miner.stop()
        forget_tokens(miner.host)
