"""VNish parsers on replies in the shapes of VNish's OpenAPI document (1.2.6) and of firmware 1.2.0.

No licensable capture of a VNish reply exists (tests/fixtures/PROVENANCE.md): the values here are ours,
the shapes the document's (tests/vnish/test_openapi.py checks the emulator against it).
"""

from __future__ import annotations

import copy
from typing import Any

import pytest
from fleetd.drivers.vnish.parse import (
    INFO,
    PERF,
    PRESETS,
    SUMMARY,
    Preset,
    is_vnish,
    parse_identity,
    parse_presets,
    parse_snapshot,
    pick_preset,
)

from fleetd.model import Mode

INFO_REPLY: dict[str, Any] = {
    "miner": "Antminer S19",
    "model": "s19",
    "fw_name": "Vnish",
    "fw_version": "1.2.6",
    "hr_measure": "GH/s",
    "system": {"network_status": {"mac": "FE:07:26:3C:BE:1B", "hostname": "antminer"}},
    "serial": "N/A",
}
SUMMARY_REPLY: dict[str, Any] = {
    "miner": {
        "miner_status": {
            "miner_state": "mining",
            "miner_state_time": 3600,
            "description": "",
            "failure_code": 0,
        },
        "miner_type": "Antminer S19 (Vnish 1.2.6)",
        "hr_stock": 95000.0,
        "average_hashrate": 94.8,
        "instant_hashrate": 95.12,
        "hr_realtime": 95123.4,
        "hr_nominal": 95000.0,
        "hr_average": 94800.0,
        "pcb_temp": {"min": 50, "max": 58},
        "chip_temp": {"min": 62, "max": 70},
        "power_consumption": 3240,
        "pools": [
            {"id": 0, "url": "DevFee", "pool_type": "DevFee", "user": "DevFee", "status": "working"},
            {
                "id": 1,
                "url": "stratum+tcp://pool:3333",
                "pool_type": "UserPool",
                "user": "w.1",
                "status": "working",
                "accepted": 10,
                "rejected": 1,
                "stale": 0,
            },
        ],
        "cooling": {"fan_num": 2, "fans": [{"id": 0, "rpm": 5800}, {"id": 1, "rpm": 0}]},
        "chains": [
            {
                "id": 1,
                "hashrate_rt": 31700.0,
                "hashrate_ideal": 31666.0,
                "pcb_temp": {"max": 58},
                "chip_temp": {"max": 70},
                "status": {"state": "mining"},
            },
            {
                "id": 2,
                "hashrate_rt": 0.0,
                "hashrate_ideal": 31666.0,
                "pcb_temp": {"max": 0},
                "chip_temp": {"max": 0},
                "status": {"state": "failure"},
            },
        ],
    }
}
PRESETS_REPLY = [
    {"name": "disabled", "pretty": "Disabled", "status": "untuned"},
    {"name": "1100", "pretty": "1100 watt ~ 53 TH", "status": "untuned"},
    {"name": "1900", "pretty": "1900 watt ~ 73 TH", "status": "tuned"},
    {"name": "2950", "pretty": "2950 watt ~ 99 TH", "status": "untuned"},
    {"pretty": "nameless"},
]


def test_identity() -> None:
    assert is_vnish(INFO_REPLY) and not is_vnish({"fw_name": "Braiins"}) and not is_vnish(None)
    ident = parse_identity({INFO: INFO_REPLY}, host="10.0.0.9")
    assert (ident.vendor, ident.model, ident.firmware, ident.driver) == (
        "antminer",
        "Antminer S19",
        "VNish 1.2.6",
        "vnish",
    )
    assert ident.mac == "fe:07:26:3c:be:1b" and ident.serial == "" and ident.hostname == "antminer"


def test_snapshot_units_boards_fans_pools() -> None:
    snap = parse_snapshot({INFO: INFO_REPLY, SUMMARY: SUMMARY_REPLY}, polled_at=3.0)
    assert snap.hashrate_ths == pytest.approx(95.1234) and snap.hashrate_avg_ths == pytest.approx(94.8)
    assert snap.expected_hashrate_ths == pytest.approx(95.0) and snap.power_w == 3240.0
    assert snap.is_mining and snap.mode is Mode.NORMAL and snap.uptime_s == 3600 and snap.temp_c == 70.0
    assert [b.ok for b in snap.hashboards] == [True, False]
    assert [p.url for p in snap.pools] == ["stratum+tcp://pool:3333"]  # the DevFee pseudo-pool is left out
    assert {f.code for f in snap.errors} == {"board", "fan_stopped"}


def test_paused_miner_reads_as_asleep() -> None:
    summary = copy.deepcopy(SUMMARY_REPLY)
    summary["miner"]["miner_status"]["miner_state"] = "stopped"
    summary["miner"]["hr_realtime"] = 0.0
    summary["miner"]["power_consumption"] = 20
    snap = parse_snapshot({INFO: INFO_REPLY, SUMMARY: summary})
    assert snap.mode is Mode.SLEEP and not snap.is_mining and snap.hashrate_ths == 0.0


def test_firmware_1_2_0_layout() -> None:
    """1.2.0 has no hr_* fields (instant/average hashrate in TH/s), watts in power_usage and per-board
    sensor lists instead of pcb_temp."""
    summary: dict[str, Any] = {
        "miner": {
            "miner_status": {"miner_state": "mining", "miner_state_time": 120},
            "average_hashrate": 88.5,
            "instant_hashrate": 90.25,
            "pcb_temp": {"min": 20, "max": 41},
            "chip_temp": {"min": 30, "max": 55},
            "power_usage": 3400.0,
            "power_efficiency": 38.4,
            "chains": [
                {
                    "id": 1,
                    "hashrate_ideal": 30000.0,
                    "hashrate_rt": 30100.5,
                    "pcb_temp_sens": [{"status": "measure", "temp": 40}, {"status": "error", "temp": 99}],
                    "chip_temp_sens": [{"status": "measure", "temp": 54}],
                    "chip_temp": {"min": 30, "max": 54},
                    "status": {"state": "mining", "description": ""},
                }
            ],
        }
    }
    snap = parse_snapshot({INFO: INFO_REPLY, SUMMARY: summary})
    assert snap.hashrate_ths == pytest.approx(90.25) and snap.hashrate_avg_ths == pytest.approx(88.5)
    assert snap.power_w == 3400.0 and snap.is_mining and snap.mode is Mode.NORMAL
    board = snap.hashboards[0]
    assert board.hashrate_ths == pytest.approx(30.1005) and board.board_temp_c == 40.0  # "error" skipped
    assert board.chip_temp_c == 54.0


def test_power_usage_is_not_watts_where_power_consumption_exists() -> None:
    """The document calls power_usage "same as power_efficiency" from 1.2.6 on: never read as watts there."""
    summary = copy.deepcopy(SUMMARY_REPLY)
    summary["miner"]["power_usage"] = 34
    assert parse_snapshot({INFO: INFO_REPLY, SUMMARY: summary}).power_w == 3240.0


def test_failure_state_is_a_fault_not_sleep() -> None:
    summary = copy.deepcopy(SUMMARY_REPLY)
    summary["miner"].update(hr_realtime=0.0, power_consumption=0, chains=[])
    summary["miner"]["miner_status"] = {
        "miner_state": "failure",
        "miner_state_time": 1,
        "description": "Failed to parse miner configuration",
        "failure_code": 1002,
    }
    snap = parse_snapshot({INFO: INFO_REPLY, SUMMARY: summary})
    assert snap.mode is Mode.UNKNOWN and not snap.is_mining
    assert [(f.code, f.message) for f in snap.errors] == [
        ("vnish_1002", "miner failure: Failed to parse miner configuration")
    ]


def test_presets_and_the_power_limit() -> None:
    presets = parse_presets(PRESETS_REPLY)
    assert [p.name for p in presets] == ["disabled", "1100", "1900", "2950"]
    assert presets[2] == Preset("1900", 1900.0, 73.0, "tuned") and presets[0].watts is None
    assert pick_preset(presets, 2000) == presets[2] and pick_preset(presets, 1000) is None
    assert parse_presets({"not": "a list"}) == () and parse_presets("x") == ()
    perf = {"current_preset": {"name": "1900", "pretty": "1900 watt ~ 73 TH"}}
    snap = parse_snapshot({INFO: INFO_REPLY, SUMMARY: SUMMARY_REPLY, PERF: perf, PRESETS: PRESETS_REPLY})
    assert snap.power_limit_w == 1900.0
    stock = parse_snapshot({SUMMARY: SUMMARY_REPLY, PERF: {"current_preset": {"name": "disabled"}}})
    assert stock.power_limit_w is None


def test_garbage_is_none_not_zero() -> None:
    snap = parse_snapshot({SUMMARY: {"miner": {"hr_realtime": "fast", "power_consumption": 1e9}}})
    assert snap.hashrate_ths is None and snap.power_w is None and snap.mode is Mode.UNKNOWN
    assert parse_snapshot({}).hashboards == ()
