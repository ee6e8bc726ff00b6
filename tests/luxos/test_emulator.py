"""The LuxOS emulator: captured replies in the capture's shape, and the session rules."""

from __future__ import annotations

import pytest
from fleetd.drivers.luxos import LuxOSDriver

from tests.conftest import load_fixture
from tests.luxos.conftest import Start
from tests.sim.helpers import api
from tests.sim.test_capture_fidelity import shape_diff

MODEL = "Antminer S19k Pro"


async def test_profiles_reply_is_the_capture(start: Start) -> None:
    _, endpoint = await start(MODEL)
    reply = await api(endpoint.host, "profiles")
    captured = load_fixture("luxos_s19kpro_profiles.json")
    assert shape_diff(reply, captured) == []
    assert reply["PROFILES"] == captured["PROFILES"]
    ours, theirs = reply["STATUS"][0], captured["STATUS"][0]
    assert list(ours) == list(theirs)  # field order as captured
    assert (ours["STATUS"], ours["Code"], ours["Msg"]) == (theirs["STATUS"], theirs["Code"], theirs["Msg"])
    assert ours["Description"].startswith("LUXminer ")


@pytest.mark.parametrize("command", ["version", "config", "power", "fans", "pools"])
async def test_replies_have_the_capture_shape(start: Start, command: str) -> None:
    _, endpoint = await start(MODEL)
    reply = await api(endpoint.host, command)
    captured = load_fixture(f"luxos_s19kpro_{command}.json")
    assert shape_diff(reply, captured) == []
    section = next(k for k in captured if k not in ("STATUS", "id", "FANCTRL"))
    assert all(list(item) == list(captured[section][0]) for item in reply[section])  # field order
    ours, theirs = reply["STATUS"][0], captured["STATUS"][0]
    assert (ours["STATUS"], ours["Code"]) == (theirs["STATUS"], theirs["Code"])
    assert ours["Msg"] == theirs["Msg"].replace("4 ", f"{len(reply[section])} ")  # "4 Pool(s)", "4 Fan(s)"
    if command == "config":
        item = reply["CONFIG"][0]
        assert (item["Model"], item["IPAddr"], item["RedLed"]) == (MODEL, endpoint.host, "auto")
    if command == "fans":
        assert [f["FAN"] for f in reply["FANS"]] == [f["FAN"] for f in captured["FANS"]]


async def test_pyasic_reads_the_emulator_as_luxos(start: Start) -> None:
    """pyasic 0.79, an independent client, takes it for LuxOS and reads what our driver reads."""
    pyasic = pytest.importorskip("pyasic")
    _, endpoint = await start(MODEL)
    found = await pyasic.get_miner(endpoint.host)
    assert type(found).__name__ == "LUXMinerS19kPro"
    data = await found.get_data()
    snap = await LuxOSDriver(endpoint).snapshot()
    assert data.is_mining and data.fans and [f.speed for f in data.fans] == [f.rpm for f in snap.fans]
    assert data.wattage_limit == snap.power_limit_w and data.hashrate is not None
    assert float(data.hashrate) == pytest.approx(snap.hashrate_ths, rel=0.05)


async def test_every_reply_names_luxminer(start: Start) -> None:
    _, endpoint = await start(MODEL)
    for command in ("version", "summary", "stats", "pools", "power", "config", "fans", "tempctrl", "atm"):
        reply = await api(endpoint.host, command)
        assert reply["STATUS"][0]["STATUS"] == "S", command
        assert reply["STATUS"][0]["Description"].startswith("LUXminer "), command
    assert "LUXminer" in (await api(endpoint.host, "version"))["VERSION"][0]


async def test_one_session_at_a_time(start: Start) -> None:
    miner, endpoint = await start(MODEL)
    host = endpoint.host
    sid = (await api(host, "logon"))["SESSION"][0]["SessionID"]
    assert (await api(host, "logon"))["STATUS"][0]["STATUS"] == "E"
    assert (await api(host, "curtail", "wrong,sleep"))["STATUS"][0]["Msg"] == "Invalid session id"
    assert (await api(host, "curtail", "sleep"))["STATUS"][0]["STATUS"] == "E"
    assert not miner.state.sleeping
    assert (await api(host, "curtail", f"{sid},sleep"))["STATUS"][0]["STATUS"] == "S"
    assert miner.state.sleeping
    assert (await api(host, "logoff", sid))["STATUS"][0]["STATUS"] == "S"
    assert (await api(host, "session"))["SESSION"][0]["SessionID"] == ""
    assert (await api(host, "logon"))["STATUS"][0]["STATUS"] == "S"


async def test_a_session_lapses_when_unused(start: Start) -> None:
    _, endpoint = await start(MODEL, session_ttl_s=-1.0)  # lapses at once
    assert (await api(endpoint.host, "logon"))["STATUS"][0]["STATUS"] == "S"
    assert (await api(endpoint.host, "logon"))["STATUS"][0]["STATUS"] == "S"


async def test_unknown_profile_refused(start: Start) -> None:
    miner, endpoint = await start(MODEL)
    sid = (await api(endpoint.host, "logon"))["SESSION"][0]["SessionID"]
    reply = await api(endpoint.host, "profileset", f"{sid},999MHz")
    assert reply["STATUS"][0]["STATUS"] == "E" and miner.profile == "default"
