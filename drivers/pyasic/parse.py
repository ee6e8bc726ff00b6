"""Pure mapping of pyasic's MinerData onto fleetd's normalized Identity and Snapshot.

The mapping works on MinerData's JSON form (`MinerData.model_dump_json()`, what `fleetd dump-device`
saves), so it needs no pyasic import: a MinerData object is dumped first. Hashrates arrive as pyasic
unit objects, `{"rate": r, "unit": {"value": H/s per unit}}` once dumped, and are converted to TH/s.
"""

from __future__ import annotations

import json
import math
from collections.abc import Mapping
from typing import Any

from fleetd.model import Component, Fan, Fault, Hashboard, Identity, Mode, Pool, Snapshot

__all__ = [
    "as_mapping",
    "has_telemetry",
    "identity_from_data",
    "is_sleeping",
    "redacted",
    "snapshot_from_data",
    "ths",
    "vendor_of",
]

_TH = 1e12  # H/s in one TH/s
_AGGREGATES = {
    "temperature_avg",
    "efficiency",
    "efficiency_fract",
    "percent_expected_chips",
    "percent_expected_hashrate",
    "percent_expected_wattage",
    "nominal",
    "total_chips",
}
# pyasic's mining_mode.mode -> ours; tuning modes run at normal clocks with a target.
_MODES = {
    "normal": Mode.NORMAL,
    "sleep": Mode.SLEEP,
    "low": Mode.LOW,
    "high": Mode.HIGH,
    "power_tuning": Mode.NORMAL,
    "hashrate_tuning": Mode.NORMAL,
    "preset": Mode.NORMAL,
    "manual": Mode.NORMAL,
}
# pyasic's make -> the vendor name fleetd's native drivers use.
_VENDORS = {"antminer": "antminer", "whatsminer": "whatsminer", "avalonminer": "avalon"}
# ... and how fleetd's native drivers spell it in model names ("AntMiner" -> "Antminer S19 Pro").
_MAKES = {"antminer": "Antminer", "whatsminer": "Whatsminer"}
_COMPONENTS = (
    (("fan",), Component.FAN),
    (("temp", "overheat", "hot"), Component.TEMPERATURE),
    (("psu", "power supply", "voltage"), Component.PSU),
    (("board", "chain", "chip", "asic"), Component.BOARD),
    (("pool",), Component.POOL),
    (("network", "ethernet"), Component.NETWORK),
    (("control", "eeprom", "sdcard", "flash"), Component.CONTROL_BOARD),
)


def as_mapping(data: Any) -> Mapping[str, Any]:
    """MinerData (or its JSON form already) as the JSON-shaped mapping the mapping reads."""
    if isinstance(data, Mapping):
        return data
    dump = getattr(data, "model_dump_json", None)
    if dump is None:
        raise TypeError(f"expected pyasic MinerData or its JSON form, got {type(data).__name__}")
    # pyasic's own aggregates are not used, and round(inf) in them would fail the whole dump.
    out = json.loads(dump(exclude=_AGGREGATES, warnings=False))  # type drift (int fields holding floats)
    if not isinstance(out, dict):
        raise TypeError("MinerData did not dump to a JSON object")
    return out


def ths(value: Any) -> float | None:
    """A pyasic hashrate (unit object, its JSON form, or a bare number taken as TH/s) in TH/s."""
    if value is None or isinstance(value, bool):
        return None
    if isinstance(value, int | float):
        return _finite(float(value))
    if isinstance(value, Mapping):
        rate, unit = value.get("rate"), value.get("unit")
        per = unit.get("value") if isinstance(unit, Mapping) else unit
    else:
        rate, per = getattr(value, "rate", None), getattr(value, "unit", None)
    rate_f, per_f = _num(rate), _num(per)
    if rate_f is None:
        return None
    if per_f is None or per_f <= 0:
        return rate_f  # no unit: pyasic's documented default, TH/s
    return _finite(rate_f * per_f / _TH)


def vendor_of(make: Any) -> str:
    """fleetd's vendor name for pyasic's make ("AntMiner" -> "antminer"); "generic" when unknown."""
    key = str(make or "").strip().lower().replace(" ", "")
    return _VENDORS.get(key, key or "generic")


def identity_from_data(data: Any, *, host: str = "") -> Identity:
    """Pure: the Identity of a MinerData (model as "<make> <model>", e.g. "Antminer S19 Pro")."""
    d = as_mapping(data)
    make, model = _text(d.get("make")), _text(d.get("model"))
    make = _MAKES.get(make.lower(), make)
    firmware = _text(d.get("firmware"))
    fw_ver = _text(d.get("fw_ver"))
    return Identity(
        vendor=vendor_of(make),
        model=" ".join(p for p in (make, model) if p) or "unknown",
        firmware=" ".join(p for p in (firmware, fw_ver) if p),
        api_version=_text(d.get("api_ver")),
        serial=_text(d.get("serial_number")),
        mac=_text(d.get("mac")).upper(),
        hostname=_text(d.get("hostname")),
        driver="pyasic",
        host=host or _text(d.get("ip")),
        api="pyasic",
    )


def has_telemetry(data: Any) -> bool:
    """Whether pyasic read anything live (for a miner that is down it returns an empty MinerData)."""
    d = as_mapping(data)
    if any(d.get(k) not in (None, "", []) for k in ("mac", "serial_number", "uptime", "wattage", "pools")):
        return True
    if any(isinstance(f, Mapping) and f.get("speed") is not None for f in _list(d.get("fans"))):
        return True
    return any(
        isinstance(b, Mapping) and (ths(b.get("hashrate")) is not None or b.get("chips") is not None)
        for b in _list(d.get("hashboards"))
    )


def is_sleeping(data: Any) -> bool:
    """Whether the miner's own config says it sleeps (pyasic's `is_mining` is not trusted alone)."""
    return _mode(as_mapping(data)) is Mode.SLEEP


def snapshot_from_data(data: Any, *, polled_at: float = 0.0) -> Snapshot:
    """Pure: the normalized Snapshot of a MinerData (or its JSON form)."""
    d = as_mapping(data)
    boards = tuple(_board(i, b) for i, b in enumerate(_list(d.get("hashboards"))) if isinstance(b, Mapping))
    hashrate = ths(d.get("hashrate"))
    if hashrate is None and boards and any(b.hashrate_ths is not None for b in boards):
        hashrate = sum(b.hashrate_ths or 0.0 for b in boards)
    is_mining = d.get("is_mining") is not False
    mode = _mode(d)
    if not is_mining and mode is Mode.UNKNOWN:
        mode = Mode.SLEEP
    if mode is Mode.SLEEP:
        is_mining = False
    elif hashrate is not None and hashrate <= 0:
        is_mining = False  # some backends (btminer v2) keep is_mining true while stopped
    temps = [t for b in boards for t in (b.chip_temp_c, b.board_temp_c) if t is not None]
    env = _num(d.get("env_temp"))
    psu: dict[str, Any] = {}
    if (fan_psu := _fan_psu(d.get("fan_psu"))) is not None:
        psu["fan_rpm"] = fan_psu
    if (volts := _num(d.get("voltage"))) is not None:
        psu["output_voltage_v"] = volts
    if serial := _text(d.get("psu_serial_number")):
        psu["serial"] = serial
    return Snapshot(
        hashrate_ths=hashrate,
        hashrate_avg_ths=None,
        expected_hashrate_ths=ths(d.get("expected_hashrate")),
        power_w=_positive(d.get("wattage")),
        power_limit_w=_positive(d.get("wattage_limit")),
        is_mining=is_mining,
        mode=mode,
        hashboards=boards,
        fans=tuple(
            Fan(i, _int(f.get("speed"))) for i, f in enumerate(_list(d.get("fans"))) if isinstance(f, Mapping)
        ),
        pools=tuple(_pool(i, p) for i, p in enumerate(_list(d.get("pools"))) if isinstance(p, Mapping)),
        errors=tuple(_fault(e) for e in _list(d.get("errors")) if isinstance(e, Mapping)),
        uptime_s=_int(d.get("uptime")),
        polled_at=polled_at,
        temp_c=max(temps) if temps else None,
        env_temp_c=env,
        psu=psu,
    )


def redacted(data: Mapping[str, Any]) -> dict[str, Any]:
    """The JSON form with every "password" value blanked (pyasic's config carries the pool passwords)."""

    def walk(v: Any) -> Any:
        if isinstance(v, Mapping):
            return {k: ("***" if k == "password" and x else walk(x)) for k, x in v.items()}
        if isinstance(v, list):
            return [walk(x) for x in v]
        return v

    return walk(data)


def _board(i: int, b: Mapping[str, Any]) -> Hashboard:
    slot = _int(b.get("slot"))
    rate = ths(b.get("hashrate"))
    chips = _int(b.get("chips"))
    expected = _int(b.get("expected_chips"))
    missing = b.get("missing") is True
    ok = not missing and not (chips is not None and expected and chips < expected)
    status = "missing" if missing else ""
    return Hashboard(
        index=slot if slot is not None else i,
        hashrate_ths=rate,
        chips=chips,
        expected_chips=expected,
        chip_temp_c=_num(b.get("chip_temp")),
        board_temp_c=_num(b.get("temp")),
        inlet_temp_c=_num(b.get("inlet_temp")),
        outlet_temp_c=_num(b.get("outlet_temp")),
        serial=_text(b.get("serial_number")),
        ok=ok,
        status=status,
    )


def _pool(i: int, p: Mapping[str, Any]) -> Pool:
    index = _int(p.get("index"))
    alive = p.get("alive")
    status = "alive" if alive is True else "dead" if alive is False else ""
    return Pool(
        index=index if index is not None else i,
        url=_text(p.get("url")),
        user=_text(p.get("user")),
        status=status,
        active=p.get("active") is True,
        accepted=_int(p.get("accepted")) or 0,
        rejected=_int(p.get("rejected")) or 0,
    )


def _fault(e: Mapping[str, Any]) -> Fault:
    code = e.get("error_code")
    message = _text(e.get("error_message")) or (f"error {code}" if code is not None else "error")
    low = message.lower()
    component = next((c for words, c in _COMPONENTS if any(w in low for w in words)), Component.OTHER)
    return Fault("" if code is None else str(code), message, component)


def _fan_psu(v: Any) -> int | None:
    """The PSU fan's RPM: a number, or (btminer v3 backends) a list of fans."""
    if isinstance(v, list):
        v = v[0].get("speed") if v and isinstance(v[0], Mapping) else None
    return _int(v)


def _mode(d: Mapping[str, Any]) -> Mode:
    config = d.get("config")
    mining = config.get("mining_mode") if isinstance(config, Mapping) else None
    name = mining.get("mode") if isinstance(mining, Mapping) else None
    return _MODES.get(str(name), Mode.UNKNOWN) if name is not None else Mode.UNKNOWN


def _list(v: Any) -> list[Any]:
    return v if isinstance(v, list) else []


def _text(v: Any) -> str:
    return "" if v is None else str(v).strip()


def _num(v: Any) -> float | None:
    if v is None or isinstance(v, bool):
        return None
    try:
        return _finite(float(v))
    except (TypeError, ValueError):
        return None


def _finite(x: float) -> float | None:
    return x if math.isfinite(x) else None


def _int(v: Any) -> int | None:
    x = _num(v)
    return None if x is None else int(x)


def _positive(v: Any) -> float | None:
    x = _num(v)
    return x if x is not None and x > 0 else None
