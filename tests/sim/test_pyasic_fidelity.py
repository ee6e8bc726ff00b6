"""Fidelity: pyasic 0.79, an independent client, takes the emulated Antminer for the real thing.

pyasic only knows the real ports (80 web, 4028 RPC), so these miners bind them (we run as root here;
the test skips where port 80 cannot be bound).
"""

from __future__ import annotations

import pytest

from fleetd.sim.fleet import Fleet, Group
from tests.conftest import loopback_host, web_port
from tests.sim.helpers import BLOCK

pyasic = pytest.importorskip("pyasic")


def _driver_class():
    try:
        from fleetd.drivers.antminer import AntminerDriver
    except ImportError:  # written in parallel; until it exists, compare with the emulator's state
        return None
    return AntminerDriver


async def _fleetd_hashrate(host: str, fleet: Fleet) -> float:
    driver_cls = _driver_class()
    if driver_cls is None:
        return fleet.state(host).hashrate_ths()
    from fleetd.drivers.base import Endpoint

    driver = driver_cls(Endpoint(host))
    try:
        snap = await driver.snapshot()
    finally:
        close = getattr(driver, "close", None)
        if close is not None:
            await close()
    assert snap.hashrate_ths is not None
    return snap.hashrate_ths


async def _start(model: str) -> tuple[Fleet, str]:
    if web_port() != 80:
        pytest.skip("pyasic needs the real web port 80, which this user cannot bind")
    host = loopback_host(BLOCK)
    fleet = Fleet([Group(model, 1, host, jitter=0.0, ramp_s=0.0)])
    await fleet.__aenter__()
    return fleet, host


@pytest.fixture
async def s19pro():
    fleet, host = await _start("Antminer S19 Pro")
    yield fleet, host
    await fleet.__aexit__(None, None, None)


@pytest.mark.parametrize(
    ("model", "backend", "short", "chips"),
    [("Antminer S19 Pro", "BMMinerS19Pro", "S19 Pro", 114), ("Antminer S21", "BMMinerS21", "S21", 108)],
)
async def test_pyasic_identifies_the_model(model, backend, short, chips):
    fleet, host = await _start(model)
    try:
        miner = await pyasic.get_miner(host)
        assert miner is not None
        assert type(miner).__name__ == backend  # pyasic's stock-firmware Antminer backend
        assert miner.model.startswith(short)
        data = await miner.get_data()
        assert data.mac == fleet.state(host).mac
        assert data.hostname == "Antminer"
        assert [b.chips for b in data.hashboards] == [chips] * 3
        assert [fan.speed for fan in data.fans] == fleet.state(host).fan_rpms()
    finally:
        await fleet.__aexit__(None, None, None)


@pytest.mark.parametrize(("model", "nominal"), [("Antminer S19 Pro", 110.0), ("Antminer S21", 200.0)])
async def test_pyasic_reads_the_hashrate_fleetd_reads(model, nominal):
    fleet, host = await _start(model)
    try:
        miner = await pyasic.get_miner(host)
        data = await miner.get_data()
        ours = await _fleetd_hashrate(host, fleet)
        assert float(data.hashrate) == pytest.approx(ours, rel=1e-4)
        assert ours == pytest.approx(nominal, rel=1e-4)
        assert float(data.expected_hashrate) == pytest.approx(nominal, rel=1e-4)
        assert sum(float(b.hashrate) for b in data.hashboards) == pytest.approx(ours, rel=1e-4)
    finally:
        await fleet.__aexit__(None, None, None)


async def test_pyasic_stop_mining_sleeps_the_emulated_miner(s19pro):
    fleet, host = s19pro
    miner = await pyasic.get_miner(host)
    assert await miner.stop_mining()
    assert fleet.state(host).sleeping
    assert await _fleetd_hashrate(host, fleet) == 0.0
    assert await miner.resume_mining()
    assert not fleet.state(host).sleeping


async def test_pyasic_fault_light_and_reboot(s19pro):
    fleet, host = s19pro
    miner = await pyasic.get_miner(host)
    assert await miner.fault_light_on() is True
    assert (await miner.get_data()).fault_light is True
    assert await miner.fault_light_off() is False
    assert await miner.reboot()
    assert fleet.state(host).uptime_s() < 5
