"""LuxOS pure parsers on the captured profiles and on hostile numbers."""

from __future__ import annotations

import math

import pytest
from fleetd.drivers.antminer import AntminerDriver
from fleetd.drivers.luxos import LuxOSDriver
from fleetd.drivers.luxos.parse import (
    is_luxos,
    parse_profiles,
    parse_snapshot,
    parse_thermal,
    pick_profile,
    sane_watts,
)

from fleetd.model import Mode
from tests.conftest import load_fixture

LUX_VERSION = {
    "STATUS": [{"STATUS": "S", "Code": 22, "Msg": "LUXminer versions", "Description": "LUXminer 2025.4.8"}],
    "VERSION": [{"API": "3.7", "LUXminer": "2025.4.8.220305-57b389c7", "Miner": "2025.4.8.220305",
                 "Type": "Antminer S19k Pro"}],
}  # fmt: skip


def test_captured_profiles_parse_in_firmware_order() -> None:
    profiles = parse_profiles(load_fixture("luxos_s19kpro_profiles.json"))
    assert len(profiles) == 25
    assert (profiles[0].name, profiles[0].watts, profiles[0].hashrate_ths) == ("190MHz", 784.0, 39.2)
    default = next(p for p in profiles if p.name == "default")
    assert (default.watts, default.hashrate_ths, default.frequency_mhz) == (2794.0, 121.8, 590.0)
    assert [p.watts for p in profiles] == sorted(p.watts or 0 for p in profiles)


@pytest.mark.parametrize(
    ("watts", "name"),
    [(2000, "440MHz"), (1916, "440MHz"), (784, "190MHz"), (2794, "default"), (100_000, "790MHz")],
)
def test_pick_profile_takes_the_most_power_within_the_limit(watts: int, name: str) -> None:
    chosen = pick_profile(parse_profiles(load_fixture("luxos_s19kpro_profiles.json")), watts)
    assert chosen is not None and chosen.name == name


def test_pick_profile_none_below_the_lowest() -> None:
    assert pick_profile(parse_profiles(load_fixture("luxos_s19kpro_profiles.json")), 783) is None
    assert pick_profile((), 5000) is None


def test_detection_tells_luxos_from_stock() -> None:
    stock = load_fixture("antminer_s19pro_version.json")
    assert is_luxos(LUX_VERSION) and not is_luxos(stock)
    assert LuxOSDriver.from_version(stock) is None
    assert AntminerDriver.from_version(LUX_VERSION) is None
    ident = LuxOSDriver.from_version(LUX_VERSION, host="192.0.2.7")
    assert ident is not None and ident.driver == "luxos" and ident.model == "Antminer S19k Pro"
    assert ident.firmware == "2025.4.8.220305-57b389c7" and ident.host == "192.0.2.7"


@pytest.mark.parametrize("bad", [math.nan, math.inf, -5, 1e300, "abc", None, True, [1]])
def test_impossible_power_becomes_none(bad: object) -> None:
    assert sane_watts(bad) is None
    snap = parse_snapshot({"rpc_power": {"POWER": [{"Watts": bad}]}})
    assert snap.power_w is None


def test_impossible_hashrate_becomes_none() -> None:
    summary = {"SUMMARY": [{"GHS 5s": 1e300, "GHS av": "inf", "Elapsed": -3}]}
    snap = parse_snapshot({"rpc_summary": summary})
    assert snap.hashrate_ths is None and snap.hashrate_avg_ths is None and snap.uptime_s is None
    assert not snap.is_mining


def test_limit_is_the_running_profiles_watts_and_idle_power_means_asleep() -> None:
    responses = {
        "rpc_summary": {"SUMMARY": [{"GHS 5s": 0.0, "GHS av": 100_000.0, "Elapsed": 50}]},
        "rpc_power": {"POWER": [{"PSU": False, "Watts": 21}]},
        "rpc_config": {"CONFIG": [{"Profile": "440MHz"}]},
        "rpc_profiles": load_fixture("luxos_s19kpro_profiles.json"),
    }
    snap = parse_snapshot(responses)
    assert snap.power_limit_w == 1916.0 and snap.power_w == 21.0
    assert snap.mode is Mode.SLEEP and not snap.is_mining
    responses["rpc_power"] = {"POWER": [{"Watts": 1500}]}  # not hashing but drawing power: not asleep
    assert parse_snapshot(responses).mode is Mode.UNKNOWN


def test_thermal_settings() -> None:
    thermal = parse_thermal(
        {
            "rpc_tempctrl": {"TEMPCTRL": [{"Dangerous": 110.0, "Hot": 95.0, "Mode": "auto", "Target": 75.0}]},
            "rpc_atm": {"ATM": [{"Enabled": True, "MinProfile": "190MHz"}]},
        }
    )
    assert (thermal.mode, thermal.target_c, thermal.hot_c, thermal.dangerous_c) == ("auto", 75.0, 95.0, 110.0)
    assert thermal.atm_enabled is True
    assert parse_thermal({}).atm_enabled is None
