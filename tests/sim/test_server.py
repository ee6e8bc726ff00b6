"""The connection handling both emulators share (fleetd.sim.server): tracking for stop(), late requests."""

from __future__ import annotations

import asyncio
import json

import pytest

from fleetd.sim.fleet import Fleet, Group
from tests.conftest import loopback_host, web_port

BLOCK = 23  # this task's loopback block: 127.23.x.y
MODELS = ("Antminer S19 Pro", "Whatsminer M50S")


def _fleet(model: str) -> tuple[Fleet, str]:
    host = loopback_host(BLOCK)
    ports = {"api": 4028, "web": web_port()} if model.startswith("Antminer") else {"api": 4028}
    return Fleet([Group(model, 1, host, ports=ports, jitter=0.0, ramp_s=0.0)]), host


@pytest.mark.parametrize("model", MODELS)
async def test_stop_cuts_open_connections(model: str) -> None:
    fleet, host = _fleet(model)
    await fleet.__aenter__()
    try:
        miner = fleet.emulators[host]
        reader, writer = await asyncio.open_connection(host, 4028)
        await asyncio.sleep(0.05)
        assert len(miner.connections) == 1
        await asyncio.wait_for(miner.stop(), 3)
        assert miner.connections == set()
        assert await asyncio.wait_for(reader.read(), 2) == b""
        writer.close()
    finally:
        await fleet.__aexit__(None, None, None)


@pytest.mark.parametrize("model", MODELS)
async def test_slow_reply_is_not_cut_by_the_idle_timer(model: str, monkeypatch: pytest.MonkeyPatch) -> None:
    from fleetd.sim import antminer, whatsminer

    # Idle timers far shorter than the reply delay: the request is in, so the reply still comes.
    monkeypatch.setattr(antminer.ApiProtocol, "idle_s", 0.2)
    monkeypatch.setattr(whatsminer.V2Protocol, "idle_s", 0.2)
    fleet, host = _fleet(model)
    await fleet.__aenter__()
    try:
        fleet.state(host).faults.slow_s = 0.6
        reader, writer = await asyncio.open_connection(host, 4028)
        writer.write(json.dumps({"command": "summary"}).encode())
        await writer.drain()
        reply = await asyncio.wait_for(reader.read(), 3)
        writer.close()
        assert b"SUMMARY" in reply
        assert fleet.emulators[host].connections == set()  # closed after the one reply
    finally:
        await fleet.__aexit__(None, None, None)
