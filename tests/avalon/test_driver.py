"""The Avalon driver against the Avalon emulators over real loopback sockets."""

from __future__ import annotations

import asyncio
import time
from pathlib import Path

import pytest
from fleetd.drivers import before_limit, detect
from fleetd.drivers.avalon import AvalonDriver

from fleetd.model import Capability, Mode
from fleetd.sim.base import Faults
from fleetd.transport.errors import CommandRejectedError, NotCompliedError, UnsupportedError
from tests.avalon.conftest import Start

MODELS = ["AvalonMiner 15-194", "Avalon Q"]


@pytest.mark.parametrize("model", MODELS)
async def test_detected_and_read(start: Start, model: str) -> None:
    miner, endpoint = await start(model)
    found = await detect(endpoint)
    assert found is not None and found[0] is AvalonDriver and found[1].model == miner.prod
    driver = AvalonDriver(endpoint)
    assert driver.capabilities == {Capability.SLEEP, Capability.POWER_LIMIT}
    snap = (await driver.read()).snapshot
    assert snap.is_mining and snap.mode is Mode.NORMAL
    assert snap.hashrate_ths == pytest.approx(miner.state.spec.hashrate_ths)
    assert snap.power_w == pytest.approx(miner.state.spec.power_w, rel=0.01)
    assert len(snap.hashboards) == miner.state.spec.boards and snap.pools


@pytest.mark.parametrize("model", MODELS)
async def test_softoff_and_softon_verified(start: Start, model: str) -> None:
    miner, endpoint = await start(model)  # softon closes the socket without a reply, as captured
    driver = AvalonDriver(endpoint)
    slept = await driver.sleep()
    assert slept.mode is Mode.SLEEP and slept.hashrate_ths == 0.0 and miner.state.sleeping
    woke = await driver.wake()
    assert woke.mode is Mode.NORMAL and woke.hashrate_ths and not miner.state.sleeping


async def test_timestamps_follow_the_miners_clock(start: Start) -> None:
    # An Avalon whose clock was never set (the A1566 capture's "When" is 986): a wall-clock timestamp
    # would schedule the softoff decades ahead.
    miner, endpoint = await start("AvalonMiner 15-194", clock_offset_s=986 - time.time(), softon_reply=True)
    driver = AvalonDriver(endpoint)
    assert (await driver.sleep()).mode is Mode.SLEEP
    assert miner.soft_off_at is not None and miner.soft_off_at < 10_000
    assert (await driver.wake()).is_mining


async def test_ignored_softoff_is_not_complied(start: Start) -> None:
    miner, endpoint = await start("Avalon Q", faults=Faults(ignore_power_commands=True))
    with pytest.raises(NotCompliedError, match="softoff acknowledged but not in effect"):
        await AvalonDriver(endpoint).sleep()
    assert not miner.state.sleeping


async def test_work_modes(start: Start) -> None:
    miner, endpoint = await start("AvalonMiner 15-194")
    driver = AvalonDriver(endpoint)
    snap = await driver.set_work_mode(Mode.LOW)
    assert snap.mode is Mode.LOW and miner.state.mode == "low"
    assert snap.power_limit_w is not None and snap.power_limit_w < miner.state.spec.power_w
    assert (await driver.set_work_mode(Mode.HIGH)).mode is Mode.HIGH
    with pytest.raises(CommandRejectedError, match="low, normal and high"):
        await driver.set_work_mode(Mode.SLEEP)


async def test_ignored_work_mode_is_not_complied(start: Start) -> None:
    _, endpoint = await start("Avalon Q", faults=Faults(ignore_power_commands=True))
    with pytest.raises(NotCompliedError, match="workmode low"):
        await AvalonDriver(endpoint).set_work_mode(Mode.LOW)


async def test_work_level_set_and_verified_where_the_stats_show_it(start: Start) -> None:
    miner, endpoint = await start("Avalon Q")
    assert await AvalonDriver(endpoint).set_work_level(2) == 2 and miner.work_level == 2
    a1566, endpoint = await start("AvalonMiner 15-194")
    with pytest.raises(UnsupportedError, match="no WORKLEVEL"):
        await AvalonDriver(endpoint).set_work_level(1)
    assert a1566.work_level == 0  # nothing sent that could not be verified


async def test_ignored_work_level_is_not_complied(start: Start) -> None:
    miner, endpoint = await start("Avalon Q", faults=Faults(ignore_power_commands=True))
    with pytest.raises(NotCompliedError, match=r"worklevel 1 acknowledged but not in effect .*WORKLEVEL 0"):
        await AvalonDriver(endpoint).set_work_level(1)
    assert miner.work_level == 0


async def test_commands_to_one_miner_are_serialized(start: Start) -> None:
    miner, endpoint = await start("AvalonMiner 15-194")
    seen: list[int] = []
    reply = miner.api_reply

    def counting(request: bytes) -> tuple[bytes, bool]:
        seen.append(len(miner.connections))
        return reply(request)

    miner.api_reply = counting
    drivers = [AvalonDriver(endpoint) for _ in range(3)]  # even separate driver objects share the lock
    await asyncio.gather(*(d.read() for d in drivers for _ in range(3)), drivers[0].identity())
    assert len(seen) >= 10 and max(seen) == 1


@pytest.mark.parametrize(
    ("model", "watts", "mode", "value"),
    [
        ("AvalonMiner 15-194", 3000, Mode.LOW, "0"),
        ("AvalonMiner 15-194", 5000, Mode.HIGH, "2"),
        ("Avalon Q", 1200, Mode.LOW, "0"),
        ("Avalon Q", 5000, Mode.NORMAL, "1"),  # no Super: its draw is not known
    ],
)
async def test_power_limit_picks_the_work_mode_and_verifies_it(
    start: Start, model: str, watts: int, mode: Mode, value: str
) -> None:
    miner, endpoint = await start(model)
    driver = AvalonDriver(endpoint)
    before = (await driver.read()).snapshot
    snap = await driver.set_power_limit(watts)
    assert snap.mode is mode and snap.is_mining and snap.hashrate_ths
    assert miner.state.mode == mode.value
    stats = await driver.raw_responses()
    assert f"WORKMODE[{value}]" in str(stats["rpc_estats"])
    assert snap.power_w is not None and snap.power_w <= watts
    if mode is Mode.LOW:
        assert snap.power_w < before.power_w and snap.hashrate_ths < before.hashrate_ths  # type: ignore[operator]


@pytest.mark.parametrize(("model", "span"), [("AvalonMiner 15-194", (2462, 4104)), ("Avalon Q", (800, 1674))])
async def test_power_limit_range_is_the_models_modes(start: Start, model: str, span: tuple[int, int]) -> None:
    _, endpoint = await start(model)
    driver = AvalonDriver(endpoint)
    assert driver.power_limit_range() is None  # nothing read yet
    await driver.read()
    assert driver.power_limit_range() == span


@pytest.mark.parametrize(("model", "lowest"), [("AvalonMiner 15-194", "2462 W"), ("Avalon Q", "800 W")])
async def test_a_limit_below_the_lowest_mode_is_refused(start: Start, model: str, lowest: str) -> None:
    miner, endpoint = await start(model)
    with pytest.raises(CommandRejectedError, match=f"below this .*lowest work mode \\(low, {lowest}\\)"):
        await AvalonDriver(endpoint).set_power_limit(700)
    assert miner.state.mode == "normal"


@pytest.mark.parametrize(("model", "watts"), [("AvalonMiner 15-194", 3000), ("Avalon Q", 1200)])
async def test_ignored_power_limit_is_not_complied(start: Start, model: str, watts: int) -> None:
    miner, endpoint = await start(model, faults=Faults(ignore_power_commands=True))
    with pytest.raises(
        NotCompliedError, match=rf"workmode 0 \(low, .* W\) for a {watts} W limit.*mode normal"
    ):
        await AvalonDriver(endpoint).set_power_limit(watts)
    assert miner.state.mode == "normal"


async def test_power_limit_sends_then_confirms(start: Start) -> None:
    miner, endpoint = await start("AvalonMiner 15-194")
    sent = await AvalonDriver(endpoint).send_power_limit(3419)  # just under Standard's 3420 W
    assert miner.state.mode == "low"  # sent and acknowledged; the re-read comes with confirm()
    assert (await sent.confirm()).mode is Mode.LOW


@pytest.mark.parametrize("model", MODELS)
async def test_wake_restores_the_mode_from_before_the_limit(start: Start, model: str) -> None:
    miner, endpoint = await start(model)
    driver = AvalonDriver(endpoint)
    await driver.set_power_limit(2500 if model == "AvalonMiner 15-194" else 1000)
    # A second limit keeps the mode from before the first.
    await driver.set_power_limit(800 if model == "Avalon Q" else 2462)
    assert miner.state.mode == "low"
    woke = await driver.wake()  # the curtailment executor's "run"
    assert woke.mode is Mode.NORMAL and woke.is_mining and miner.state.mode == "normal"
    miner.state.mode = "high"  # set by the operator later: a wake with nothing remembered leaves it
    assert (await driver.wake()).mode is Mode.HIGH


async def test_the_mode_before_the_limit_survives_a_restart(start: Start, tmp_path: Path) -> None:
    miner, endpoint = await start("AvalonMiner 15-194")
    miner.state.mode = "high"
    first = AvalonDriver(endpoint)
    first.state_dir = tmp_path
    await first.set_power_limit(3000)
    before_limit.forget_all()  # a new process
    second = AvalonDriver(endpoint)
    second.state_dir = tmp_path
    assert (await second.wake()).mode is Mode.HIGH and miner.state.mode == "high"


async def test_a_limit_on_a_sleeping_miner_wakes_it_in_the_chosen_mode(start: Start) -> None:
    miner, endpoint = await start("AvalonMiner 15-194")
    driver = AvalonDriver(endpoint)
    await driver.sleep()
    snap = await driver.set_power_limit(3000)
    assert snap.mode is Mode.LOW and snap.is_mining and not miner.state.sleeping and miner.state.mode == "low"
