"""Diagnosis on the real device captures (through their drivers) and on synthetic snapshots."""

from __future__ import annotations

import json
import math
from dataclasses import replace
from pathlib import Path

import pytest
from fleetd.drivers import driver_class

from fleetd.economics.catalog import Catalog, CatalogError
from fleetd.health.diagnosis import diagnose
from fleetd.health.findings import Severity
from fleetd.health.limits import DEFAULT, Limits, LimitsLookup
from fleetd.model import Component, Fan, Fault, Hashboard, Mode, Pool, Reading, Snapshot

DEVICES = Path(__file__).resolve().parent.parent / "fixtures" / "devices"
LOOKUP = LimitsLookup(Catalog.load())


def parse(name: str) -> Reading:
    folder = DEVICES / name
    manifest = json.loads((folder / "manifest.json").read_text())
    responses = {
        f.stem: json.loads(f.read_text()) for f in folder.glob("*.json") if f.name != "manifest.json"
    }
    return driver_class(manifest["driver"]).parse_responses(responses, host="192.0.2.1", polled_at=1.0)


def findings(reading: Reading) -> dict[str, Severity]:
    ident = reading.identity
    out = diagnose(reading.snapshot, LOOKUP(ident.model, ident.vendor), vendor=ident.vendor)
    return {f.key: f.severity for f in out}


@pytest.mark.parametrize(
    "name", ["antminer_s19pro_bmminer", "antminer_s21", "cgminer_avalon_a1566", "whatsminer_m60s-vk40_v3"]
)
def test_healthy_captures_have_no_findings(name: str) -> None:
    assert findings(parse(name)) == {}


def test_whatsminer_error_capture_maps_codes_to_causes() -> None:
    got = findings(parse("whatsminer_fw20210322_with-errors"))
    assert got["vendor_error:code 110"] is Severity.CRITICAL  # intake fan
    assert got["vendor_error:code 600"] is Severity.WARNING  # environment too hot


def test_whatsminer_psu_capture_gives_psu_faults() -> None:
    reading = parse("whatsminer_m60s-vk40_v3_with-errors")
    out = diagnose(reading.snapshot, vendor="whatsminer")
    psu = [f for f in out if f.code == "psu_fault"]
    assert {f.subject for f in psu} == {"code 264", "code 265", "code 266", "code 267", "code 270"}
    assert all(f.component is Component.PSU and f.cause and f.action for f in psu)


def test_avalon_board_and_controller_error_codes_become_findings() -> None:
    folder = DEVICES / "cgminer_avalon_a1566"
    responses = {
        f.stem: json.loads(f.read_text()) for f in folder.glob("*.json") if f.name != "manifest.json"
    }
    estats = json.dumps(responses["rpc_estats"])
    assert "ECHU[0 0 0] ECMM[0]" in estats
    responses["rpc_estats"] = json.loads(estats.replace("ECHU[0 0 0] ECMM[0]", "ECHU[0 512 2048] ECMM[4]"))
    reading = driver_class("avalon").parse_responses(responses, host="192.0.2.1", polled_at=1.0)
    out = {f.key: f for f in diagnose(reading.snapshot, vendor="avalon")}
    for i, code in ((1, 512), (2, 2048)):
        f = out[f"vendor_error:board {i}"]
        assert f.component is Component.BOARD and f"error code {code}" in f.cause and "cables" in f.action
    assert "vendor_error:board 0" not in out
    assert not [k for k in out if k.startswith("board_dead")]  # the boards still hash: not dead
    mm = out["vendor_error:code ECMM:4"]
    assert mm.component is Component.CONTROL_BOARD and "controller" in mm.action


def test_catalog_limits_reach_the_lookup() -> None:
    lim = LOOKUP("Antminer S19 Pro", "antminer")
    assert (lim.chips_per_board, lim.boards, lim.chip_temp_max_c) == (114, 3, 95.0)
    assert LOOKUP("Whatsminer", "whatsminer").chip_temp_max_c == 105.0  # unknown model: vendor default
    assert LOOKUP("", "") is DEFAULT


def test_catalog_rejects_bad_limits() -> None:
    base = {"normal": {"hashrate_ths": 1, "power_w": 1, "source": "x"}}
    with pytest.raises(CatalogError, match="unknown limit 'chip_temp'"):
        Catalog.from_dict({"models": {"m": {**base, "limits": {"chip_temp": 1}}}})
    with pytest.raises(CatalogError, match="must be a number"):
        Catalog.from_dict({"models": {"m": {**base, "limits": {"fan_max_rpm": "fast"}}}})


S19 = Limits(chip_temp_max_c=95, board_temp_max_c=85, fan_max_rpm=6600, boards=3, chips_per_board=114)


def healthy(**changes: object) -> Snapshot:
    boards = tuple(
        Hashboard(i, hashrate_ths=36.7, chips=114, chip_temp_c=75.0, board_temp_c=68.0, status="ok")
        for i in range(3)
    )
    snap = Snapshot(
        hashrate_ths=110.0,
        hashrate_avg_ths=110.0,
        expected_hashrate_ths=110.0,
        is_mining=True,
        mode=Mode.NORMAL,
        hashboards=boards,
        fans=tuple(Fan(i, 5000) for i in range(4)),
        pools=(Pool(0, "stratum+tcp://pool", status="alive", active=True, accepted=1000, rejected=5),),
        env_temp_c=25.0,
    )
    return replace(snap, **changes)


def board(i: int, **changes: object) -> Hashboard:
    return replace(healthy().hashboards[i], **changes)


def codes(snap: Snapshot, **kw: object) -> dict[str, Severity]:
    return {f.key: f.severity for f in diagnose(snap, S19, **kw)}  # type: ignore[arg-type]


def test_healthy_synthetic_is_clean() -> None:
    assert codes(healthy()) == {}


def test_dead_missing_and_degraded_boards() -> None:
    b = healthy().hashboards
    snap = healthy(
        hashboards=(board(0, hashrate_ths=0.0, chips=0), board(1, chips=100), board(2, hashrate_ths=20.0))
    )
    assert codes(snap) == {
        "board_dead:board 0": Severity.CRITICAL,
        "board_missing_chips:board 1": Severity.WARNING,
        "board_degraded:board 2": Severity.WARNING,
    }  # the miner's own hashrate_avg (110) is not low: only the boards speak
    absent = healthy(hashboards=b[:2])
    assert "board_absent:board 2" in codes(absent)


def test_fans_temperatures_pools_restarts() -> None:
    snap = healthy(
        fans=(Fan(0, 0), Fan(1, 6500), Fan(2, 5000), Fan(3, 5000)),
        hashboards=(board(0, chip_temp_c=96.0), board(1, board_temp_c=81.0), board(2)),
        env_temp_c=41.0,
        pools=(Pool(0, "u", status="dead"), Pool(1, "u2", status="alive", accepted=900, rejected=100)),
    )
    got = codes(snap, restarts=4)
    assert got["fan_failed:fan 0"] is Severity.CRITICAL
    assert got["fan_at_limit:fan 1"] is Severity.WARNING
    assert got["overheating:chip"] is Severity.CRITICAL
    assert got["overheating:board"] is Severity.WARNING  # within 5 C of 85
    assert got["inlet_hot:inlet"] is Severity.CRITICAL
    assert got["pool_rejects_high:pool 1"] is Severity.WARNING
    assert "pool_down" not in got  # one pool is alive
    assert got["restarts_frequent"] is Severity.WARNING
    assert "pool_down" in codes(healthy(pools=(Pool(0, "u", status="dead"),)))


def test_hashrate_below_expected_uses_catalog_when_unreported() -> None:
    snap = healthy(expected_hashrate_ths=None, hashrate_avg_ths=80.0, hashrate_ths=80.0)
    assert codes(snap) == {}
    assert codes(snap, nominal_ths=110.0) == {"hashrate_low": Severity.WARNING}
    assert codes(replace(snap, hashrate_avg_ths=40.0), nominal_ths=110.0) == {
        "hashrate_low": Severity.CRITICAL
    }
    assert codes(replace(snap, mode=Mode.LOW), nominal_ths=110.0) == {}  # low mode: normal figure would lie


def test_sleeping_miner_is_not_a_dead_miner() -> None:
    snap = healthy(
        is_mining=False, mode=Mode.SLEEP, hashrate_ths=0.0, hashrate_avg_ths=0.0, fans=(Fan(0, 0),)
    )
    assert codes(snap, nominal_ths=110.0) == {}


@pytest.mark.parametrize("bad", [math.nan, math.inf, -5.0, 1e300, "hot", None, True])
def test_bad_numbers_give_no_findings(bad: object) -> None:
    snap = healthy(
        hashrate_ths=bad,
        hashrate_avg_ths=bad,
        env_temp_c=bad,
        hashboards=tuple(
            board(i, chip_temp_c=bad, board_temp_c=bad, hashrate_ths=bad, chips=bad) for i in range(3)
        ),
        fans=(Fan(0, bad),),  # type: ignore[arg-type]
        pools=(Pool(0, "u", status="alive", accepted=bad, rejected=bad),),  # type: ignore[arg-type]
    )
    assert codes(snap, nominal_ths=bad) == {}  # type: ignore[arg-type]


def test_repeated_vendor_codes_are_one_finding() -> None:
    snap = healthy(
        errors=(Fault("110", "Intake fan", Component.FAN), Fault("110", "Intake fan", Component.FAN))
    )
    assert codes(snap, vendor="whatsminer") == {"vendor_error:code 110": Severity.CRITICAL}
    web = healthy(errors=(Fault("fans:F1", "fan lost", Component.FAN),))
    assert codes(web, vendor="antminer") == {"vendor_error:code fans:F1": Severity.CRITICAL}


def test_a_stopped_fan_is_one_finding_not_also_the_drivers_fault() -> None:
    fans = (Fan(0, 0), Fan(1, 5800))
    snap = healthy(fans=fans, errors=(Fault("fan_stopped", "fan 0 stopped", Component.FAN),))
    assert codes(snap, vendor="antminer") == {"fan_failed:fan 0": Severity.CRITICAL}


def test_a_flagged_board_that_hashes_is_diagnosed_by_its_readings_not_called_dead() -> None:
    weak = board(1, chips=100, hashrate_ths=32.0, ok=False, status="100/114 chips")
    snap = healthy(
        hashboards=(board(0), weak, board(2)),
        errors=(Fault("board", "board 1: 100/114 chips", Component.BOARD),),
    )
    assert codes(snap, vendor="antminer") == {"board_missing_chips:board 1": Severity.WARNING}
    dead = board(2, chips=None, hashrate_ths=None, ok=False, status="no chips detected")
    snap = healthy(
        hashboards=(board(0), board(1), dead),
        errors=(Fault("board", "board 2: no chips detected", Component.BOARD),),
    )
    assert codes(snap, vendor="antminer") == {"board_dead:board 2": Severity.CRITICAL}
