"""The VNish driver against the VNish emulator over real loopback sockets."""

from __future__ import annotations

import httpx
import pytest
from fleetd.drivers import detect
from fleetd.drivers.base import Credentials, Endpoint, Login
from fleetd.drivers.vnish import VNishDriver

from fleetd.discovery import parse_targets, scan
from fleetd.model import Capability, Mode
from fleetd.sim.base import Faults
from fleetd.transport.errors import AuthError, CommandRejectedError, NotCompliedError
from tests.vnish.conftest import WEB_PORT, Start

MODEL = "Antminer S19"


async def test_detected_over_the_web_port_and_read(start: Start) -> None:
    miner, endpoint = await start(MODEL)
    found = await detect(endpoint)
    assert found is not None and found[0] is VNishDriver
    driver = VNishDriver(endpoint)
    try:
        assert driver.capabilities == {Capability.SLEEP, Capability.POWER_LIMIT}
        reading = await driver.read()
    finally:
        await driver.close()
    ident, snap = reading.identity, reading.snapshot
    assert (ident.model, ident.firmware) == ("Antminer S19", "VNish 1.2.6")
    assert ident.serial == miner.state.serial and ident.mac == miner.state.mac.lower()
    assert snap.is_mining and snap.mode is Mode.NORMAL and snap.hashrate_ths == pytest.approx(95.0)
    assert snap.power_w == 3250.0 and snap.power_limit_w is None  # stock tuning ("disabled" preset)
    assert len(snap.hashboards) == 3 and len(snap.fans) == 4 and snap.pools


async def test_scan_finds_it(start: Start) -> None:
    miner, _ = await start(MODEL)
    found, _ = await scan(parse_targets([miner.host]), web_port=WEB_PORT, timeout_s=2.0)
    assert [(f.identity.driver, f.identity.model) for f in found] == [("vnish", "Antminer S19")]


async def test_sleep_and_wake_verified(start: Start) -> None:
    miner, endpoint = await start(MODEL)
    driver = VNishDriver(endpoint)
    try:
        slept = await driver.sleep()
        assert slept.mode is Mode.SLEEP and slept.hashrate_ths == 0.0 and miner.state.sleeping
        woke = await driver.wake()
        assert woke.is_mining and not miner.state.sleeping
    finally:
        await driver.close()


async def test_limit_range_is_the_cached_presets_and_wake_restores_the_preset(start: Start) -> None:
    miner, endpoint = await start(MODEL)
    driver = VNishDriver(endpoint)
    try:
        assert driver.power_limit_range() is None  # nothing read yet: no I/O, no guess
        await driver.snapshot()
        assert driver.power_limit_range() == (1100, 4690)  # the emulated S19's presets
        await driver.set_power_limit(2000)
        assert miner.preset == "1900"
        woke = await driver.wake()  # back to the preset it ran before fleetd's limit
        assert miner.preset == "disabled" and woke.is_mining and woke.power_limit_w is None
        commands = miner.state.power_commands
        await driver.wake()
        assert miner.preset == "disabled" and miner.state.power_commands == commands + 1
    finally:
        await driver.close()


async def test_power_limit_picks_the_fitting_preset(start: Start) -> None:
    miner, endpoint = await start(MODEL)
    driver = VNishDriver(endpoint)
    try:
        snap = await driver.set_power_limit(2000)
        assert miner.preset == "1900" and snap.power_limit_w == 1900.0
        with pytest.raises(
            CommandRejectedError, match=r"no VNish preset fits 900 W \(the lowest is 1100 W\)"
        ):
            await driver.set_power_limit(900)
        assert miner.preset == "1900"
    finally:
        await driver.close()


async def test_acknowledged_and_ignored_is_not_complied(start: Start) -> None:
    miner, endpoint = await start(MODEL, faults=Faults(ignore_power_commands=True))
    driver = VNishDriver(endpoint)
    try:
        with pytest.raises(NotCompliedError, match="mining/pause acknowledged but not in effect"):
            await driver.sleep()
        with pytest.raises(NotCompliedError, match="preset 1900 acknowledged but not in effect"):
            await driver.set_power_limit(2000)
        assert not miner.state.sleeping and miner.preset == "disabled"
    finally:
        await driver.close()


async def test_wrong_password_is_an_auth_error(start: Start) -> None:
    _, endpoint = await start(MODEL, faults=Faults(wrong_password=True))
    driver = VNishDriver(endpoint)
    try:
        with pytest.raises(AuthError, match="refused the web password"):
            await driver.read()
    finally:
        await driver.close()


async def test_configured_password_is_used(start: Start) -> None:
    miner, endpoint = await start(MODEL)
    miner.state.password = "hunter2"
    creds = Credentials(vendors={"vnish": Login(None, "hunter2")})
    driver = VNishDriver(
        Endpoint(endpoint.host, web_port=WEB_PORT, credentials=creds, timeouts=endpoint.timeouts)
    )
    try:
        assert (await driver.read()).snapshot.is_mining
    finally:
        await driver.close()


async def test_protected_calls_need_the_token(start: Start) -> None:
    _, endpoint = await start(MODEL)
    base = f"http://{endpoint.host}:{WEB_PORT}"
    async with httpx.AsyncClient(timeout=5.0) as client:
        assert (await client.get(f"{base}/api/v1/info")).json()["fw_name"] == "Vnish"  # open
        assert (await client.get(f"{base}/api/v1/summary")).status_code == 200  # token optional
        assert (await client.get(f"{base}/api/v1/autotune/presets")).status_code == 401
        assert (await client.post(f"{base}/api/v1/mining/pause")).status_code == 401
        assert (await client.post(f"{base}/api/v1/unlock", json={"pw": "nope"})).status_code == 403
        token = (await client.post(f"{base}/api/v1/unlock", json={"pw": "admin"})).json()["token"]
        headers = {"Authorization": f"Bearer {token}"}
        paused = await client.post(f"{base}/api/v1/mining/pause", headers=headers)
        assert paused.status_code == 200 and paused.content == b""  # no output on success
        assert (await client.get(f"{base}/api/v1/nope")).json() == {"err": "Not found"}
