"""The Braiins OS driver against the Braiins OS emulator over real loopback sockets."""

from __future__ import annotations

import asyncio

import httpx
import pytest
from fleetd.drivers import detect, identify
from fleetd.drivers.antminer import AntminerDriver
from fleetd.drivers.base import Credentials, Endpoint, Login
from fleetd.drivers.braiins import BraiinsDriver
from fleetd.drivers.braiins import driver as braiins_driver

from fleetd.discovery import parse_targets, scan
from fleetd.model import Capability, Mode
from fleetd.sim.base import Faults
from fleetd.sim.braiins import BOS_VERSION
from fleetd.transport.errors import AuthError, CommandRejectedError, NotCompliedError
from tests.braiins.conftest import WEB_PORT, Start

MODEL = "Antminer S21 Pro"


async def test_detected_and_read(start: Start) -> None:
    miner, endpoint = await start(MODEL)
    found = await detect(endpoint)
    assert found is not None and found[0] is BraiinsDriver
    driver = BraiinsDriver(endpoint)
    try:
        assert driver.capabilities == {Capability.SLEEP, Capability.POWER_LIMIT}
        reading = await driver.read()
    finally:
        await driver.close()
    ident, snap = reading.identity, reading.snapshot
    assert (ident.model, ident.firmware, ident.driver) == ("Antminer S21 Pro", BOS_VERSION, "braiins")
    assert ident.serial == miner.state.serial and ident.mac == miner.state.mac.lower()
    assert snap.is_mining and snap.mode is Mode.NORMAL
    assert snap.hashrate_ths == pytest.approx(245.0) and snap.power_w == 3480.0
    assert snap.power_limit_w == 3480.0  # the tuner's default power target
    assert len(snap.hashboards) == 3 and all(b.ok for b in snap.hashboards)
    assert snap.pools and snap.pools[0].active


async def test_scan_tells_bos_from_stock_firmware(start: Start) -> None:
    bos, _ = await start(MODEL)
    stock, _ = await start("Antminer S19 Pro")
    targets = parse_targets([bos.host, stock.host])
    found, _ = await scan(targets, web_port=WEB_PORT, timeout_s=2.0)
    by_host = {f.identity.host: f.identity for f in found}
    assert by_host[bos.host].driver == "braiins" and by_host[bos.host].model == "Antminer S21 Pro"
    assert by_host[stock.host].driver == "antminer"
    stock_detected = await identify(Endpoint(stock.host, web_port=WEB_PORT))
    assert stock_detected.driver is AntminerDriver


async def test_sleep_and_wake_verified(start: Start) -> None:
    miner, endpoint = await start(MODEL)
    driver = BraiinsDriver(endpoint)
    try:
        slept = await driver.sleep()
        assert slept.mode is Mode.SLEEP and slept.hashrate_ths == 0.0 and miner.state.sleeping
        woke = await driver.wake()
        assert woke.hashrate_ths and woke.hashrate_ths > 0 and not miner.state.sleeping
    finally:
        await driver.close()


async def test_power_target_verified(start: Start) -> None:
    miner, endpoint = await start(MODEL)
    driver = BraiinsDriver(endpoint)
    try:
        snap = await driver.set_power_limit(2500)
        assert snap.power_limit_w == 2500.0 and miner.state.power_limit_w == 2500.0
        assert await driver.current_power_target_w() == 2500.0
        with pytest.raises(CommandRejectedError, match="refused power target 500 W"):
            await driver.set_power_limit(500)  # below the miner's range
        assert miner.state.power_limit_w == 2500.0
    finally:
        await driver.close()


async def test_limit_range_from_the_cached_constraints_and_wake_restores_the_target(start: Start) -> None:
    miner, endpoint = await start(MODEL)
    driver = BraiinsDriver(endpoint)
    try:
        assert driver.power_limit_range() is None  # nothing read yet: no I/O, no guess
        await driver.read()
        assert driver.power_limit_range() == (1500, 4000)  # tuner_constraints.power_target min/max
        await driver.set_power_limit(2000)
        assert miner.state.power_limit_w == 2000.0
        woke = await driver.wake()  # back to the target it had before fleetd's limit
        assert woke.power_limit_w == 3480.0 and miner.state.power_limit_w == 3480.0
        commands = miner.state.power_commands
        await driver.wake()
        assert miner.state.power_commands == commands + 1  # nothing left to restore
    finally:
        await driver.close()


async def test_acknowledged_and_ignored_is_not_complied(start: Start) -> None:
    miner, endpoint = await start(MODEL, faults=Faults(ignore_power_commands=True))
    driver = BraiinsDriver(endpoint)
    try:
        with pytest.raises(NotCompliedError, match="pause acknowledged but not in effect"):
            await driver.sleep()
        with pytest.raises(NotCompliedError, match="power target 2500 W acknowledged but not in effect"):
            await driver.set_power_limit(2500)
        assert not miner.state.sleeping and miner.state.power_limit_w is None
    finally:
        await driver.close()


async def test_wrong_password_is_an_auth_error(start: Start) -> None:
    _, endpoint = await start(MODEL, faults=Faults(wrong_password=True))
    driver = BraiinsDriver(endpoint)
    try:
        with pytest.raises(AuthError, match="refused the login of user 'root'"):
            await driver.read()
    finally:
        await driver.close()


async def test_configured_password_is_used(start: Start) -> None:
    miner, endpoint = await start(MODEL)
    miner.password = "s3cret"
    creds = Credentials(vendors={"braiins": Login("root", "s3cret")})
    driver = BraiinsDriver(
        Endpoint(endpoint.host, web_port=WEB_PORT, credentials=creds, timeouts=endpoint.timeouts)
    )
    try:
        assert (await driver.read()).snapshot.is_mining
    finally:
        await driver.close()


async def test_expired_token_logs_in_again(start: Start) -> None:
    miner, endpoint = await start(MODEL, token_ttl_s=0.05)
    driver = BraiinsDriver(endpoint)
    try:
        assert await driver.current_power_target_w() == 3480.0
        first = set(miner.tokens)
        await asyncio.sleep(0.1)  # the emulator's token lapses; the driver still holds it
        assert await driver.current_power_target_w() == 3480.0
        assert set(miner.tokens) - first  # a second login happened
    finally:
        await driver.close()
    braiins_driver._TOKENS.clear()


async def test_poll_is_one_cgminer_request_plus_cached_details(start: Start) -> None:
    miner, endpoint = await start(MODEL)
    driver = BraiinsDriver(endpoint)
    try:
        await driver.read()
        logins = len(miner.tokens)
        snap = (await driver.read()).snapshot  # details cached: no REST call at all
        assert len(miner.tokens) == logins
        assert snap.power_w == 3480.0 and snap.power_limit_w == 3480.0  # from tunerstatus
    finally:
        await driver.close()


async def test_rest_calls_need_the_token(start: Start) -> None:
    miner, endpoint = await start(MODEL)
    base = f"http://{endpoint.host}:{WEB_PORT}"
    async with httpx.AsyncClient(timeout=5.0) as client:
        assert (await client.get(f"{base}/api/v1/miner/stats")).status_code == 401
        assert (await client.put(f"{base}/api/v1/actions/pause")).status_code == 401
        login = await client.post(f"{base}/api/v1/auth/login", json={"username": "root", "password": ""})
        assert login.status_code == 200 and login.json()["timeout_s"] == 3600
        headers = {"Authorization": login.json()["token"]}
        paused = await client.put(f"{base}/api/v1/actions/pause", headers=headers)
        assert paused.json() is False and miner.state.sleeping  # "was it already paused?"
        assert (await client.put(f"{base}/api/v1/actions/pause", headers=headers)).json() is True
        bad = await client.post(f"{base}/api/v1/auth/login", json={"username": "root", "password": "x"})
        assert bad.status_code == 401
        assert (await client.get(f"{base}/api/v1/nope", headers=headers)).status_code == 404
