"""Every fixture folder under tests/fixtures/devices/ through its manifest's driver: sane normalized values.

Folders added later (by `fleetd dump-device` or for other drivers) are picked up automatically.
"""

from __future__ import annotations

import json
import math
from pathlib import Path
from typing import Any

import pytest
from fleetd.drivers import driver_class

from fleetd.model import Reading

DEVICES = Path(__file__).resolve().parent.parent / "fixtures" / "devices"
FOLDERS = sorted(p for p in DEVICES.iterdir() if p.is_dir()) if DEVICES.is_dir() else []
MANIFEST_KEYS = ("vendor", "model", "firmware", "driver", "recorded_at", "source")


def load_folder(folder: Path) -> tuple[dict[str, Any], dict[str, Any]]:
    """(manifest, responses keyed like Driver.raw_responses) of a fixture folder."""
    manifest = json.loads((folder / "manifest.json").read_text())
    responses = {
        f.name.removesuffix(".json"): json.loads(f.read_text())
        for f in sorted(folder.glob("*.json"))
        if f.name != "manifest.json"
    }
    return manifest, responses


def parse_folder(folder: Path) -> tuple[dict[str, Any], Reading]:
    manifest, responses = load_folder(folder)
    reading = driver_class(manifest["driver"]).parse_responses(responses, host="192.0.2.1", polled_at=1.0)
    return manifest, reading


def test_there_are_folders() -> None:
    names = {f.name for f in FOLDERS}
    assert {"antminer_s19pro_bmminer", "antminer_s21", "cgminer_avalon_a1566"} <= names


def _finite(value: Any) -> bool:
    if isinstance(value, float):
        return math.isfinite(value)
    if isinstance(value, dict):
        return all(_finite(v) for v in value.values())
    if isinstance(value, (list, tuple)):
        return all(_finite(v) for v in value)
    return True


def _in(value: float | None, lo: float, hi: float) -> bool:
    return value is None or lo <= value <= hi


@pytest.mark.parametrize("folder", FOLDERS, ids=[f.name for f in FOLDERS])
def test_folder_parses_to_sane_values(folder: Path) -> None:
    manifest, _ = load_folder(folder)
    for key in MANIFEST_KEYS:
        assert manifest.get(key), f"manifest.json lacks {key!r}"
    _, reading = parse_folder(folder)
    ident, snap = reading.identity, reading.snapshot

    assert ident.vendor == manifest["vendor"]
    assert ident.driver == manifest["driver"]
    assert ident.model and ident.host == "192.0.2.1"
    assert snap.polled_at == 1.0

    # The whole reading serialises as strict JSON: no NaN/inf, no vendor objects.
    assert _finite(reading.to_dict())
    json.dumps(reading.to_dict(), allow_nan=False)

    for rate in (snap.hashrate_ths, snap.hashrate_avg_ths, snap.expected_hashrate_ths):
        assert _in(rate, 0, 10_000), rate  # TH/s: a single machine is far below 10 PH/s
    assert snap.is_mining == bool(snap.hashrate_ths and snap.hashrate_ths > 0)
    assert _in(snap.power_w, 1, 50_000) and _in(snap.power_limit_w, 1, 50_000)
    assert _in(snap.temp_c, -40, 150) and _in(snap.env_temp_c, -40, 80)
    assert snap.uptime_s is None or snap.uptime_s >= 0

    assert len({b.index for b in snap.hashboards}) == len(snap.hashboards)
    for b in snap.hashboards:
        assert _in(b.hashrate_ths, 0, 5_000) and _in(b.expected_hashrate_ths, 0, 5_000)
        assert _in(b.chips, 0, 2_000) and _in(b.expected_chips, 0, 2_000)
        for t in (b.chip_temp_c, b.board_temp_c, b.inlet_temp_c, b.outlet_temp_c):
            assert _in(t, -40, 150), b
    if snap.hashboards and snap.hashrate_ths:
        board_sum = sum(b.hashrate_ths or 0 for b in snap.hashboards)
        assert board_sum == 0 or 0.5 < board_sum / snap.hashrate_ths < 2, (board_sum, snap.hashrate_ths)
    for f in snap.fans:
        assert _in(f.rpm, 0, 30_000)
    for p in snap.pools:
        assert p.url and p.accepted >= 0 and p.rejected >= 0 and p.stale >= 0
        assert p.status == p.status.lower()
    for e in snap.errors:
        assert e.code and e.message
