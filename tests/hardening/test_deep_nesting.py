"""JSON nested 300,000 levels deep, served over real sockets, is a MalformedReplyError on every transport.

Before, Python's decoder raised RecursionError, which the poller counted as a driver bug.
"""

from __future__ import annotations

from collections.abc import AsyncIterator, Mapping

import pytest
from fleetd.drivers import driver_class

from fleetd.sim.fleet import Fleet, Group
from fleetd.transport.btminer import BtminerV2
from fleetd.transport.btminer_v3 import BtminerV3
from fleetd.transport.cgminer import CGMinerAPI
from fleetd.transport.errors import MalformedReplyError
from fleetd.transport.http import WebClient
from tests.conftest import loopback_host, web_port

from .conftest import BLOCK, FAST, endpoint

LEVELS = 300_000
DEEP = {
    "arrays": b"[" * LEVELS + b"]" * LEVELS,
    "objects": b'{"a":' * LEVELS + b"1" + b"}" * LEVELS,
    "unclosed": b"[" * LEVELS,
    "broken": b"[" * LEVELS + b"1,,]",  # needs the repairing decoder, which recursed too
}


async def _serve(model: str, replies: Mapping[str, bytes]) -> AsyncIterator[str]:
    host = loopback_host(BLOCK)
    fleet = Fleet([Group(model, 1, host, {"web": web_port()}, ramp_s=0, jitter=0)])
    async with fleet:
        fleet.state(host).faults.replies = dict(replies)
        yield host


@pytest.mark.parametrize("shape", list(DEEP))
async def test_cgminer_tcp(shape: str) -> None:
    async for host in _serve("Antminer S19 Pro", {"summary": DEEP[shape]}):
        with pytest.raises(MalformedReplyError, match="summary"):
            await CGMinerAPI(host, timeouts=FAST).command("summary")
        drv = driver_class("antminer")(endpoint(host))
        with pytest.raises(MalformedReplyError):
            await drv.read()
        await drv.close()


@pytest.mark.parametrize("shape", list(DEEP))
async def test_btminer_v2(shape: str) -> None:
    async for host in _serve("Whatsminer M50S_VH50", {"summary": DEEP[shape]}):
        with pytest.raises(MalformedReplyError, match="summary"):
            await BtminerV2(host, 4028, FAST).command("summary")


@pytest.mark.parametrize("shape", list(DEEP))
async def test_btminer_v3(shape: str) -> None:
    async for host in _serve("Whatsminer M60S_VK40", {"get.miner.status": DEEP[shape]}):
        with pytest.raises(MalformedReplyError, match=r"get\.miner\.status"):
            await BtminerV3(host, 4433, FAST).get("get.miner.status", "summary")
        drv = driver_class("whatsminer")(endpoint(host))
        with pytest.raises(MalformedReplyError):
            await drv.read()
        await drv.close()


@pytest.mark.parametrize("shape", list(DEEP))
async def test_web_json(shape: str) -> None:
    async for host in _serve("Antminer S19 Pro", {"/cgi-bin/stats.cgi": DEEP[shape]}):
        web = WebClient(host, web_port(), username="root", password="root", timeouts=FAST)
        try:
            with pytest.raises(MalformedReplyError, match=r"stats\.cgi"):
                await web.get_json("/cgi-bin/stats.cgi")
        finally:
            await web.close()


@pytest.mark.parametrize("shape", list(DEEP))
async def test_rest_json(shape: str) -> None:
    async for host in _serve("Antminer S19", {"/api/v1/summary": DEEP[shape]}):  # VNish
        drv = driver_class("vnish")(endpoint(host))
        with pytest.raises(MalformedReplyError, match="summary"):
            await drv.read()
        await drv.close()
