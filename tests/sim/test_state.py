"""Stateful behaviour seen over the wire: sleep, wake with ramp, low mode, power limit, reboot."""

from __future__ import annotations

import asyncio
import time

import pytest

from tests.conftest import web_port
from tests.sim.helpers import api, cgi, web_client


async def _ghs(host: str) -> float:
    return (await api(host, "summary"))["SUMMARY"][0]["GHS 5s"]


async def test_sleep_then_wake_ramps_back(start):
    fleet, host = await start(ramp_s=0.6)
    port = web_port()
    state = fleet.state(host)
    idle = state.power_w()
    assert await _ghs(host) == pytest.approx(110_000.0)

    ack = await cgi(host, port, "set_miner_conf", {"miner-mode": 1})
    assert ack == {"stats": "success", "code": "M000", "msg": "OK!"}
    assert await _ghs(host) == 0.0
    assert (await cgi(host, port, "get_miner_conf"))["bitmain-work-mode"] == "1"
    assert state.power_w() == state.spec.idle_w < idle
    stats = (await api(host, "stats"))["STATS"][1]
    assert stats["chain_rate1"] == "0.00"

    await cgi(host, port, "set_miner_conf", {"bitmain-work-mode": "0"})
    first = await _ghs(host)
    assert 0.0 <= first < 110_000.0 * 0.6
    await asyncio.sleep(0.7)
    assert await _ghs(host) == pytest.approx(110_000.0)
    assert (await cgi(host, port, "get_miner_conf"))["bitmain-work-mode"] == "0"


async def test_wake_restores_the_mode_before_sleep(start):
    fleet, host = await start(ramp_s=0.0)
    await cgi(host, web_port(), "set_miner_conf", {"miner-mode": "3"})
    assert fleet.state(host).mode == "low"
    assert await _ghs(host) == pytest.approx(110_000.0 * 0.75)
    fleet.state(host).sleep()
    fleet.state(host).wake()
    assert fleet.state(host).mode == "low"


async def test_power_limit_scales_hashrate_and_power(start):
    fleet, host = await start()
    state = fleet.state(host)
    state.set_power_limit(state.spec.power_w / 2)
    assert await _ghs(host) == pytest.approx(55_000.0)
    assert state.power_w() == pytest.approx(state.spec.power_w / 2)


async def test_set_miner_conf_can_answer_slowly(start):
    fleet, host = await start(conf_delay_s=0.5)
    t0 = time.monotonic()
    await cgi(host, web_port(), "set_miner_conf", {"miner-mode": 1})
    assert time.monotonic() - t0 >= 0.5
    assert fleet.state(host).sleeping


async def test_bad_conf_body_is_refused_and_changes_nothing(start):
    fleet, host = await start()
    async with web_client() as c:
        resp = await c.post(f"http://{host}:{web_port()}/cgi-bin/set_miner_conf.cgi", content=b"{not json")
    assert resp.json()["stats"] == "error"
    assert not fleet.state(host).sleeping


async def test_reboot_restarts_uptime(start):
    fleet, host = await start()
    assert (await api(host, "summary"))["SUMMARY"][0]["Elapsed"] > 3000
    await cgi(host, web_port(), "reboot")
    assert (await api(host, "summary"))["SUMMARY"][0]["Elapsed"] < 5
    assert fleet.state(host).ramp_fraction() < 1.0


async def test_jitter_varies_hashrate(start):
    _, host = await start(jitter=0.02)
    values = {await _ghs(host) for _ in range(5)}
    assert len(values) > 1
    assert all(abs(v - 110_000.0) <= 110_000.0 * 0.021 for v in values)


async def test_reboot_takes_the_miner_offline_for_a_while(start):
    fleet, host = await start(options={"reboot_s": 0.4})
    assert (await cgi(host, web_port(), "reboot"))["stats"] == "success"
    await asyncio.sleep(0.2)
    with pytest.raises(OSError):
        await api(host, "version")
    await asyncio.sleep(0.5)
    assert (await api(host, "summary"))["SUMMARY"][0]["Elapsed"] < 2
    assert fleet.state(host).ramp_fraction() < 1.0


def test_unknown_emulator_options_are_refused():
    from fleetd.sim.fleet import Group, plan

    with pytest.raises(ValueError, match="has no option 'warp'"):
        plan([Group("Antminer S19 Pro", 1, "127.11.250.1", options={"warp": 9})])


async def test_conf_reflects_state_changed_behind_the_web_interface(start):
    fleet, host = await start()
    fleet.state(host).sleep()
    assert (await cgi(host, web_port(), "get_miner_conf"))["bitmain-work-mode"] == "1"
    fleet.state(host).wake()
    assert (await cgi(host, web_port(), "get_miner_conf"))["bitmain-work-mode"] == "0"
