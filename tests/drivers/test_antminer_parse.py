"""Exact values from the real Antminer captures, and the parsers' unit and layout handling."""

from __future__ import annotations

import copy
from pathlib import Path

import pytest
from fleetd.drivers.antminer import AntminerDriver
from fleetd.drivers.antminer.driver import is_stock_antminer
from fleetd.drivers.antminer.parse import conf_mode, parse_boards, parse_fans
from fleetd.drivers.cgminer import hashrate_ths, parse_pools, to_ths
from test_fixture_folders import load_folder, parse_folder

from fleetd.model import Component, Mode
from fleetd.transport.errors import MalformedReplyError

DEVICES = Path(__file__).resolve().parent.parent / "fixtures" / "devices"
S19 = DEVICES / "antminer_s19pro_bmminer"
S21 = DEVICES / "antminer_s21"


def test_units_converted_explicitly() -> None:
    assert to_ths(110566.89, "GH") == pytest.approx(110.56689)
    assert to_ths("37603.30", "GH/s") == pytest.approx(37.6033)
    assert to_ths(202266.83, "MH/s") == pytest.approx(0.20226683)
    assert to_ths(197497926.49, "MHS") == pytest.approx(197.49792649)
    assert to_ths(0.2, "TH/s") == 0.2
    assert to_ths(1.5, "PH/s") == 1500.0
    assert to_ths(500_000, "KH/s") == pytest.approx(0.0005)
    assert to_ths("", "GH") is None
    with pytest.raises(ValueError, match="unknown hashrate unit"):
        to_ths(1, "furlongs")


def test_summary_keys_carry_the_unit() -> None:
    assert hashrate_ths({"GHS 5s": 1000.0}, "5s") == 1.0
    assert hashrate_ths({"MHS 5s": 1_000_000.0}, "5s") == 1.0
    assert hashrate_ths({"THS 5s": 1.0}, "5s") == 1.0
    assert hashrate_ths({"GHS av": 2000}, "av") == 2.0
    assert hashrate_ths({}, "5s") is None


def test_s19pro_classic_flat_layout() -> None:
    manifest, reading = parse_folder(S19)
    ident, snap = reading.identity, reading.snapshot
    assert ident.model == "Antminer S19 Pro" == manifest["model"]
    assert ident.firmware == "Tue Dec  6 16:12:30 CST 2022" == manifest["firmware"]
    assert ident.api_version == "3.1" and ident.serial == "8144d5ca79104814"
    assert ident.vendor == "antminer" and ident.api == "cgminer"
    assert snap.hashrate_ths == pytest.approx(110.56689)
    assert snap.hashrate_avg_ths == pytest.approx(111.83485)  # summary's GHS av, not stats'
    assert snap.expected_hashrate_ths == pytest.approx(110.0)
    assert snap.uptime_s == 50474 and snap.is_mining
    assert snap.power_w is None  # stock firmware does not measure it
    assert [b.hashrate_ths for b in snap.hashboards] == pytest.approx([37.6033, 35.53622, 37.42738])
    assert [b.chips for b in snap.hashboards] == [114, 114, 114]  # the empty 4th slot is not a board
    assert [b.expected_chips for b in snap.hashboards] == [114, 114, 114]
    assert [b.chip_temp_c for b in snap.hashboards] == [78, 71, 69]
    assert [b.board_temp_c for b in snap.hashboards] == [73, 66, 64]
    assert all(b.ok for b in snap.hashboards)
    assert [f.rpm for f in snap.fans] == [6000, 5880, 5040, 5040]
    assert snap.temp_c == 78 and snap.errors == () and snap.pools == ()
    assert snap.mode is Mode.UNKNOWN  # RPC alone does not say


def test_s21_chain_array_layout_and_pools() -> None:
    _, reading = parse_folder(S21)
    ident, snap = reading.identity, reading.snapshot
    assert ident.model == "Antminer S21" and ident.firmware == "Thu Jul 11 16:38:25 CST 2024"
    assert snap.hashrate_ths == pytest.approx(203.00701)  # RPC summary GHS 5s
    assert snap.hashrate_avg_ths == pytest.approx(203.67566)
    assert snap.expected_hashrate_ths == pytest.approx(200.0)  # web rate_ideal, GH/s
    assert snap.uptime_s == 59129
    assert [b.hashrate_ths for b in snap.hashboards] == pytest.approx([67.29341, 68.91675, 70.69163])
    assert [b.expected_hashrate_ths for b in snap.hashboards] == pytest.approx([67.525] * 3)
    assert [b.chips for b in snap.hashboards] == [108, 108, 108]
    assert [b.chip_temp_c for b in snap.hashboards] == [73, 72, 73]
    assert [b.board_temp_c for b in snap.hashboards] == [68, 67, 68]
    assert [b.serial for b in snap.hashboards] == [
        "SMTTYRHBDJAAI019D",
        "SMTTYRHBDJAAI019N",
        "SMTTYRHBDJAAI019S",
    ]
    assert [f.rpm for f in snap.fans] == [7000] * 4
    assert snap.psu == {"status": "ok"}
    assert snap.mode is Mode.NORMAL  # bitmain-work-mode "0" in get_miner_conf.cgi
    # Three pool slots, two of them empty ("Deed", no URL): one pool.
    assert len(snap.pools) == 1
    pool = snap.pools[0]
    assert (
        pool.url == "stratum+tcp://stratum.braiins.com:3333" and pool.user == "proto_mining_sw_test_s21-0a5"
    )
    assert pool.status == "alive" and pool.active
    assert (pool.accepted, pool.rejected, pool.stale) == (11187, 9, 0)


def test_pool_status_deed_means_dead_and_stale_percent_key_tolerated() -> None:
    _, responses = load_folder(S21)
    pools = copy.deepcopy(responses["rpc_pools"])
    pools["POOLS"][1]["URL"] = "stratum+tcp://backup.example:3333"
    assert "Pool Stale%%" in pools["POOLS"][1]
    parsed = parse_pools(pools)
    assert [p.status for p in parsed] == ["alive", "dead"]
    assert parsed[1].index == 1 and not parsed[1].active


def test_web_only_reading_units_from_rate_unit() -> None:
    _, responses = load_folder(S21)
    web = {k: v for k, v in responses.items() if k.startswith("web_")}
    web["web_stats.cgi"] = copy.deepcopy(web["web_stats.cgi"])
    stats = web["web_stats.cgi"]["STATS"][0]
    stats["rate_unit"] = "TH/s"
    stats["rate_5s"] = 206.9018
    for chain in stats["chain"]:
        chain["rate_real"] /= 1000
        chain["rate_ideal"] /= 1000
    snap = AntminerDriver.parse_responses(web).snapshot
    # web_summary.cgi (GH/s) answers first; boards come from stats.cgi in TH/s.
    assert snap.hashrate_ths == pytest.approx(206.23869)
    assert [b.hashrate_ths for b in snap.hashboards] == pytest.approx([67.29341, 68.91675, 70.69163])
    assert [b.expected_hashrate_ths for b in snap.hashboards] == pytest.approx([67.525] * 3)


def test_mh_rate_unit_in_flat_stats() -> None:
    _, responses = load_folder(S19)
    stats = copy.deepcopy(responses["rpc_stats"])
    entry = stats["STATS"][1]
    entry["rate_unit"] = "MH"
    entry["chain_rate1"] = "37603300.00"
    boards = parse_boards(stats, mining=True)
    assert boards[0].hashrate_ths == pytest.approx(37.6033)


def test_board_down_and_failed_fan_become_faults() -> None:
    _, responses = load_folder(S19)
    responses = copy.deepcopy(responses)
    entry = responses["rpc_stats"]["STATS"][1]
    entry["chain_rate2"] = "0.00"
    entry["chain_acn2"] = 0
    entry["chain_acs2"] = ""
    entry["chain_acs3"] = entry["chain_acs3"].replace("o", "x", 2)
    entry["fan3"] = 0
    snap = AntminerDriver.parse_responses(responses).snapshot
    assert [b.ok for b in snap.hashboards] == [True, False, False]
    assert snap.hashboards[1].status == "no chips detected; not hashing"
    assert snap.hashboards[2].status == "chips failing"
    kinds = [(e.code, e.component) for e in snap.errors]
    assert ("board", Component.BOARD) in kinds and ("fan_stopped", Component.FAN) in kinds
    assert [f.rpm for f in snap.fans] == [6000, 5880, 0, 5040]


def test_s9_style_fans_use_fan_num() -> None:
    stats = {"STATS": [{"Type": "Antminer S9"}, {"Elapsed": 1, "fan_num": 2, "fan1": 0, "fan3": 6000,
                                                 "fan6": 5880, "fan8": 0}]}  # fmt: skip
    assert [f.rpm for f in parse_fans(stats)] == [6000, 5880]


def test_sleeping_miner_has_no_board_faults() -> None:
    _, responses = load_folder(S19)
    responses = copy.deepcopy(responses)
    responses["rpc_summary"]["SUMMARY"][0]["GHS 5s"] = 0
    for n in (1, 2, 3):
        responses["rpc_stats"]["STATS"][1][f"chain_rate{n}"] = "0.00"
    responses["web_get_miner_conf.cgi"] = {"miner-mode": "1", "bitmain-work-mode": "1"}
    snap = AntminerDriver.parse_responses(responses).snapshot
    assert not snap.is_mining and snap.mode is Mode.SLEEP
    assert snap.errors == ()


def test_conf_mode_values() -> None:
    assert conf_mode({"bitmain-work-mode": "1"}) is Mode.SLEEP
    assert conf_mode({"miner-mode": 0, "bitmain-work-mode": "1"}) is Mode.NORMAL  # miner-mode wins
    assert conf_mode({"miner-mode": "3"}) is Mode.LOW
    assert conf_mode({"miner-mode": "7"}) is Mode.UNKNOWN
    assert conf_mode({}) is Mode.UNKNOWN


def test_identity_extras_from_system_info() -> None:
    _, responses = load_folder(S19)
    info = {"minertype": "Antminer S19 Pro", "macaddr": "02:AB:CD:EF:01:23", "hostname": "Antminer"}
    ident = AntminerDriver.parse_responses({**responses, "web_get_system_info.cgi": info}).identity
    assert ident.mac == "02:ab:cd:ef:01:23" and ident.hostname == "Antminer"


def test_stock_detection() -> None:
    _, responses = load_folder(S19)
    assert is_stock_antminer(responses["rpc_version"])
    lux = copy.deepcopy(responses["rpc_version"])
    lux["VERSION"][0]["LUXminer"] = "2025.4.8"
    assert not is_stock_antminer(lux)
    avalon = {"VERSION": [{"CGMiner": "4.11.1", "PROD": "AvalonMiner 15-194"}]}
    assert not is_stock_antminer(avalon)


def test_nonsense_content_is_malformed_with_host() -> None:
    with pytest.raises(MalformedReplyError) as err:
        AntminerDriver.parse_responses(
            {"rpc_stats": {"STATS": [{"chain_acn1": 1, "chain_rate1": "5", "rate_unit": "bogus"}]}}, host="h"
        )
    assert err.value.host == "h"
