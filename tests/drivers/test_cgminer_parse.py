"""The generic CGMiner driver's parser on a real non-Antminer capture (AvalonMiner A1566)."""

from __future__ import annotations

from pathlib import Path

import pytest
from fleetd.drivers.cgminer import CGMinerDriver
from test_fixture_folders import load_folder

AVALON = Path(__file__).resolve().parent.parent / "fixtures" / "devices" / "cgminer_avalon_a1566"


def test_avalon_through_generic_driver() -> None:
    # The folder's driver is now `avalon`; the generic driver still reads such a miner read-only.
    _, responses = load_folder(AVALON)
    reading = CGMinerDriver.parse_responses(responses, host="192.0.2.1", polled_at=1.0)
    ident, snap = reading.identity, reading.snapshot
    assert ident.vendor == "generic" and ident.driver == "cgminer" and ident.api == "cgminer"
    assert ident.model == "AvalonMiner 15-194" and ident.firmware == "4.11.1" and ident.api_version == "3.7"
    # No summary and no "MHS 5s": the shortest window (MHS 30s) summed over devices.
    assert snap.hashrate_ths == pytest.approx(197.49792649)
    assert snap.hashrate_avg_ths == pytest.approx(192.79624736)
    assert len(snap.hashboards) == 1 and snap.hashboards[0].ok
    assert snap.hashboards[0].chip_temp_c is None  # -273 means no sensor
    assert snap.temp_c is None and snap.is_mining


def test_generic_summary_and_dead_device() -> None:
    responses = {
        "rpc_version": {"VERSION": [{"CGMiner": "4.9.0", "API": "3.4"}]},
        "rpc_summary": {"SUMMARY": [{"MHS 5s": 14_000_000.0, "MHS av": 13_500_000.0, "Elapsed": 100}]},
        "rpc_devs": {
            "DEVS": [
                {"ASC": 0, "Status": "Alive", "MHS 5s": 14e6, "Temperature": 70},
                {"ASC": 1, "Status": "Dead", "MHS 5s": 0, "Temperature": 0},
            ]
        },
    }
    reading = CGMinerDriver.parse_responses(responses)
    assert reading.identity.model == "CGMiner" and reading.identity.firmware == "4.9.0"
    snap = reading.snapshot
    assert snap.hashrate_ths == 14.0 and snap.hashrate_avg_ths == 13.5 and snap.uptime_s == 100
    assert [b.ok for b in snap.hashboards] == [True, False]
    assert snap.errors[0].code == "device_dead" and snap.temp_c == 70


def test_generic_driver_has_no_capabilities() -> None:
    from fleetd.drivers.base import Endpoint

    assert CGMinerDriver(Endpoint("192.0.2.1")).capabilities == frozenset()
