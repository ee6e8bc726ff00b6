"""The LuxOS driver against the LuxOS emulator over real loopback sockets."""

from __future__ import annotations

import pytest
from fleetd.drivers import detect
from fleetd.drivers.luxos import LuxOSDriver, SessionBusyError

from fleetd.model import Capability, Mode
from fleetd.sim.base import Faults
from fleetd.transport.errors import CommandRejectedError, NotCompliedError
from tests.luxos.conftest import Start
from tests.sim.helpers import api

MODEL = "Antminer S19k Pro"


async def test_detected_and_read(start: Start) -> None:
    miner, endpoint = await start(MODEL)
    found = await detect(endpoint)
    assert found is not None and found[0] is LuxOSDriver
    driver = LuxOSDriver(endpoint)
    assert driver.capabilities == {Capability.SLEEP, Capability.POWER_LIMIT}
    reading = await driver.read()
    ident, snap = reading.identity, reading.snapshot
    assert ident.serial == miner.state.serial and ident.mac == miner.state.mac.lower()
    assert snap.is_mining and snap.mode is Mode.NORMAL
    assert snap.hashrate_ths == pytest.approx(121.8)
    assert snap.power_w == pytest.approx(2794.0) and snap.power_limit_w == 2794.0
    assert len(snap.hashboards) == 3 and all(b.ok for b in snap.hashboards)
    thermal = await driver.thermal()
    assert thermal.target_c == 75.0 and thermal.atm_enabled is True


async def test_sleep_and_wake_verified_and_sessions_released(start: Start) -> None:
    miner, endpoint = await start(MODEL)
    driver = LuxOSDriver(endpoint)
    slept = await driver.sleep()
    assert slept.hashrate_ths == 0.0 and slept.mode is Mode.SLEEP and miner.state.sleeping
    assert miner.session_id is None
    woke = await driver.wake()
    assert woke.hashrate_ths and woke.hashrate_ths > 0 and not miner.state.sleeping
    assert miner.session_id is None


async def test_power_limit_picks_the_fitting_profile(start: Start) -> None:
    miner, endpoint = await start(MODEL)
    snap = await LuxOSDriver(endpoint).set_power_limit(2000)
    assert miner.profile == "440MHz" and snap.power_limit_w == 1916.0
    assert miner.session_id is None


async def test_wake_goes_back_to_the_profile_from_before_the_limit(start: Start) -> None:
    miner, endpoint = await start(MODEL)
    driver = LuxOSDriver(endpoint)
    await driver.set_power_limit(2000)
    assert miner.profile == "440MHz"
    woke = await driver.wake()  # the policy's "run": hashing at the miner's own profile again
    assert miner.profile == "default" and woke.power_limit_w == 2794.0 and miner.session_id is None
    await driver.wake()
    assert miner.profile == "default"


async def test_power_limit_range_is_the_profiles_span(start: Start) -> None:
    _, endpoint = await start(MODEL)
    driver = LuxOSDriver(endpoint)
    await driver.read()  # reads (and caches) the profiles
    assert driver.power_limit_range() == (784, 4195)


async def test_power_limit_below_every_profile_is_a_clear_error(start: Start) -> None:
    miner, endpoint = await start(MODEL)
    with pytest.raises(CommandRejectedError, match=r"no LuxOS profile fits 500 W \(the lowest is 784 W\)"):
        await LuxOSDriver(endpoint).set_power_limit(500)
    assert miner.profile == "default" and miner.session_id is None


async def test_busy_session_is_a_clear_error(start: Start) -> None:
    miner, endpoint = await start(MODEL)
    other = await api(endpoint.host, "logon")  # another client holds the only session
    sid = other["SESSION"][0]["SessionID"]
    with pytest.raises(SessionBusyError, match="another client holds the LuxOS API session"):
        await LuxOSDriver(endpoint).sleep()
    assert not miner.state.sleeping and miner.session_id == sid  # theirs, untouched


async def test_ignored_command_is_not_complied_and_the_session_released(start: Start) -> None:
    miner, endpoint = await start(MODEL, faults=Faults(ignore_power_commands=True))
    driver = LuxOSDriver(endpoint)
    with pytest.raises(NotCompliedError, match="sleep acknowledged but not in effect"):
        await driver.sleep()
    assert miner.session_id is None
    with pytest.raises(NotCompliedError, match="profileset 440MHz"):
        await driver.set_power_limit(2000)
    assert miner.profile == "default" and miner.session_id is None
