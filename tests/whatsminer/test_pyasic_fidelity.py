"""pyasic, an independent client, identifies the emulated Whatsminers and reads what fleetd reads."""

from __future__ import annotations

import warnings

import pytest
from fleetd.drivers.whatsminer import WhatsminerDriver

from .conftest import M50S, M60S, Start

pyasic = pytest.importorskip("pyasic")


@pytest.mark.parametrize(
    ("model", "pyasic_model", "backend", "api"),
    [
        (M50S, "M50S VH50", "BTMinerV2", "btminer-v2"),
        (M60S, "M60S VK40", "BTMinerV3", "btminer-v3"),
    ],
)
async def test_pyasic_reads_the_same_as_fleetd(
    start: Start, model: str, pyasic_model: str, backend: str, api: str
) -> None:
    _, ep = await start(model)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        miner = await pyasic.get_miner(ep.host)
    assert miner is not None, "pyasic did not recognise the emulated miner"
    assert any(c.__name__ == backend for c in type(miner).__mro__), [c.__name__ for c in type(miner).__mro__]
    data = await miner.get_data()

    reading = await WhatsminerDriver(ep).read()
    assert reading.identity.api == api
    s = reading.snapshot
    assert "whatsminer" in str(data.make).lower() and data.model == pyasic_model
    assert data.fw_ver == reading.identity.firmware
    assert data.mac == reading.identity.mac
    assert float(data.hashrate) == pytest.approx(s.hashrate_ths, rel=1e-3)
    assert data.wattage == pytest.approx(s.power_w, abs=1)
    assert data.wattage_limit == pytest.approx(s.power_limit_w)
    assert data.hashboards and len(data.hashboards) == len(s.hashboards)


@pytest.mark.parametrize("model", [M50S, M60S])
async def test_pyasic_privileged_commands_work_on_the_emulator(start: Start, model: str) -> None:
    """pyasic's own envelope crypto (v2) and command tokens (v3) are accepted by the emulator."""
    miner, ep = await start(model)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # pyasic's own deprecation warnings (passlib)
        client = await pyasic.get_miner(ep.host)
        assert await client.stop_mining()
        assert miner.state.sleeping
        assert await client.resume_mining()
        assert not miner.state.sleeping
        assert await client.set_power_limit(3000)
        assert miner.state.power_limit_w == 3000
    snap = await WhatsminerDriver(ep).snapshot()
    assert snap.power_limit_w == 3000
