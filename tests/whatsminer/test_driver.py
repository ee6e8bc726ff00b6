"""The Whatsminer driver against the emulator over real TCP on loopback (API v2 and v3)."""

from __future__ import annotations

import asyncio
import json
import time
from pathlib import Path

import pytest
from fleetd.drivers import detect
from fleetd.drivers.base import Timeouts
from fleetd.drivers.before_limit import forget_all
from fleetd.drivers.whatsminer import WhatsminerDriver
from fleetd.drivers.whatsminer.driver import MIN_POWER_LIMIT_W

from fleetd.model import Capability, Component, Mode
from fleetd.sim.base import Faults
from fleetd.transport.btminer import (
    BtminerV2,
    TokenLimitError,
    WrongPasswordError,
)
from fleetd.transport.errors import (
    AccessDeniedError,
    CommandRejectedError,
    DeviceTimeoutError,
    MalformedReplyError,
    NotCompliedError,
    UnreachableError,
    UnsupportedError,
)

from .conftest import FAST, M50S, M60S, Start


async def test_v2_probe_and_read(start: Start) -> None:
    miner, ep = await start(M50S)
    ident = await WhatsminerDriver.probe(ep)
    assert ident is not None
    assert ident.model == "Whatsminer M50S_VH50" and ident.api == "btminer-v2"
    assert ident.firmware == "20230803.11.REL" and ident.api_version == "2.0.5"
    assert ident.mac == miner.state.mac and ident.serial == miner.state.serial
    drv = WhatsminerDriver(ep)
    reading = await drv.read()
    s = reading.snapshot
    assert s.hashrate_ths == pytest.approx(126.0, rel=1e-6)
    assert s.power_w == pytest.approx(3276, abs=1)
    assert s.power_limit_w == 3600 and s.expected_hashrate_ths == pytest.approx(126.0)
    assert s.is_mining and s.mode is Mode.NORMAL
    assert len(s.hashboards) == 3 and all(b.ok and b.chips == 135 for b in s.hashboards)
    assert [f.rpm for f in s.fans] == [6000, 6000]
    assert len(s.pools) == 3 and s.pools[0].active
    assert s.psu["model"] == "P221B" and s.psu["input_voltage_v"] == 228.5
    assert s.errors == ()
    assert drv.capabilities == {Capability.SLEEP, Capability.POWER_LIMIT, Capability.REBOOT}
    raw = await drv.raw_responses()
    assert {
        "rpc_summary",
        "rpc_devs",
        "rpc_pools",
        "rpc_get_version",
        "rpc_get_psu",
        "rpc_devdetails",
        "rpc_get_miner_info",
        "rpc_get_error_code",
        "rpc_status",
    } <= set(raw)
    json.dumps(raw)


async def test_detect_picks_whatsminer(start: Start) -> None:
    _, ep = await start(M50S)
    found = await detect(ep)
    assert found is not None and found[0] is WhatsminerDriver and found[1].api == "btminer-v2"


async def test_sleep_and_wake_are_verified(start: Start) -> None:
    miner, ep = await start(M50S)
    drv = WhatsminerDriver(ep)
    slept = await drv.sleep()
    assert miner.state.sleeping and slept.mode is Mode.SLEEP and not slept.is_mining
    assert slept.hashrate_ths == 0
    woke = await drv.wake()
    assert not miner.state.sleeping and woke.is_mining and woke.hashrate_ths


async def test_ignored_power_command_is_not_complied(start: Start) -> None:
    miner, ep = await start(
        M50S,
        faults=Faults(ignore_power_commands=True),
        timeouts=Timeouts(connect_s=1, read_s=2, verify_s=0.5, verify_interval_s=0.1),
    )
    with pytest.raises(NotCompliedError, match="hashrate did not drop"):
        await WhatsminerDriver(ep).sleep()
    assert not miner.state.sleeping


async def test_power_limit_and_power_pct(start: Start) -> None:
    miner, ep = await start(M50S)
    drv = WhatsminerDriver(ep)
    snap = await drv.set_power_limit(3000)
    assert snap.power_limit_w == 3000 and miner.state.power_limit_w == 3000
    assert snap.power_w is not None and snap.power_w <= 3000
    with pytest.raises(CommandRejectedError, match="within"):
        await drv.set_power_limit(9000)
    await drv.set_power_limit(3600)
    snap = await drv.set_power_pct(50)
    assert snap.power_w is not None and snap.power_w < 2000


@pytest.mark.parametrize("model", [M50S, M60S])
async def test_limit_range_from_the_last_read_and_wake_restores_the_own_limit(
    start: Start, model: str, tmp_path: Path
) -> None:
    miner, ep = await start(model)
    drv = WhatsminerDriver(ep)
    drv.state_dir = tmp_path
    assert drv.power_limit_range() is None  # nothing read yet: no I/O, no guess
    await drv.snapshot()
    assert drv.power_limit_range() == (MIN_POWER_LIMIT_W, 3600)  # up to the limit it reports (its own)
    await drv.set_power_limit(2000)
    assert miner.state.power_limit_w == 2000
    assert drv.power_limit_range() == (MIN_POWER_LIMIT_W, 3600)  # still its own limit, not fleetd's
    later = WhatsminerDriver(ep)  # a restarted daemon: the journal in state_dir remembers it
    later.state_dir = tmp_path
    forget_all()
    assert later.power_limit_range() == (MIN_POWER_LIMIT_W, 3600)
    snap = await later.wake()
    assert snap.power_limit_w == 3600 and miner.state.power_limit_w == 3600 and snap.is_mining
    await later.snapshot()
    assert later.power_limit_range() == (MIN_POWER_LIMIT_W, 3600)
    commands = miner.state.power_commands
    await later.wake()  # nothing left to restore: no limit command
    assert miner.state.power_commands == commands + 1  # the wake only


async def test_token_is_reused_then_renewed_after_expiry(start: Start) -> None:
    miner, ep = await start(M50S, token_ttl_s=0.4)
    drv = WhatsminerDriver(ep)
    await drv.set_power_limit(3100)
    await drv.set_power_limit(3200)
    issued = sum(len(v) for v in miner.tokens.values())
    assert issued == 1  # the second command reused the token
    await asyncio.sleep(0.5)  # the miner forgets it; the driver still holds it
    snap = await drv.set_power_limit(3300)
    assert snap.power_limit_w == 3300
    assert len(next(iter(miner.tokens.values()))) == 1  # a fresh one replaced the expired one


async def test_token_cap_is_a_clear_error(start: Start) -> None:
    miner, ep = await start(M50S, max_tokens=2)
    other = BtminerV2(ep.host, ep.api_port, FAST)
    for _ in range(2):  # another tool on this host used up the tokens
        await other.command("get_token")
    with pytest.raises(TokenLimitError, match="too many tokens"):
        await WhatsminerDriver(ep).sleep()
    assert not miner.state.sleeping


async def test_wrong_password(start: Start) -> None:
    miner, ep = await start(M50S, faults=Faults(wrong_password=True))
    with pytest.raises(WrongPasswordError, match="password is wrong"):
        await WhatsminerDriver(ep).sleep()
    assert not miner.state.sleeping
    _, ep2 = await start(M50S, password="not-admin")
    with pytest.raises(WrongPasswordError):
        await WhatsminerDriver(ep2).set_power_limit(3000)


async def test_write_access_disabled(start: Start) -> None:
    _, ep = await start(M50S, write_access=False)
    with pytest.raises(AccessDeniedError, match="WhatsMinerTool"):
        await WhatsminerDriver(ep).sleep()


async def test_reboot(start: Start) -> None:
    miner, ep = await start(M50S)
    before = miner.state.started_at
    await WhatsminerDriver(ep).reboot()
    assert miner.state.started_at > before


async def test_v3_only_miner(start: Start) -> None:
    miner, ep = await start(M60S, ports={"v3": 4433})
    ident = await WhatsminerDriver.probe(ep)
    assert ident is not None and ident.api == "btminer-v3"
    assert ident.model == "Whatsminer M60S_VK40" and ident.firmware == "20251209.16.Rel2"
    drv = WhatsminerDriver(ep)
    s = await drv.snapshot()
    assert s.hashrate_ths == pytest.approx(180.0) and s.power_w == pytest.approx(3330, abs=1)
    assert s.power_limit_w == 3600 and len(s.hashboards) == 3 and s.hashboards[0].chips == 225
    slept = await drv.sleep()
    assert miner.state.sleeping and slept.mode is Mode.SLEEP
    woke = await drv.wake()
    assert woke.is_mining and not miner.state.sleeping
    snap = await drv.set_power_limit(3000)
    assert snap.power_limit_w == 3000 and miner.state.power_limit_w == 3000


async def test_new_firmware_prefers_v3_when_both_answer(start: Start) -> None:
    _, ep = await start(M60S)
    found = await detect(ep)
    assert found is not None and found[0] is WhatsminerDriver and found[1].api == "btminer-v3"


async def test_v3_wrong_password(start: Start) -> None:
    miner, ep = await start(M60S, faults=Faults(wrong_password=True))
    with pytest.raises(WrongPasswordError, match="super"):
        await WhatsminerDriver(ep, api="btminer-v3").sleep()
    assert not miner.state.sleeping


async def test_garbage_replies(start: Start) -> None:
    _, ep = await start(M50S, faults=Faults(malformed=True))
    with pytest.raises(MalformedReplyError):
        await WhatsminerDriver.probe(ep)
    assert await detect(ep) is None
    with pytest.raises(MalformedReplyError):
        await WhatsminerDriver(ep, api="btminer-v2").read()
    _, ep3 = await start(M60S, ports={"v3": 4433}, faults=Faults(malformed=True))
    with pytest.raises(MalformedReplyError):
        await WhatsminerDriver(ep3, api="btminer-v3").read()


async def test_dead_miner_times_out(start: Start) -> None:
    _, ep = await start(
        M50S,
        faults=Faults(dead=True),
        timeouts=Timeouts(connect_s=0.5, read_s=0.3, verify_s=1, verify_interval_s=0.1),
    )
    with pytest.raises(DeviceTimeoutError):
        await WhatsminerDriver.probe(ep)
    with pytest.raises(DeviceTimeoutError):
        await WhatsminerDriver(ep, api="btminer-v2").read()


async def test_nothing_listening(start: Start) -> None:
    _, ep = await start(M50S, ports={})
    with pytest.raises(UnreachableError):
        await WhatsminerDriver.probe(ep)
    assert await detect(ep) is None


async def test_quirks_and_faults_reach_the_snapshot(start: Start) -> None:
    quirks = frozenset({"error_code_list", "trailing_comma", "psu_missing_comma"})
    _, ep = await start(M50S, faults=Faults(fan_failed=True, board_down=True, quirks=quirks))
    s = await WhatsminerDriver(ep).snapshot()
    assert {f.code: f.component for f in s.errors} == {"110": Component.FAN, "532": Component.BOARD}
    assert s.fans[0].rpm == 0 and not s.hashboards[2].ok and s.hashboards[2].chips == 0
    assert s.hashrate_ths == pytest.approx(126.0 * 2 / 3)


async def test_emulator_waits_for_late_requests(start: Start) -> None:
    _, ep = await start(M50S)
    reader, writer = await asyncio.open_connection(ep.host, ep.api_port)
    await asyncio.sleep(2.0)  # a loaded client connects, then sends seconds later
    writer.write(b'{"cmd":"get_version"}')
    await writer.drain()
    data = await asyncio.wait_for(reader.read(), 2.0)
    writer.close()
    assert data.endswith(b"\0")
    assert json.loads(data.rstrip(b"\0"))["Msg"]["fw_ver"] == "20230803.11.REL"


async def test_firmware_refusing_joined_reads(start: Start) -> None:
    _, ep = await start(M50S, faults=Faults(quirks=frozenset({"no_joined"})))
    drv = WhatsminerDriver(ep)
    s = await drv.snapshot()
    assert s.hashrate_ths == pytest.approx(126.0) and len(s.hashboards) == 3 and len(s.pools) == 3
    assert drv._joined_ok is False


async def test_v3_write_access_disabled_and_no_power_pct(start: Start) -> None:
    _, ep = await start(M60S, write_access=False)
    drv = WhatsminerDriver(ep)
    with pytest.raises(AccessDeniedError, match="WhatsMinerTool"):
        await drv.sleep()
    with pytest.raises(UnsupportedError):
        await drv.set_power_pct(50)


async def test_not_hashing_but_not_asleep_is_not_sleep(start: Start) -> None:
    miner, ep = await start(M50S)
    drv = WhatsminerDriver(ep)
    miner.state.woke_at = time.time() + 3600  # hashboards starting: no hashrate yet, mining is on
    s = await drv.snapshot()
    assert s.hashrate_ths == 0 and not s.is_mining and s.mode is Mode.UNKNOWN
    miner.state.sleeping = True
    assert (await drv.snapshot()).mode is Mode.SLEEP


async def test_identity_follows_a_firmware_change(start: Start) -> None:
    miner, ep = await start(M50S)
    drv = WhatsminerDriver(ep)
    assert (await drv.identity()).firmware == "20230803.11.REL"
    miner.firmware = "20240105.12.REL"  # type: ignore[misc]  # upgraded behind our back
    assert (await drv.identity()).firmware == "20240105.12.REL"


async def test_slow_replies_are_reused_between_polls(start: Start) -> None:
    _, ep = await start(M50S)
    drv = WhatsminerDriver(ep)
    await drv.read()
    first = dict(drv._slow)
    await drv.read()
    assert drv._slow == first  # psu, error codes and identity were not re-read
    full = await drv.raw_responses()
    assert "rpc_status" in full and "rpc_get_psu" in full


async def test_upgrade_to_v3_firmware_switches_api(start: Start) -> None:
    _, ep = await start(M60S)
    drv = WhatsminerDriver(ep, api="btminer-v2")  # as known before the firmware upgrade
    first = await drv.read()
    assert first.identity.api == "btminer-v2" and first.identity.firmware == "20251209.16.Rel2"
    assert (await drv.read()).identity.api == "btminer-v3"
    assert WhatsminerDriver(ep).api == "btminer-v3"  # remembered for the next driver made for it


async def test_overheat_and_slow_faults(start: Start) -> None:
    _, ep = await start(M60S, faults=Faults(overheat=True, slow_s=0.3))
    s = await WhatsminerDriver(ep).snapshot()  # read_s 2 s: slow, but in time
    assert s.temp_c is not None and s.temp_c > 90
    assert [(f.code, f.component) for f in s.errors] == [("350", Component.TEMPERATURE)]
    _, ep2 = await start(
        M50S,
        faults=Faults(slow_s=0.5),
        timeouts=Timeouts(connect_s=1, read_s=0.2, verify_s=1, verify_interval_s=0.1),
    )
    with pytest.raises(DeviceTimeoutError):
        await WhatsminerDriver(ep2, api="btminer-v2").read()


async def test_old_firmware_without_get_version_is_detected_by_devdetails(start: Start) -> None:
    miner, ep = await start(M50S, legacy_api=True)
    ident = await WhatsminerDriver.probe(ep)
    assert ident is not None and ident.api == "btminer-v2"
    assert ident.model == "Whatsminer M50S_VH50" and ident.mac == miner.state.mac
    found = await detect(ep)
    assert found is not None and found[0] is WhatsminerDriver
    reading = await WhatsminerDriver(ep).read()
    assert reading.identity.model == "Whatsminer M50S_VH50"
    assert reading.identity.firmware == "20230803.11.REL"  # from summary's "Firmware Version"
    assert reading.snapshot.hashrate_ths == pytest.approx(126.0, rel=1e-6) and reading.snapshot.psu


async def test_get_version_is_really_absent_on_old_firmware(start: Start) -> None:
    _, ep = await start(M50S, legacy_api=True)
    with pytest.raises(CommandRejectedError):
        await BtminerV2(ep.host, ep.api_port, FAST).command("get_version")


@pytest.mark.parametrize("model", [M50S, M60S])
async def test_reboot_takes_the_miner_offline_for_a_while(start: Start, model: str) -> None:
    miner, ep = await start(model, reboot_s=0.5)
    drv = WhatsminerDriver(ep)
    await drv.read()
    await drv.reboot()
    await asyncio.sleep(0.2)
    with pytest.raises((UnreachableError, DeviceTimeoutError)):
        await WhatsminerDriver(ep).read()
    await asyncio.sleep(0.6)
    assert (await drv.read()).snapshot.uptime_s is not None
    assert miner.state.uptime_s(time.time()) < 5


@pytest.mark.parametrize("model", [M50S, M60S])
async def test_late_acknowledgement_is_still_verified(start: Start, model: str) -> None:
    miner, ep = await start(model, conf_delay_s=0.3)
    t0 = time.monotonic()
    slept = await WhatsminerDriver(ep).sleep()
    assert time.monotonic() - t0 >= 0.3
    assert miner.state.sleeping and not slept.is_mining
