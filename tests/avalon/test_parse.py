"""Avalon pure parsers on the captures (A1566 `estats`, Avalon Q `stats`) and on hostile numbers."""

from __future__ import annotations

from pathlib import Path

import pytest
from fleetd.drivers.avalon import AvalonDriver
from fleetd.drivers.avalon.parse import is_avalon, mm_fields, parse_snapshot, softoff, work_level

from fleetd.model import Mode
from fleetd.transport.cgminer import check_status
from tests.conftest import load_fixture

A1566 = Path(__file__).resolve().parent.parent / "fixtures" / "devices" / "cgminer_avalon_a1566"


def _a1566() -> dict:
    return {f.name.removesuffix(".json"): load_fixture(f"devices/{A1566.name}/{f.name}")
            for f in A1566.glob("rpc_*.json")}  # fmt: skip


def test_bracket_fields_of_both_layouts() -> None:
    a15 = mm_fields(load_fixture("avalon_a1566_estats.json")["STATS"][0]["MM ID0"])
    assert a15["GHSspd"] == "199241.07" and a15["MGHS"] == "59459.52 61407.83 63139.66"
    assert a15["SYSTEMSTATU"] == "Work: In Work, Hash Board: 3" and a15["WORKMODE"] == "1"
    assert a15["FACOPTS0"] == "" and a15["PVT_T0"].split()[:2] == ["66", "65"]
    q = mm_fields(load_fixture("avalon_q_stats.json")["STATS"][0]["MM ID0:Summary"])
    assert q["Ver"] == "Q-25052801_14a19a2" and q["Nonce Mask"] == "25" and q["SoftOFF"] == "4"
    hb = mm_fields(load_fixture("avalon_q_stats.json")["STATS"][0]["HBinfo"])
    assert len(hb["PVT_T0"].split()) == 160
    assert mm_fields(None) == {} and mm_fields("no brackets") == {}


def test_a1566_folder() -> None:
    reading = AvalonDriver.parse_responses(_a1566(), host="192.0.2.1", polled_at=1.0)
    ident, snap = reading.identity, reading.snapshot
    assert (ident.vendor, ident.driver, ident.model) == ("avalon", "avalon", "AvalonMiner 15-194")
    assert ident.firmware == "24102401_25462b2_9ddf522" and ident.mac == "12:34:56:78:90:12"
    assert ident.serial == "020100008c699117"
    assert snap.hashrate_ths == pytest.approx(199.24107) and snap.hashrate_avg_ths == pytest.approx(184.007)
    assert snap.is_mining and snap.mode is Mode.NORMAL
    assert snap.power_w == 3731 and snap.power_limit_w == 3515
    assert [b.chip_temp_c for b in snap.hashboards] == [77, 78, 77]
    assert sum(b.hashrate_ths or 0 for b in snap.hashboards) == pytest.approx(199.24107)
    assert all(b.ok and b.chips == 160 for b in snap.hashboards)
    assert [f.rpm for f in snap.fans] == [4275, 4282]
    assert snap.temp_c == 78 and snap.env_temp_c == 31 and snap.uptime_s == 975 and snap.errors == ()


def test_avalon_q_soft_off() -> None:
    snap = parse_snapshot({"rpc_stats": load_fixture("avalon_q_stats.json")})
    assert snap.hashrate_ths == 0.0 and not snap.is_mining and snap.mode is Mode.SLEEP
    assert snap.hashrate_avg_ths == pytest.approx(44.49941)
    assert snap.power_w == 146 and snap.power_limit_w == 800
    assert len(snap.hashboards) == 1 and snap.hashboards[0].chip_temp_c == 71
    assert snap.hashboards[0].inlet_temp_c == 27 and snap.env_temp_c == 26
    assert [f.rpm for f in snap.fans] == [0, 0, 0, 0] and snap.errors == ()
    assert softoff(mm_fields("SoftOFF[0] SYSTEMSTATU[Work: In Idle, Hash Board: 1]"))
    assert not softoff(mm_fields("SoftOFF[0] SYSTEMSTATU[Work: In Work, Hash Board: 1]"))


def test_softoff_reply_is_a_success() -> None:
    reply = load_fixture("avalon_q_ascset-softoff.json")
    assert check_status(reply) is reply  # STATUS "I" (info), code 118


def test_hostile_numbers_become_none() -> None:
    mm = "GHSspd[nan] GHSavg[1e300] MGHS[-1 abc] Fan1[-5] Fan2[1e9] WALLPOWER[inf] MPO[-3] TMax[900]"
    mm += " Elapsed[-1]"
    snap = parse_snapshot({"rpc_estats": {"STATS": [{"MM ID0": mm}]}})
    assert snap.hashrate_ths is None and snap.hashrate_avg_ths is None and not snap.is_mining
    assert snap.power_w is None and snap.power_limit_w is None and snap.temp_c is None
    assert [f.rpm for f in snap.fans] == [None, None] and snap.uptime_s is None
    assert parse_snapshot({"rpc_estats": {"STATS": [{"MM ID0": 42}]}}).hashrate_ths is None


def test_detection() -> None:
    assert is_avalon(load_fixture("avalon_a1566_version.json"))
    assert not is_avalon(load_fixture("antminer_s19pro_version.json"))
    assert AvalonDriver.from_version(load_fixture("antminer_s21_version.json")) is None


def test_work_level_only_where_the_layout_has_it() -> None:
    assert work_level({"rpc_stats": load_fixture("avalon_q_stats.json")}) == 0
    assert work_level({"rpc_estats": load_fixture("avalon_a1566_estats.json")}) is None
    assert work_level({}) is None


def test_avalon_q_version_identity() -> None:
    """The Q's version has no VERSION: its firmware is LVERSION; its MAC comes colon-separated."""
    reply = load_fixture("avalon_q_version.json")
    assert is_avalon(reply) and AvalonDriver.from_version(reply) is not None
    ident = AvalonDriver.parse_responses({"rpc_version": reply}).identity
    assert (ident.model, ident.firmware, ident.mac) == ("Avalon Q", "25052801_14a19a2", "aa:bb:cc:dd:ee:ff")
