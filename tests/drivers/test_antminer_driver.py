"""The Antminer and generic CGMiner drivers against emulated miners over real loopback sockets."""

from __future__ import annotations

import asyncio
import contextlib
import itertools
import os
import re
from collections.abc import AsyncIterator, Iterable

import pytest
from fleetd.drivers import detect
from fleetd.drivers.antminer import AntminerDriver
from fleetd.drivers.antminer.parse import conf_mode
from fleetd.drivers.avalon import AvalonDriver
from fleetd.drivers.base import Credentials, Endpoint, Timeouts
from fleetd.drivers.cgminer import CGMinerDriver

from fleetd.model import Capability, Component, Mode
from fleetd.sim.fleet import Fleet, Group
from fleetd.transport.errors import (
    AuthError,
    DeviceTimeoutError,
    MalformedReplyError,
    NotCompliedError,
)

BLOCK = 10
# Two pytest processes may run these tests at once: each gets its own third octet of 127.10.x.y.
_OCTET = 101 + os.getpid() % 50  # 101..150; transport tests use 1..100
_numbers = itertools.count()


def fresh_host() -> str:
    n = next(_numbers) % 254 + 1
    return f"127.{BLOCK}.{_OCTET}.{n}"


FAST = Timeouts(connect_s=1.0, read_s=1.0, verify_s=3.0, verify_interval_s=0.1)


@contextlib.asynccontextmanager
async def emulated(
    model: str = "Antminer S19 Pro",
    faults: Iterable[str] = (),
    quirks: Iterable[str] = (),
    conf_delay_s: float = 0.0,
    ramp_s: float = 0.2,
    timeouts: Timeouts = FAST,
    credentials: Credentials | None = None,
) -> AsyncIterator[tuple[AntminerDriver, Fleet]]:
    """One emulated miner on a fresh 127.10.x.y (real ports) and an Antminer driver for it."""
    group = Group(
        model,
        count=1,
        base=fresh_host(),
        faults={f: 1.0 for f in faults},
        quirks=frozenset(quirks),
        ramp_s=ramp_s,
        jitter=0.0,
        conf_delay_s=conf_delay_s,
        slow_s=3.0,
    )
    fleet = Fleet([group])
    async with fleet as miners:
        m = miners[0]
        endpoint = Endpoint(
            m.host,
            api_port=m.ports.get("api", 4028),
            web_port=m.ports.get("web", 80),
            timeouts=timeouts,
            credentials=credentials or Credentials(),
        )
        driver = AntminerDriver(endpoint)
        try:
            yield driver, fleet
        finally:
            await driver.close()


async def test_read_s19pro() -> None:
    async with emulated() as (driver, _):
        reading = await driver.read()
    ident, snap = reading.identity, reading.snapshot
    assert ident.model == "Antminer S19 Pro" and ident.vendor == "antminer" and ident.driver == "antminer"
    assert ident.firmware and ident.api_version == "3.1" and ident.host == driver.host
    assert snap.hashrate_ths == pytest.approx(110.0, rel=0.05)
    assert len(snap.hashboards) == 3 and all(b.ok for b in snap.hashboards)
    assert [b.chips for b in snap.hashboards] == [114] * 3
    assert len(snap.fans) == 4 and snap.is_mining and snap.uptime_s and snap.uptime_s > 0
    assert snap.pools and snap.pools[0].url
    assert snap.errors == ()


async def test_read_s21() -> None:
    async with emulated("Antminer S21") as (driver, _):
        reading = await driver.read()
    assert reading.identity.model == "Antminer S21"
    assert reading.snapshot.hashrate_ths == pytest.approx(200.0, rel=0.05)
    assert [b.chips for b in reading.snapshot.hashboards] == [108] * 3


async def test_probe_and_detect() -> None:
    async with emulated() as (driver, _):
        ident = await AntminerDriver.probe(driver.endpoint)
        assert ident is not None and ident.model == "Antminer S19 Pro"
        generic = await CGMinerDriver.probe(driver.endpoint)
        assert generic is not None and generic.vendor == "generic"
        found = await detect(driver.endpoint)
    assert found is not None and found[0] is AntminerDriver


async def test_identity_adds_mac_from_web_and_keeps_it_for_reads() -> None:
    async with emulated() as (driver, fleet):
        ident = await driver.identity()
        read_ident = (await driver.read()).identity
        state = fleet.state(driver.host)
    assert ident.mac and ident.mac == state.mac.lower()
    assert read_ident.key() == ident.key()


async def test_capabilities() -> None:
    driver = AntminerDriver(Endpoint("192.0.2.1"))
    assert driver.capabilities == {Capability.SLEEP, Capability.REBOOT}


async def test_sleep_and_wake_verified() -> None:
    async with emulated() as (driver, fleet):
        slept = await driver.sleep()
        assert slept.mode is Mode.SLEEP and not slept.is_mining and slept.hashrate_ths == 0
        assert fleet.state(driver.host).sleeping
        woke = await driver.wake()
        assert woke.mode is Mode.NORMAL and woke.is_mining
        assert not fleet.state(driver.host).sleeping


async def test_poll_reports_the_configured_mode_not_unknown() -> None:
    async with emulated() as (driver, fleet):
        assert (await driver.read()).snapshot.mode is Mode.NORMAL
        await driver.sleep()
        assert (await driver.read()).snapshot.mode is Mode.SLEEP
        fleet.state(driver.host).wake()  # woken behind the driver's back (web UI, another tool)
        await asyncio.sleep(0.05)
        snap = (await driver.read()).snapshot
    assert snap.is_mining and snap.mode is Mode.NORMAL


async def test_poll_mode_is_cached_and_refreshed(monkeypatch: pytest.MonkeyPatch) -> None:
    import fleetd.drivers.antminer.driver as mod

    async with emulated() as (driver, fleet):
        assert (await driver.read()).snapshot.mode is Mode.NORMAL
        fleet.state(driver.host).mode = "low"
        assert (await driver.read()).snapshot.mode is Mode.NORMAL  # cached: no web request per poll
        monkeypatch.setattr(mod, "MODE_REFRESH_S", 0.0)
        mod._CONF_MODE[driver._key] = (Mode.NORMAL, 0.0)  # due
        assert (await driver.read()).snapshot.mode is Mode.LOW


async def test_poll_survives_an_unreadable_web_interface() -> None:
    async with emulated(faults=["wrong_password"]) as (driver, _):
        first = (await driver.read()).snapshot
        second = (await driver.read()).snapshot
    assert first.is_mining and first.mode is Mode.UNKNOWN and second.mode is Mode.UNKNOWN
    for snap in (first, second):  # said, not hidden: the web login is refused
        faults = [f for f in snap.errors if f.code == "web_auth_failed"]
        assert len(faults) == 1 and "refused the login" in faults[0].message


async def test_web_auth_fault_clears_once_the_login_works(monkeypatch: pytest.MonkeyPatch) -> None:
    import fleetd.drivers.antminer.driver as mod

    async with emulated(faults=["wrong_password"]) as (driver, fleet):
        assert any(f.code == "web_auth_failed" for f in (await driver.read()).snapshot.errors)
        fleet.emulators[driver.host].state.faults.wrong_password = False
        monkeypatch.setattr(mod, "MODE_REFRESH_S", 0.0)
        mod._CONF_MODE[driver._key] = (Mode.UNKNOWN, 0.0)  # due
        snap = (await driver.read()).snapshot
    assert snap.mode is Mode.NORMAL and not [f for f in snap.errors if f.code == "web_auth_failed"]


async def test_wake_restores_the_mode_before_sleep() -> None:
    async with emulated() as (driver, _):
        await driver._set_mode(await driver._conf(), "3", asyncio.get_running_loop().time() + 3)
        assert conf_mode(await driver.web.get_json("/cgi-bin/get_miner_conf.cgi")) is Mode.LOW
        await driver.sleep()
        # A driver re-created in the same process (the daemon re-detects) still knows the mode.
        again = AntminerDriver(driver.endpoint)
        woke = await again.wake()
        assert woke.mode is Mode.LOW


async def test_wake_restores_the_mode_across_processes(tmp_path, monkeypatch) -> None:
    import fleetd.drivers.antminer.driver as mod
    from fleetd.drivers.antminer import modes

    async with emulated() as (driver, _):
        driver.state_dir = tmp_path
        await driver._set_mode(await driver._conf(), "3", asyncio.get_running_loop().time() + 3)
        await driver.sleep()
        # What a new process (a later `fleetd wake`) starts with: nothing in memory.
        monkeypatch.setattr(mod, "_MODE_BEFORE_SLEEP", {})
        monkeypatch.setattr(modes, "_JOURNALS", {})
        again = AntminerDriver(driver.endpoint)
        again.state_dir = tmp_path
        woke = await again.wake()
        saved, _, torn = modes.read_journal(tmp_path / mod.MODES_FILE)
    assert woke.mode is Mode.LOW
    assert saved == {} and not torn  # forgotten once restored


async def test_unwritable_state_dir_keeps_modes_in_memory(tmp_path) -> None:
    blocker = tmp_path / "file"
    blocker.write_text("")
    async with emulated() as (driver, _):
        driver.state_dir = blocker / "sub"  # cannot be created
        await driver._set_mode(await driver._conf(), "3", asyncio.get_running_loop().time() + 3)
        await driver.sleep()
        woke = await AntminerDriver(driver.endpoint).wake()
    assert woke.mode is Mode.LOW


async def test_slow_acknowledgement_still_verified() -> None:
    timeouts = Timeouts(connect_s=1.0, read_s=0.5, verify_s=4.0, verify_interval_s=0.1)
    async with emulated(conf_delay_s=1.0, timeouts=timeouts) as (driver, _):
        slept = await driver.sleep()
    assert slept.mode is Mode.SLEEP and not slept.is_mining


async def test_ack_without_effect_is_not_complied() -> None:
    timeouts = Timeouts(connect_s=1.0, read_s=1.0, verify_s=1.0, verify_interval_s=0.1)
    async with emulated(faults=["ignore_power_commands"], timeouts=timeouts) as (driver, _):
        loop = asyncio.get_running_loop()
        t0 = loop.time()
        with pytest.raises(NotCompliedError) as err:
            await driver.sleep()
        assert loop.time() - t0 < 2.5
    assert err.value.host == driver.host and err.value.command == "sleep"
    assert "not in effect after 1." in str(err.value) and "(limit 1 s)" in str(err.value)
    # Both re-reads are reported: the configuration (get_miner_conf.cgi) and the telemetry.
    assert re.search(r"configuration says \w+; hashrate [\d.]+ TH/s\)", str(err.value)), str(err.value)


async def test_not_complied_says_how_long_it_really_waited() -> None:
    # An interval that does not divide the limit: the last read is at the limit, not an interval before.
    timeouts = Timeouts(connect_s=1.0, read_s=1.0, verify_s=1.0, verify_interval_s=0.4)
    async with emulated(faults=["ignore_power_commands"], timeouts=timeouts) as (driver, _):
        loop = asyncio.get_running_loop()
        t0 = loop.time()
        with pytest.raises(NotCompliedError) as err:
            await driver.sleep()
        took = loop.time() - t0
    m = re.search(r"not in effect after ([\d.]+) s \(limit 1 s\) \((.+)\)", str(err.value))
    assert m is not None, str(err.value)
    assert 1.0 <= float(m.group(1)) <= took + 0.05  # all the time allowed was used, and no more is claimed
    assert "configuration says sleep" in m.group(2) and "110.00 TH/s" in m.group(2)  # still hashing


async def test_wrong_password_is_auth_error() -> None:
    async with emulated(faults=["wrong_password"]) as (driver, _):
        with pytest.raises(AuthError) as err:
            await driver.sleep()
        assert "/cgi-bin/get_miner_conf.cgi" in str(err.value)
        # Reads need no password.
        assert (await driver.read()).snapshot.is_mining


async def test_configured_password_used() -> None:
    async with emulated(credentials=Credentials("root", "not-root")) as (driver, _):
        with pytest.raises(AuthError):
            await driver.web.get_json("/cgi-bin/get_miner_conf.cgi")


async def test_garbage_is_malformed() -> None:
    async with emulated(faults=["malformed"]) as (driver, _):
        with pytest.raises(MalformedReplyError) as err:
            await driver.read()
    assert err.value.host == driver.host


async def test_dead_miner_times_out() -> None:
    timeouts = Timeouts(connect_s=0.5, read_s=0.3)
    async with emulated(faults=["dead"], timeouts=timeouts) as (driver, _):
        with pytest.raises(DeviceTimeoutError):
            await driver.read()


async def test_slow_miner_times_out() -> None:
    timeouts = Timeouts(connect_s=0.5, read_s=0.3)
    async with emulated(faults=["slow"], timeouts=timeouts) as (driver, _):
        with pytest.raises(DeviceTimeoutError):
            await driver.read()


@pytest.mark.parametrize("quirk", ["brace", "trailing_comma", "inf", "pool_stale", "no_nul"])
async def test_quirky_firmware_still_read(quirk: str) -> None:
    async with emulated(quirks=[quirk]) as (driver, _):
        snap = (await driver.read()).snapshot
    assert len(snap.hashboards) == 3 and snap.pools
    if quirk != "inf":
        assert snap.hashrate_ths == pytest.approx(110.0, rel=0.05)


async def test_board_down_and_fan_failed_reported() -> None:
    async with emulated(faults=["board_down", "fan_failed"]) as (driver, _):
        snap = (await driver.read()).snapshot
    assert [b.ok for b in snap.hashboards].count(False) == 1
    assert 0 in [f.rpm for f in snap.fans]
    components = {e.component for e in snap.errors}
    assert {Component.BOARD, Component.FAN} <= components


async def test_raw_responses_round_trip_through_parse() -> None:
    async with emulated("Antminer S21") as (driver, _):
        raw = await driver.raw_responses()
        reading = await driver.read()
    assert {"rpc_version", "rpc_summary", "rpc_stats", "rpc_pools"} <= set(raw)
    assert {"web_get_miner_conf.cgi", "web_get_system_info.cgi"} <= set(raw)
    parsed = AntminerDriver.parse_responses(raw, host=driver.host)
    assert parsed.identity.model == reading.identity.model
    assert parsed.snapshot.hashrate_ths == pytest.approx(reading.snapshot.hashrate_ths, rel=0.01)
    assert parsed.snapshot.mode is Mode.NORMAL


async def test_generic_driver_reads_an_antminer() -> None:
    async with emulated() as (driver, _):
        generic = CGMinerDriver(driver.endpoint)
        reading = await generic.read()
    assert reading.identity.driver == "cgminer" and reading.identity.model == "Antminer S19 Pro"
    assert reading.snapshot.hashrate_ths == pytest.approx(110.0, rel=0.05)


async def test_reboot() -> None:
    async with emulated() as (driver, fleet):
        emu = fleet.emulators[driver.host]
        emu.state.started_at -= 3600.0  # up for an hour
        before = (await driver.read()).snapshot.uptime_s
        await driver.reboot()
        after = (await driver.read()).snapshot.uptime_s
    assert before is not None and before >= 3600
    assert after is not None and after < 60  # the miner restarted: uptime began again


def _fixture_replies(folder_name: str = "antminer_s19pro_bmminer") -> dict[str, object]:
    import json
    from pathlib import Path

    folder = Path(__file__).resolve().parent.parent / "fixtures" / "devices" / folder_name
    replies: dict[str, object] = {
        f.name.removeprefix("rpc_").removesuffix(".json"): json.loads(f.read_text())
        for f in folder.glob("rpc_*.json")
    }
    replies["pools"] = {"STATUS": [{"STATUS": "S", "Code": 7, "Msg": "0 Pool(s)"}], "POOLS": [], "id": 1}
    return replies


@contextlib.asynccontextmanager
async def fake_bmminer(
    joins: bool, folder: str = "antminer_s19pro_bmminer"
) -> AsyncIterator[tuple[str, list[str]]]:
    """A byte-level fake of BMMiner answering from a real capture folder; logs each request."""
    import json

    replies = _fixture_replies(folder)
    log: list[str] = []
    invalid = {"STATUS": [{"STATUS": "E", "Code": 14, "Msg": "Invalid command"}], "id": 1}

    async def handler(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        cmd = json.loads(await reader.read(4096))["command"]
        log.append(cmd)
        if "+" in cmd:
            body = {c: [replies[c]] for c in cmd.split("+")} | {"id": 1} if joins else invalid
        else:
            body = replies.get(cmd, invalid)
        writer.write(json.dumps(body).encode() + b"\0")
        await writer.drain()
        writer.close()

    host = fresh_host()
    server = await asyncio.start_server(handler, host, 4028)
    try:
        yield host, log
    finally:
        server.close()


async def test_poll_is_one_joined_request() -> None:
    async with fake_bmminer(joins=True) as (host, log):
        reading = await AntminerDriver(Endpoint(host, timeouts=FAST)).read()
    assert log == ["version+summary+stats+pools"]
    assert reading.snapshot.hashrate_ths == pytest.approx(110.56689)


async def test_poll_falls_back_to_single_commands_and_remembers() -> None:
    async with fake_bmminer(joins=False) as (host, log):
        driver = AntminerDriver(Endpoint(host, timeouts=FAST))
        first = await driver.read()
        second = await driver.read()
    singles = ["version", "summary", "stats", "pools"]
    assert log == ["version+summary+stats+pools", *singles, *singles]
    assert first.snapshot.hashrate_ths == second.snapshot.hashrate_ths == pytest.approx(110.56689)


async def test_detect_shares_one_version_read_across_the_cgminer_family() -> None:
    async with fake_bmminer(joins=True) as (host, log):
        found = await detect(Endpoint(host, timeouts=FAST))
    assert found is not None and found[0] is AntminerDriver
    assert log == ["version"]  # nothing else asked: the Antminer claims it from that one reply
    async with fake_bmminer(joins=True, folder="cgminer_avalon_a1566") as (host, log):
        found = await detect(Endpoint(host, timeouts=FAST))
    assert found is not None and found[0] is AvalonDriver
    assert found[1].model == "AvalonMiner 15-194"
    assert log.count("version") == 1


async def test_detect_asks_no_driver_when_no_port_accepts(monkeypatch: pytest.MonkeyPatch) -> None:
    import fleetd.drivers as registry

    asked: list[str] = []
    for cls in registry.driver_classes():

        async def probe(endpoint: Endpoint, _name: str = cls.name) -> None:
            asked.append(_name)

        monkeypatch.setattr(cls, "probe", probe)
    assert await detect(Endpoint(fresh_host(), timeouts=FAST)) is None
    assert asked == []


async def test_detect_does_not_wait_for_a_port_that_drops_packets() -> None:
    import socket

    async with emulated() as (driver, _):
        # The v3 port of the same address accepts nothing (full accept queue: SYNs are dropped).
        lsock = socket.socket()
        lsock.bind((driver.host, 0))
        lsock.listen(0)
        port = lsock.getsockname()[1]
        fillers = [socket.socket() for _ in range(4)]
        for s in fillers:
            s.setblocking(False)
            s.connect_ex((driver.host, port))
        try:
            slow = Timeouts(connect_s=5.0, read_s=5.0)
            ep = Endpoint(driver.host, v3_port=port, web_port=driver.endpoint.web_port, timeouts=slow)
            loop = asyncio.get_running_loop()
            t0 = loop.time()
            found = await detect(ep)
            took = loop.time() - t0
        finally:
            for s in fillers:
                s.close()
            lsock.close()
    assert found is not None and found[0] is AntminerDriver
    assert took < 1.0


async def test_detect_finds_a_miner_that_serves_only_the_v3_port() -> None:
    from fleetd.sim.base import MinerState
    from fleetd.sim.models import lookup

    sim = lookup("Whatsminer M60S_VK40")
    miner = sim.emulator_class()(MinerState(spec=sim.spec, jitter=0.0), fresh_host(), {"v3": 4433})
    await miner.start()
    try:
        found = await detect(Endpoint(miner.host, timeouts=FAST))
    finally:
        await miner.stop()
    assert found is not None and found[0].name == "whatsminer" and found[1].api == "btminer-v3"


async def test_a_poll_cut_short_during_the_mode_read_does_not_retry_it_at_every_poll() -> None:
    import socket

    async with fake_bmminer(joins=True) as (host, _):
        lsock = socket.socket()  # the web port drops SYNs: the mode read hangs until its bound
        lsock.bind((host, 0))
        lsock.listen(0)
        fillers = [socket.socket() for _ in range(4)]
        for s in fillers:
            s.setblocking(False)
            s.connect_ex(lsock.getsockname())
        try:
            ep = Endpoint(host, web_port=lsock.getsockname()[1], timeouts=FAST)
            driver = AntminerDriver(ep)
            with pytest.raises(TimeoutError):
                async with asyncio.timeout(0.3):  # the caller's own poll deadline
                    await driver.read()
            async with asyncio.timeout(0.3):
                snap = (await driver.read()).snapshot
        finally:
            for s in fillers:
                s.close()
            lsock.close()
    assert snap.is_mining and snap.mode is Mode.UNKNOWN
