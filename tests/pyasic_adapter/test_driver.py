"""The pyasic adapter against emulated miners over loopback: reads, verified commands, detection."""

from __future__ import annotations

import json
import sys
from pathlib import Path

import pytest
from fleetd.drivers import detection_classes, driver_class, driver_classes, identify, use_fallbacks
from fleetd.drivers.antminer import AntminerDriver
from fleetd.drivers.base import Endpoint
from fleetd.drivers.pyasic import PyasicDriver
from fleetd.drivers.pyasic.driver import RAW_KEY
from fleetd.drivers.pyasic.parse import identity_from_data, snapshot_from_data
from fleetd.drivers.whatsminer import WhatsminerDriver

from fleetd.cli import main
from fleetd.config import ConfigError, parse_config
from fleetd.model import Capability, Mode
from fleetd.sim.base import Faults
from fleetd.transport.errors import CommandRejectedError, NotCompliedError, UnreachableError

from .conftest import M50S, M60S, S19PRO, Start

pyasic = pytest.importorskip("pyasic")


@pytest.mark.parametrize(("model", "native"), [(S19PRO, AntminerDriver), (M50S, WhatsminerDriver)])
async def test_reads_what_the_native_driver_reads(start: Start, model: str, native: type) -> None:
    miner, ep = await start(model)
    drv = driver_class("pyasic")(ep)
    reading = await drv.read()
    ours = await native(ep).read()
    ident, s, n = reading.identity, reading.snapshot, ours.snapshot
    assert (ident.driver, ident.api, ident.host) == ("pyasic", "pyasic", ep.host)
    assert ident.vendor == ours.identity.vendor
    native_ident = await native(ep).identity()  # the full identity: MAC and serial
    assert ident.mac == native_ident.mac.upper()
    if native is WhatsminerDriver:  # a stock Antminer has two serials; pyasic and fleetd read different ones
        assert ident.serial == native_ident.serial
    assert s.hashrate_ths == pytest.approx(n.hashrate_ths, rel=1e-3)
    assert s.expected_hashrate_ths == pytest.approx(miner.state.spec.hashrate_ths, rel=1e-3)
    assert len(s.hashboards) == len(n.hashboards)
    assert [b.chips for b in s.hashboards] == [b.chips for b in n.hashboards]
    assert [b.hashrate_ths for b in s.hashboards] == pytest.approx(
        [b.hashrate_ths for b in n.hashboards], rel=1e-3
    )
    assert [f.rpm for f in s.fans] == [f.rpm for f in n.fans]
    assert [p.url for p in s.pools if p.url][:1] == [p.url for p in n.pools if p.url][:1]
    assert s.uptime_s is not None and abs(s.uptime_s - (n.uptime_s or 0)) <= 2
    assert s.is_mining and s.mode is Mode.NORMAL
    if native is WhatsminerDriver:
        assert s.power_w == pytest.approx(n.power_w, abs=1) and s.power_limit_w == n.power_limit_w
    assert drv.capabilities == {Capability.SLEEP, Capability.POWER_LIMIT}


async def test_mapping_of_a_minerdata_read_from_an_emulator(start: Start) -> None:
    """The pure mapping on a MinerData pyasic itself built from an emulator, and on its saved form."""
    _, ep = await start(M60S)
    data = await (await pyasic.get_miner(ep.host)).get_data()
    s = snapshot_from_data(data, polled_at=1.0)
    assert s.hashrate_ths == pytest.approx(float(data.hashrate), rel=1e-6)
    assert s.power_w == pytest.approx(data.wattage) and s.power_limit_w == data.wattage_limit
    assert identity_from_data(data).model == "Whatsminer M60S VK40"
    assert s.psu.get("fan_rpm")  # a list of fans on this backend
    drv = PyasicDriver(ep)
    raw = await drv.raw_responses()
    json.dumps(raw)  # what dump-device writes
    again = PyasicDriver.parse_responses(raw, host=ep.host, polled_at=1.0)
    assert again.snapshot.hashrate_ths == pytest.approx(s.hashrate_ths)
    assert again.identity.mac == identity_from_data(data).mac
    await drv.read()
    assert drv.power_limit_range() is None  # pyasic gives the limit in effect, no bounds: power_cap sleeps


@pytest.mark.parametrize("model", [S19PRO, M50S, M60S])
async def test_sleep_and_wake_are_verified(start: Start, model: str) -> None:
    miner, ep = await start(model)
    drv = PyasicDriver(ep)
    slept = await drv.sleep()
    assert miner.state.sleeping and not slept.is_mining and (slept.hashrate_ths or 0.0) == 0.0
    woke = await drv.wake()
    assert not miner.state.sleeping and woke.is_mining and (woke.hashrate_ths or 0) > 0


async def test_wake_restores_low_mode(start: Start) -> None:
    """pyasic resumes in normal mode; the adapter puts the miner back in low power and re-reads it."""
    miner, ep = await start(S19PRO)
    miner.state.mode = "low"
    drv = PyasicDriver(ep)
    assert (await drv.snapshot()).mode is Mode.LOW
    await drv.sleep()
    woke = await drv.wake()
    assert woke.mode is Mode.LOW and woke.is_mining and miner.state.mode == "low"
    # Forgotten once restored: a later sleep from normal mode wakes in normal mode.
    miner.state.mode = "normal"
    await drv.sleep()
    assert (await drv.wake()).mode is Mode.NORMAL and miner.state.mode == "normal"


async def test_low_mode_survives_a_new_process(
    start: Start, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """`fleetd sleep` then a later `fleetd wake` (another process): the mode comes from state_dir."""
    import fleetd.drivers.pyasic.driver as mod
    from fleetd.drivers.antminer import modes

    miner, ep = await start(S19PRO)
    miner.state.mode = "low"
    drv = PyasicDriver(ep)
    drv.state_dir = tmp_path
    await drv.sleep()
    monkeypatch.setattr(mod, "_MODE_BEFORE_SLEEP", {})
    monkeypatch.setattr(modes, "_JOURNALS", {})
    again = PyasicDriver(ep)
    again.state_dir = tmp_path
    woke = await again.wake()
    saved, _, torn = modes.read_journal(tmp_path / modes.MODES_FILE)
    assert woke.mode is Mode.LOW and miner.state.mode == "low"
    assert saved == {} and not torn


async def test_low_mode_not_restored_is_not_complied(start: Start) -> None:
    """The miner acknowledges the resume and the mode and stays asleep: our re-read says so."""
    miner, ep = await start(S19PRO)
    miner.state.mode = "low"
    drv = PyasicDriver(ep)
    await drv.sleep()
    miner.state.faults = Faults(ignore_power_commands=True)
    with pytest.raises(NotCompliedError, match="resume_mining in low mode acknowledged by pyasic"):
        await drv.wake()
    assert miner.state.sleeping


async def test_power_limit_is_verified(start: Start) -> None:
    miner, ep = await start(M50S)
    snap = await PyasicDriver(ep).set_power_limit(3000)
    assert snap.power_limit_w == 3000 and miner.state.power_limit_w == 3000


async def test_power_limit_pyasic_refuses_is_rejected(start: Start) -> None:
    """pyasic has no power limit for stock Antminers: its False is an error, not a wait."""
    miner, ep = await start(S19PRO)
    with pytest.raises(CommandRejectedError, match="set_power_limit"):
        await PyasicDriver(ep).set_power_limit(3000)
    assert miner.state.power_limit_w is None


@pytest.mark.parametrize("model", [S19PRO, M50S])
async def test_ignored_power_commands_are_not_complied(start: Start, model: str) -> None:
    """The miner acknowledges (pyasic returns True) and does nothing: our re-read says so."""
    miner, ep = await start(model, faults=Faults(ignore_power_commands=True))
    drv = PyasicDriver(ep)
    with pytest.raises(NotCompliedError, match="stop_mining acknowledged by pyasic but not in effect"):
        await drv.sleep()
    assert not miner.state.sleeping


async def test_a_miner_that_goes_away_is_unreachable(start: Start) -> None:
    miner, ep = await start(M50S)
    drv = PyasicDriver(ep)
    await drv.read()
    await miner.stop()
    with pytest.raises(UnreachableError):
        await drv.read()


async def test_nothing_there_is_unreachable() -> None:
    from tests.conftest import loopback_host

    from .conftest import BLOCK, FAST

    ep = Endpoint(loopback_host(BLOCK), timeouts=FAST)
    with pytest.raises(UnreachableError, match="pyasic recognises no miner"):
        await PyasicDriver(ep).read()
    assert await PyasicDriver.probe(ep) is None


async def test_detection_uses_pyasic_only_when_enabled(start: Start, monkeypatch: pytest.MonkeyPatch) -> None:
    """Off by default; enabled, it claims what no native driver does, ahead of the read-only cgminer."""
    assert "pyasic" in [c.name for c in driver_classes()]
    assert "pyasic" not in [c.name for c in detection_classes()]
    _, ep = await start(S19PRO)
    # A fleetd without a native Antminer driver: the S19 Pro is then a model no native driver claims.
    monkeypatch.setattr("fleetd.drivers._REGISTRY", ("pyasic:PyasicDriver", "cgminer:CGMinerDriver"))
    found = await identify(ep)
    assert found.driver is not None and found.driver.name == "cgminer"
    use_fallbacks(frozenset({"pyasic"}))
    names = [c.name for c in detection_classes()]
    assert names == ["pyasic", "cgminer"]
    found = await identify(ep)
    assert found.driver is PyasicDriver and found.identity is not None
    assert found.identity.model == "Antminer S19 Pro" and found.identity.vendor == "antminer"


async def test_detection_with_fallback_still_prefers_native_drivers(start: Start) -> None:
    _, ep = await start(M50S)
    use_fallbacks(frozenset({"pyasic"}))
    found = await identify(ep)
    assert found.driver is WhatsminerDriver


def test_config_switch() -> None:
    cfg = parse_config(
        {"drivers": {"pyasic_fallback": True}, "miners": [{"host": "10.0.0.1", "driver": "pyasic"}]}
    )
    assert cfg.drivers.fallbacks() == {"pyasic"}
    assert parse_config({}).drivers.fallbacks() == frozenset()


def test_without_pyasic(monkeypatch: pytest.MonkeyPatch) -> None:
    """pyasic absent: not registered, and configuring it is a clear error naming the extra."""
    monkeypatch.setitem(sys.modules, "pyasic", None)
    assert "pyasic" not in [c.name for c in driver_classes()]
    with pytest.raises(KeyError, match=r"fleetd\[pyasic\]"):
        driver_class("pyasic")
    with pytest.raises(ConfigError) as err:
        parse_config(
            {"drivers": {"pyasic_fallback": True}, "miners": [{"host": "10.0.0.1", "driver": "pyasic"}]}
        )
    text = str(err.value)
    assert "miners[0].driver: the pyasic driver needs pyasic" in text and "drivers.pyasic_fallback" in text


async def test_probe_cli_with_driver_pyasic(start: Start, capsys: pytest.CaptureFixture[str]) -> None:
    _, ep = await start(M50S)
    import asyncio

    code = await asyncio.to_thread(main, ["probe", ep.host, "--driver", "pyasic", "--json"])
    assert code == 0
    out = json.loads(capsys.readouterr().out)
    assert out["identity"]["driver"] == "pyasic" and out["snapshot"]["hashrate_ths"] > 0


class _Client:
    def __init__(self, port: int) -> None:
        self.port, self.pwd, self.username = port, None, None


def test_configured_login_and_ports_reach_pyasic_clients() -> None:
    from types import SimpleNamespace

    from fleetd.drivers.base import Credentials, Login

    miner = SimpleNamespace(make="WhatsMiner", rpc=_Client(4028), web=_Client(80))
    creds = Credentials(vendors={"whatsminer": Login(None, "pw")})
    PyasicDriver(Endpoint("10.0.0.1", api_port=14028, web_port=8080, credentials=creds))._configure(miner)
    assert (miner.rpc.pwd, miner.rpc.port, miner.web.pwd, miner.web.port) == ("pw", 14028, "pw", 8080)

    other = SimpleNamespace(make="Goldshell", rpc=_Client(4028), web=_Client(80))
    creds = Credentials(vendors={"pyasic": Login("admin", "p2")})
    PyasicDriver(Endpoint("10.0.0.2", credentials=creds))._configure(other)
    assert (other.web.username, other.web.pwd, other.rpc.pwd, other.rpc.port) == ("admin", "p2", "p2", 4028)

    untouched = SimpleNamespace(make="AntMiner", rpc=_Client(4028), web=_Client(80))
    PyasicDriver(Endpoint("10.0.0.3"))._configure(untouched)  # nothing set: pyasic keeps its defaults
    assert untouched.web.pwd is None and untouched.rpc.pwd is None


async def test_later_polls_keep_the_identity_read_on_the_first(start: Start) -> None:
    """Polls between identity refreshes read telemetry only; the identity must not look changed."""
    _, ep = await start(S19PRO)
    drv = PyasicDriver(ep)
    first = await drv.read()
    assert first.identity.mac and first.identity.serial and first.identity.firmware
    second = await drv.read()
    assert second.identity == first.identity and second.snapshot.hashrate_ths


async def test_scan_with_pyasic_fallback(
    start: Start, capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    import asyncio

    _, ep = await start(M50S)
    code = await asyncio.to_thread(main, ["scan", ep.host, "--json", "--pyasic-fallback", "--timeout", "3"])
    assert code == 0
    row = json.loads(capsys.readouterr().out.splitlines()[0])
    assert row["driver"] == "whatsminer"  # native drivers still come first
    assert "pyasic" in [c.name for c in detection_classes()]
    monkeypatch.setitem(sys.modules, "pyasic", None)
    assert main(["scan", ep.host, "--pyasic-fallback"]) == 2
    assert "fleetd[pyasic]" in capsys.readouterr().err


async def test_dump_device_records_what_the_parser_reads(
    start: Start, tmp_path: object, capsys: pytest.CaptureFixture[str]
) -> None:
    import asyncio
    from pathlib import Path

    _, ep = await start(M50S)
    args = ["dump-device", ep.host, "--driver", "pyasic", "--out", str(tmp_path), "--name", "cap"]
    assert await asyncio.to_thread(main, args) == 0
    captured = capsys.readouterr()
    assert "warning" not in captured.err
    folder = Path(str(tmp_path)) / "cap"
    raw = json.loads((folder / f"{RAW_KEY}.json").read_text())
    text = json.dumps(raw)
    assert ep.host not in text and "fleetd_sim" not in text  # IPs and pool users redacted
    reading = PyasicDriver.parse_responses({RAW_KEY: raw})
    assert reading.snapshot.hashrate_ths and reading.identity.model == "Whatsminer M50S VH50"


async def test_another_machine_behind_the_address_is_found_again(start: Start) -> None:
    _, ep = await start(M50S)
    drv = PyasicDriver(ep)
    await drv.read()
    found = drv._miner
    drv._identity_items["mac"] = "00:00:00:00:00:01"  # as if the last refresh had read another MAC
    drv._identity_due = 0.0
    reading = await drv.read()
    assert drv._miner is None and reading.identity.mac != "00:00:00:00:00:01"
    await drv.read()
    assert drv._miner is not None and drv._miner is not found
