"""Hardening tests: emulated miners of every driver on this area's loopback block (127.170.x.y)."""

from __future__ import annotations

import asyncio
import json
import math
from collections.abc import Iterator, Mapping
from typing import Any

import pytest
from fleetd.drivers import driver_class
from fleetd.drivers.base import Endpoint, Timeouts

from fleetd.sim.fleet import Fleet, Group
from tests.conftest import loopback_host, web_port

BLOCK = 170
FAST = Timeouts(connect_s=1.0, read_s=3.0)
# Driver name -> the emulated model it reads (the generic cgminer driver reads an Antminer's API).
MODELS: Mapping[str, str] = {
    "antminer": "Antminer S19 Pro",
    "whatsminer": "Whatsminer M50S_VH50",  # btminer API v2
    "whatsminer-v3": "Whatsminer M60S_VK40",
    "luxos": "Antminer S19k Pro",
    "avalon": "AvalonMiner 15-194",
    "braiins": "Antminer S21 Pro",
    "vnish": "Antminer S19",
    "cgminer": "Antminer S19 Pro",
    "pyasic": "Antminer S19 Pro",
}


def driver_of(name: str) -> str:
    return name.removesuffix("-v3")


def endpoint(host: str) -> Endpoint:
    return Endpoint(host, web_port=web_port(), timeouts=FAST)


async def _collect() -> dict[str, dict[str, Any]]:
    hosts = {name: loopback_host(BLOCK) for name in MODELS}
    web = {"web": web_port()}
    groups = [Group(model, 1, hosts[name], web, ramp_s=0, jitter=0) for name, model in MODELS.items()]
    out: dict[str, dict[str, Any]] = {}
    async with Fleet(groups):
        for name in MODELS:
            drv = driver_class(driver_of(name))(endpoint(hosts[name]))
            try:
                out[name] = await drv.raw_responses()
            finally:
                await drv.close()
    return out


@pytest.fixture(scope="session")
def raw_replies() -> Iterator[dict[str, dict[str, Any]]]:
    """Each driver's decoded replies from a healthy emulated miner, keyed like Driver.raw_responses."""
    yield json.loads(json.dumps(asyncio.run(_collect()), default=str))


def numbers(value: Any, path: str = "") -> Iterator[tuple[str, Any]]:
    """(path, number) for every number in a JSON document."""
    if isinstance(value, bool):
        return
    if isinstance(value, (int, float)):
        yield path, value
    elif isinstance(value, Mapping):
        for k, v in value.items():
            yield from numbers(v, f"{path}.{k}")
    elif isinstance(value, (list, tuple)):
        for i, v in enumerate(value):
            yield from numbers(v, f"{path}[{i}]")


def impossible_numbers(value: Any) -> list[str]:
    """The numbers of a JSON document that no physical miner figure can be: non-finite or beyond 1e15."""
    return [
        f"{p}={v!r}"
        for p, v in numbers(value)
        if (isinstance(v, float) and not math.isfinite(v)) or abs(v) > 1e15
    ]
