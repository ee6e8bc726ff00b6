"""Braiins OS parsers on the captured GetMinerStats message and on CGMiner-API replies."""

from __future__ import annotations

import pytest
from fleetd.drivers.braiins import BraiinsDriver
from fleetd.drivers.braiins.parse import (
    DETAILS,
    MINER_CONFIG,
    MINER_STATS,
    is_braiins,
    parse_fans,
    parse_identity,
    parse_miner_stats,
    parse_power_target,
    parse_power_target_bounds,
    parse_snapshot,
    parse_tuner,
)

from fleetd.model import Mode
from tests.conftest import load_fixture

CAPTURE = "braiins_s21pro_grpc-GetMinerStats.json"
BOSER_VERSION = {
    "STATUS": [{"STATUS": "S", "Code": 22}],
    "VERSION": [{"BOSer": "bosminer-plus-tuner 26.04", "API": "3.7"}],
}


def test_miner_stats_capture() -> None:
    stats = parse_miner_stats(load_fixture(CAPTURE))
    assert stats.hashrate_ths == pytest.approx(248.186677, abs=1e-6)  # last_5s, GH/s -> TH/s
    assert stats.hashrate_avg_ths == pytest.approx(244.601276, abs=1e-6)  # since_restart
    assert stats.nominal_hashrate_ths == pytest.approx(252.597583, abs=1e-6)
    assert stats.power_w == 3480.0
    assert stats.efficiency_j_per_th == pytest.approx(14.0687, abs=1e-4)
    assert (stats.accepted, stats.rejected, stats.stale) == (848, 0, 0)


def test_snapshot_from_the_capture_alone() -> None:
    snap = parse_snapshot({MINER_STATS: load_fixture(CAPTURE)}, polled_at=5.0)
    assert snap.is_mining and snap.mode is Mode.NORMAL
    assert snap.hashrate_ths == pytest.approx(248.186677, abs=1e-6)
    assert snap.expected_hashrate_ths == pytest.approx(252.597583, abs=1e-6)
    assert snap.power_w == 3480.0 and snap.power_limit_w is None and snap.polled_at == 5.0


def test_shorter_windows_first_and_cgminer_fallback() -> None:
    capture = load_fixture(CAPTURE)
    del capture["miner_stats"]["real_hashrate"]["last_5s"]
    assert parse_miner_stats(capture).hashrate_ths == pytest.approx(246.571990, abs=1e-6)  # last_15s
    summary = {"SUMMARY": [{"MHS 5s": 120_000_000.0, "MHS av": 119_000_000.0, "Elapsed": 60}]}
    snap = parse_snapshot({"rpc_summary": summary})
    assert snap.hashrate_ths == 120.0 and snap.hashrate_avg_ths == 119.0 and snap.uptime_s == 60


def test_paused_miner_reads_as_asleep() -> None:
    stats = load_fixture(CAPTURE)
    for window in stats["miner_stats"]["real_hashrate"].values():
        window["gigahash_per_second"] = 0.0
    stats["power_stats"]["approximated_consumption"]["watt"] = 18
    snap = parse_snapshot({MINER_STATS: stats})
    assert not snap.is_mining and snap.mode is Mode.SLEEP and snap.hashrate_ths == 0.0


def test_garbage_is_none_not_zero() -> None:
    stats = parse_miner_stats({"miner_stats": {"real_hashrate": {"last_5s": {"gigahash_per_second": "x"}}}})
    assert stats.hashrate_ths is None and stats.power_w is None
    assert parse_miner_stats(None).hashrate_ths is None
    snap = parse_snapshot({MINER_STATS: {"power_stats": {"approximated_consumption": {"watt": -5}}}})
    assert snap.power_w is None and snap.mode is Mode.UNKNOWN


def test_power_target_from_the_configuration() -> None:
    config = {"pool_groups": [], "tuner": {"enabled": True, "tuner_mode": 1, "power_target": {"watt": 3000}}}
    assert parse_power_target(config) == 3000.0
    assert parse_power_target({"tuner": {"enabled": False, "power_target": {"watt": 3000}}}) is None
    assert parse_power_target({"pool_groups": []}) is None and parse_power_target(None) is None
    snap = parse_snapshot({MINER_STATS: load_fixture(CAPTURE), MINER_CONFIG: config})
    assert snap.power_limit_w == 3000.0


def test_detection_tells_bos_from_stock_cgminer() -> None:
    assert is_braiins(BOSER_VERSION)
    assert is_braiins({"VERSION": [{"BOSminer": "0.2.0", "API": "3.7"}]})
    assert not is_braiins({"VERSION": [{"BMMiner": "2.0.0", "API": "3.1", "Type": "Antminer S19"}]})
    assert not is_braiins({"VERSION": [{"CGMiner": "4.11.1", "API": "3.7"}]})
    assert not is_braiins(None)
    ident = BraiinsDriver.from_version(BOSER_VERSION, host="h")
    assert (
        ident is not None and ident.driver == "braiins" and ident.firmware.startswith("bosminer-plus-tuner")
    )
    assert BraiinsDriver.from_version({"VERSION": [{"CGMiner": "4.11.1"}]}) is None


def test_identity_from_the_miner_details() -> None:
    details = {
        "miner_identity": {
            "brand": 1,
            "model": 0,
            "name": "Antminer S21 Pro",
            "miner_model": "Antminer S21 Pro",
        },
        "bos_version": {"current": "26.04", "major": "26.04"},
        "hostname": "bos-01",
        "mac_address": "AA:BB:CC:00:11:22",
        "serial_number": "JYZZ1234",
    }
    ident = parse_identity({"rpc_version": BOSER_VERSION, DETAILS: details}, host="10.0.0.5")
    assert (ident.vendor, ident.model, ident.firmware) == ("antminer", "Antminer S21 Pro", "26.04")
    assert (ident.mac, ident.hostname, ident.serial, ident.host) == (
        "aa:bb:cc:00:11:22",
        "bos-01",
        "JYZZ1234",
        "10.0.0.5",
    )


def test_tunerstatus_gives_consumption_and_limit_when_rest_is_absent() -> None:
    tuner = {"TUNERSTATUS": [{"ApproximateMinerPowerConsumption": 3300, "PowerLimit": 3400}]}
    assert parse_tuner(tuner) == (3300.0, 3400.0)
    assert parse_tuner({"TUNERSTATUS": [{"PowerLimit": 0, "ApproximateMinerPowerConsumption": "x"}]}) == (
        None,
        None,
    )
    summary = {"SUMMARY": [{"MHS 5s": 200_000_000.0}]}
    snap = parse_snapshot({"rpc_summary": summary, "rpc_tunerstatus": tuner})
    assert snap.power_w == 3300.0 and snap.power_limit_w == 3400.0
    # A fresh read's REST replies take over.
    config = {"tuner": {"enabled": True, "power_target": {"watt": 2500}}}
    fresh = parse_snapshot(
        {
            "rpc_summary": summary,
            "rpc_tunerstatus": tuner,
            MINER_STATS: load_fixture(CAPTURE),
            MINER_CONFIG: config,
        }
    )
    assert fresh.power_w == 3480.0 and fresh.power_limit_w == 2500.0


def test_fresh_details_saying_user_pause_mean_asleep_without_a_power_figure() -> None:
    stats = load_fixture(CAPTURE)
    for window in stats["miner_stats"]["real_hashrate"].values():
        window["gigahash_per_second"] = 0.0
    stats["power_stats"] = None  # no consumption figure while paused
    details = {"detailed_status": {"status": {"stopped": {"reason": {"user_pause": {}}}}}}
    assert parse_snapshot({MINER_STATS: stats, DETAILS: details}).mode is Mode.SLEEP
    assert parse_snapshot({MINER_STATS: stats, DETAILS: {}}).mode is Mode.UNKNOWN
    cached = {"rpc_summary": {"SUMMARY": [{"MHS 5s": 0.0}]}, DETAILS: details}
    assert parse_snapshot(cached).mode is Mode.UNKNOWN  # cached details alone do not decide


def test_fans_and_a_stopped_fan_while_mining() -> None:
    fans = {
        "STATUS": [{"STATUS": "S", "Code": 202, "Msg": "3 Fan(s)"}],
        "FANS": [
            {"FAN": 0, "ID": 0, "RPM": 4800, "Speed": 70},
            {"FAN": 1, "ID": 1, "RPM": 0, "Speed": 70},
            {"FAN": 2, "ID": 2, "RPM": 1e9, "Speed": 70},
        ],
        "id": 1,
    }
    assert [(f.index, f.rpm) for f in parse_fans(fans)] == [(0, 4800), (1, 0), (2, None)]
    assert parse_fans(None) == () and parse_fans({"FANS": "x"}) == ()
    summary = {"SUMMARY": [{"MHS 5s": 1.0e8, "Elapsed": 10}]}
    mining = parse_snapshot({"rpc_summary": summary, "rpc_fans": fans})
    assert [e.code for e in mining.errors] == ["fan_stopped"] and len(mining.fans) == 3
    idle = parse_snapshot({"rpc_summary": {"SUMMARY": [{"MHS 5s": 0}]}, "rpc_fans": fans})
    assert idle.errors == ()


def test_paused_by_the_miner_status_enum_of_fresh_details() -> None:
    """BOS 26.04 details carry `status` (3: paused) and no detailed_status."""
    summary = {"SUMMARY": [{"MHS 5s": 0, "Elapsed": 10}]}
    details = load_fixture("braiins_s21pro_rest-miner-details.json")
    paused = {**details, "status": 3}
    stats = {"miner_stats": {}, "power_stats": {"approximated_consumption": {"watt": 900}}}
    fresh = {"rpc_summary": summary, DETAILS: paused, MINER_STATS: stats}
    assert parse_snapshot(fresh).mode is Mode.SLEEP
    assert parse_snapshot({**fresh, DETAILS: details}).mode is Mode.UNKNOWN  # status 2, 900 W, no hashrate
    assert parse_snapshot({"rpc_summary": summary, DETAILS: paused}).mode is Mode.UNKNOWN  # cached: too old


def test_power_target_bounds_from_the_constraints() -> None:
    def reply(lo: object, hi: object) -> dict:
        target = {"default": {"watt": 3480}, "min": {"watt": lo}, "max": {"watt": hi}}
        return {"tuner_constraints": {"default_mode": 1, "power_target": target}}

    assert parse_power_target_bounds(reply(1500, 4000)) == (1500, 4000)
    assert parse_power_target_bounds(reply(4000, 1500)) is None  # inconsistent: not a range
    assert parse_power_target_bounds(reply(None, 4000)) is None
    assert parse_power_target_bounds({"tuner_constraints": None}) is None  # older firmware
    assert parse_power_target_bounds(None) is None
    assert parse_power_target_bounds([1500, 4000]) is None  # type: ignore[arg-type]  # garbage
    assert parse_power_target_bounds(reply("1500", 1e12)) is None  # over any plausible watts
