"""Whatsminer parsers on every Whatsminer capture folder (tests/fixtures/devices/whatsminer_*)."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest
from fleetd.drivers.whatsminer import WhatsminerDriver, parse
from fleetd.drivers.whatsminer.error_codes import fault_for

from fleetd.model import Component, Mode

DEVICES = Path(__file__).parent.parent / "fixtures" / "devices"
FOLDERS = sorted(p for p in DEVICES.glob("whatsminer_*") if p.is_dir())


def load(folder: Path) -> dict[str, Any]:
    return {p.stem: json.loads(p.read_text()) for p in folder.glob("rpc_*.json")}


def test_there_are_whatsminer_folders() -> None:
    assert len(FOLDERS) >= 4


@pytest.mark.parametrize("folder", FOLDERS, ids=lambda p: p.name)
def test_every_folder_parses_and_matches_its_manifest(folder: Path) -> None:
    manifest = json.loads((folder / "manifest.json").read_text())
    reading = WhatsminerDriver.parse_responses(load(folder), host="10.0.0.9", polled_at=1.0)
    ident = reading.identity
    assert manifest["vendor"] == ident.vendor == "whatsminer"
    assert manifest["driver"] == ident.driver == "whatsminer"
    assert manifest["api"] == ident.api
    assert ident.host == "10.0.0.9"
    if manifest.get("firmware") and ("rpc_get_version" in load(folder) or ident.api == "btminer-v3"):
        assert ident.firmware == manifest["firmware"]
    json.dumps(reading.to_dict())  # the whole reading serialises


@pytest.mark.parametrize("folder", FOLDERS, ids=lambda p: p.name)
def test_slim_replies_parse_the_same(folder: Path) -> None:
    """What the driver keeps between polls reads exactly as the whole replies do."""
    full = load(folder)
    slim = {k: parse.slim(k, v) for k, v in full.items()}
    assert parse.parse(slim, host="h", polled_at=1.0) == parse.parse(full, host="h", polled_at=1.0)
    assert len(json.dumps(slim)) <= len(json.dumps(full))


def test_v2_capture_values() -> None:
    r = WhatsminerDriver.parse_responses(load(DEVICES / "whatsminer_fw20210322"))
    s, ident = r.snapshot, r.identity
    assert ident.firmware == "20210322.22.REL"
    assert ident.api_version == "whatsminer v1.4.0"
    assert ident.mac == "C4:08:28:00:A4:19"
    assert s.hashrate_ths == pytest.approx(70.668114, abs=1e-5)  # MHS 5s 70668114.52
    assert s.hashrate_avg_ths == pytest.approx(67.753251, abs=1e-5)
    assert s.expected_hashrate_ths == pytest.approx(68.796)  # Factory GHS
    assert s.power_w == 3417 and s.power_limit_w == 3500
    assert s.is_mining and s.mode is Mode.NORMAL
    assert [b.index for b in s.hashboards] == [0, 1, 2]
    assert s.hashboards[1].hashrate_ths == pytest.approx(25.567318, abs=1e-5)
    assert s.hashboards[0].chips == 105 and s.hashboards[0].serial == "H5M14S69129A17K10095"
    assert s.hashboards[2].chip_temp_c == 92.5 and s.hashboards[2].board_temp_c == 71.5
    assert all(b.ok for b in s.hashboards)
    assert [f.rpm for f in s.fans] == [6450, 6480]
    assert s.temp_c == 92.5
    assert s.uptime_s == 10154
    assert len(s.pools) == 3 and s.pools[0].active and s.pools[0].accepted == 2338
    assert s.pools[0].url == "stratum+tcp://btc.example.pool:3333" and s.pools[0].status == "alive"
    assert s.psu["model"] == "P21-12-3600-E" and s.psu["firmware"] == "102220.009"
    assert s.psu["fan_rpm"] == 9060
    assert s.errors == ()


def test_v2_summary_error_codes() -> None:
    s = WhatsminerDriver.parse_responses(load(DEVICES / "whatsminer_fw20210322_with-errors")).snapshot
    got = [(f.code, f.component) for f in s.errors]
    assert got == [("110", Component.FAN), ("600", Component.TEMPERATURE)]
    assert s.errors[0].message == "Intake fan speed error"


def test_v3_capture_values() -> None:
    r = WhatsminerDriver.parse_responses(load(DEVICES / "whatsminer_m60s-vk40_v3"))
    s, ident = r.snapshot, r.identity
    assert ident.model == "Whatsminer M60S_VK40"
    assert ident.firmware == "20251209.16.Rel2" and ident.api_version == "3.0.2"
    assert ident.serial == "BTM3CS40HD24083100000000000000000"
    assert ident.mac == "CE:02:01:00:8C:36" and ident.hostname == "WhatsMiner"
    assert ident.api == "btminer-v3"
    assert s.hashrate_ths == pytest.approx(171.259)  # TH/s already
    assert s.expected_hashrate_ths == pytest.approx(181.051)
    assert s.power_w == 3156.0 and s.power_limit_w == 3600
    assert s.is_mining and s.env_temp_c == 28.5
    assert [b.serial for b in s.hashboards] == [
        "BKM3CSE1404807K42757",
        "BKM3CSE1404812K43675",
        "BKM3CSE1404807K42762",
    ]
    assert s.hashboards[0].chips == 75 and s.hashboards[0].hashrate_ths == pytest.approx(57.2)
    assert [f.rpm for f in s.fans] == [5400, 5280]
    assert s.psu["model"] == "P221B" and s.psu["fan_rpm"] == 6344
    assert len(s.pools) == 3 and s.pools[0].active and s.pools[0].user == "asic-rs.test"


def test_v3_device_info_errors() -> None:
    s = WhatsminerDriver.parse_responses(load(DEVICES / "whatsminer_m60s-vk40_v3_with-errors")).snapshot
    assert [f.code for f in s.errors] == ["264", "265", "266", "267", "270"]
    assert all(f.component is Component.PSU for f in s.errors)
    assert "watch dog" in s.errors[3].message


def test_v3_device_info_alone_gives_identity_and_unknown_mode() -> None:
    r = WhatsminerDriver.parse_responses(
        {"rpc_get.device.info": load(DEVICES / "whatsminer_m60s-vk40_v3")["rpc_get.device.info"]}
    )
    assert r.identity.model == "Whatsminer M60S_VK40"
    assert r.snapshot.mode is Mode.UNKNOWN and r.snapshot.hashrate_ths is None


def test_error_code_list_and_dict_shapes() -> None:
    base = load(DEVICES / "whatsminer_fw20210322")
    for shape in (
        [{"218": "2024-06-15 10:30:00"}, {"110": "2024-06-15 09:15:00"}],
        {"218": "2024-06-15 10:30:00", "110": "2024-06-15 09:15:00"},
    ):
        base["rpc_get_error_code"] = {"STATUS": "S", "Code": 131, "Msg": {"error_code": shape}}
        errs = WhatsminerDriver.parse_responses(base).snapshot.errors
        assert [(f.code, f.component) for f in errs] == [("218", Component.PSU), ("110", Component.FAN)]


@pytest.mark.parametrize(
    ("code", "component", "text"),
    [
        (110, Component.FAN, "Intake fan"),
        (111, Component.FAN, "Exhaust fan"),
        (202, Component.PSU, "overvoltage"),
        (352, Component.TEMPERATURE, "SM2"),
        (531, Component.BOARD, "SM1 not found"),
        (2020, Component.POOL, "Pool 0"),
        (2010, Component.POOL, "disabled"),
        (712, Component.CONTROL_BOARD, "Control board"),
        (9999, Component.OTHER, "9999"),
        ("junk", Component.OTHER, "junk"),
    ],
)
def test_error_code_table(code: Any, component: Component, text: str) -> None:
    f = fault_for(code)
    assert f.component is component and text in f.message and f.code == str(code)


def test_sleeping_v2_miner_reads_as_sleep() -> None:
    r = load(DEVICES / "whatsminer_fw20210322")
    r["rpc_summary"]["SUMMARY"][0]["MHS 5s"] = 0
    r["rpc_status"] = {"STATUS": "S", "Code": 131, "Msg": {"btmineroff": "true"}}
    s = WhatsminerDriver.parse_responses(r).snapshot
    assert s.mode is Mode.SLEEP and not s.is_mining


def test_missing_replies_do_not_crash() -> None:
    r = WhatsminerDriver.parse_responses({})
    assert r.identity.vendor == "whatsminer" and r.snapshot.mode is Mode.UNKNOWN
    r = WhatsminerDriver.parse_responses({"rpc_summary": {"SUMMARY": [{"Power": -1, "MHS 5s": "nan"}]}})
    assert r.snapshot.power_w is None and r.snapshot.hashrate_ths is None
