"""Emulated Whatsminers on this area's loopback block (127.18.x.y), on their real ports."""

from __future__ import annotations

import random
from collections.abc import AsyncIterator, Awaitable, Callable
from typing import Any

import pytest
from fleetd.drivers.base import Credentials, Endpoint, Timeouts

from fleetd.sim.base import Faults, MinerState
from fleetd.sim.models import lookup
from fleetd.sim.whatsminer import WhatsminerMiner
from fleetd.transport.btminer import forget_tokens
from tests.conftest import loopback_host

BLOCK = 18
FAST = Timeouts(connect_s=1.0, read_s=2.0, verify_s=3.0, verify_interval_s=0.1)
M50S = "Whatsminer M50S_VH50"
M60S = "Whatsminer M60S_VK40"

Start = Callable[..., Awaitable[tuple[WhatsminerMiner, Endpoint]]]


@pytest.fixture
async def start() -> AsyncIterator[Start]:
    """start(model, ports=..., faults=..., password=..., **emulator_options) -> (miner, endpoint)."""
    miners: list[WhatsminerMiner] = []

    async def _start(
        model: str = M50S,
        *,
        ports: dict[str, int] | None = None,
        faults: Faults | None = None,
        password: str | None = None,
        username: str | None = None,
        timeouts: Timeouts = FAST,
        **options: Any,
    ) -> tuple[WhatsminerMiner, Endpoint]:
        host = loopback_host(BLOCK)
        sim = lookup(model)
        cls: Any = sim.emulator_class()
        state = MinerState(
            spec=sim.spec, faults=faults or Faults(), ramp_s=0.2, jitter=0.0, rng=random.Random(host)
        )
        miner = cls(state, host, dict(ports if ports is not None else cls.default_ports), **options)
        await miner.start()
        miners.append(miner)
        endpoint = Endpoint(host, credentials=Credentials.any_vendor(username, password), timeouts=timeouts)
        return miner, endpoint

    yield _start
    for m in miners:
        await m.stop()
        forget_tokens(m.host)
