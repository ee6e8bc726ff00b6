"""The API served for a real daemon polling emulated miners over loopback."""

from __future__ import annotations

import asyncio
import time

import aiohttp

from fleetd.api import ApiServer
from fleetd.config import parse_config
from fleetd.daemon.core import Daemon
from fleetd.sim.fleet import Fleet, Group

BASE = "127.16.60.1"  # 127.16.60.1-3: this test's miners


async def _until(cond, within: float = 10.0) -> None:
    deadline = time.monotonic() + within
    while not cond():
        assert time.monotonic() < deadline, "timed out"
        await asyncio.sleep(0.05)


async def test_api_over_daemon_and_emulated_fleet(tmp_path):
    groups = [Group("Antminer S19 Pro", 3, BASE, {"web": 8080}, faults={"dead": 0.34}, ramp_s=0, jitter=0)]
    async with Fleet(groups) as miners:
        hosts = [m.host for m in miners]
        config = parse_config(
            {
                "api": {"listen": "127.16.60.100:18787"},
                "polling": {"interval_s": 0.5, "jitter_s": 0, "timeout_s": 0.5, "connect_timeout_s": 0.5},
                "miners": [
                    {"host": h, "web_port": 8080, "site": "north", "nominal_power_w": 3250} for h in hosts
                ],
            }
        )
        daemon = Daemon(config, storage=False)
        api = ApiServer.for_daemon(daemon)
        assert api.url == "http://127.16.60.100:18787"
        await api.start()
        await daemon.start()
        try:
            await _until(lambda: daemon.state.down() == 1 and daemon.state.up() == 2)
            async with aiohttp.ClientSession(api.url) as s:
                async with s.get("/healthz") as r:
                    health = await r.json()
                    assert r.status == 200 and health["status"] == "ok", health
                async with s.get("/api/fleet") as r:
                    fleet = await r.json()
                assert (fleet["up"], fleet["down"]) == (2, 1)
                assert fleet["hashrate_ths"] > 150  # two S19 Pro at ~110 TH/s each
                assert fleet["by_model"][-1]["model"] == "Antminer S19 Pro"
                async with s.get("/api/miners", params={"state": "down"}) as r:
                    down = (await r.json())["miners"]
                assert len(down) == 1 and down[0]["last_error"]
                up_id = next(h for h in hosts if h != down[0]["id"])
                async with s.get(f"/api/miners/{up_id}") as r:
                    detail = await r.json()
                assert detail["identity"]["model"] == "Antminer S19 Pro"
                assert len(detail["snapshot"]["hashboards"]) == 3
        finally:
            await daemon.stop()
            await api.stop()


async def test_healthz_follows_the_daemons_verdict():
    config = parse_config({"polling": {"interval_s": 0.5}})
    daemon = Daemon(config, storage=False)
    api = ApiServer.for_daemon(daemon, "127.16.60.101:0")
    await api.start()
    try:
        async with aiohttp.ClientSession(api.url) as s, s.get("/healthz") as r:
            assert r.status == 503  # not started: no poll loop is progressing
            assert (await r.json())["status"] == "stalled"
    finally:
        await api.stop()
