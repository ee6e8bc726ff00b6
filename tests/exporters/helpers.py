"""Helpers for exporter tests: loopback block 127.25.x.y, a daemon with its API against emulated miners."""

from __future__ import annotations

import asyncio
import collections
import contextlib
import itertools
import socket
import time
from collections.abc import AsyncIterator, Callable
from pathlib import Path
from typing import Any

from fleetd.api import ApiServer
from fleetd.config import parse_config
from fleetd.daemon.core import Daemon
from fleetd.sim.fleet import Fleet, Group
from tests.conftest import web_port

BLOCK = 25
_subnets: collections.defaultdict[int, itertools.count[int]] = collections.defaultdict(
    lambda: itertools.count(1)
)
ECONOMICS = {
    "currency": "USD",
    "hashprice": [{"kind": "static", "per_ph_day": 50.0}],
    "tariff": {"kind": "flat", "price_per_kwh": 0.05},
}


def subnet(block: int = BLOCK) -> str:
    """A fresh 127.<block>.N. prefix (block 25 unless told); addresses .1 and up are free for this test."""
    return f"127.{block}.{next(_subnets[block])}."


def clear_retained(*filters: str, broker: tuple[str, int] = ("127.0.0.1", 1883)) -> None:
    """Remove the retained messages a test left on the broker under these topic filters."""
    import paho.mqtt.client as paho

    c = paho.Client(paho.CallbackAPIVersion.VERSION2)
    c.connect(*broker)
    c.loop_start()
    seen: list[str] = []
    c.on_message = lambda _c, _u, m: seen.append(m.topic)
    for f in filters:
        c.subscribe(f)
    time.sleep(0.3)
    for topic in set(seen):
        c.publish(topic, b"", retain=True).wait_for_publish(2)
    c.loop_stop()
    c.disconnect()


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


async def until(cond: Callable[[], bool], within: float = 10.0, what: str = "condition") -> None:
    deadline = time.monotonic() + within
    while not cond():
        if time.monotonic() > deadline:
            raise AssertionError(f"timed out waiting for {what}")
        await asyncio.sleep(0.05)


def daemon_config(hosts: list[str], **sections: Any) -> Any:
    data: dict[str, Any] = {
        "polling": {"interval_s": 0.5, "jitter_s": 0.0, "timeout_s": 1.0, "connect_timeout_s": 0.5},
        "miners": [{"host": h, "web_port": web_port(), "site": "hall-a", "rack": "r1"} for h in hosts],
        "economics": ECONOMICS,
    } | sections
    return parse_config(data)


@contextlib.asynccontextmanager
async def running(
    count: int, tmp_path: Path, *, api: bool = True, block: int = BLOCK, **sections: Any
) -> AsyncIterator[Any]:
    """`count` emulated S19 Pros, a Daemon polling them (SQLite in tmp_path) and its API on a free port."""
    base = subnet(block) + "1"
    groups = [Group("Antminer S19 Pro", count, base, {"web": web_port()}, ramp_s=0, jitter=0)]
    async with Fleet(groups) as miners:
        d = Daemon(daemon_config([m.host for m in miners], **sections), state_dir=tmp_path)
        await d.start()
        assert d.economics is not None
        await d.economics.refresh_all()
        server = ApiServer.for_daemon(d, listen="127.0.0.1:0") if api else None
        try:
            if server is not None:
                await server.start()
            yield d, server, miners
        finally:
            if server is not None:
                await server.stop()
            await d.stop()
