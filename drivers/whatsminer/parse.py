"""Pure parsers: btminer v2 and v3 replies (keyed as in a fixture folder) -> normalized Reading.

v2 keys: rpc_summary, rpc_devs (or rpc_edevs), rpc_pools, rpc_get_version, rpc_get_psu,
rpc_get_miner_info, rpc_devdetails, rpc_get_error_code, rpc_status. v2 hashrates are MH/s.
v3 keys: rpc_get.device.info, rpc_get.miner.status_summary, rpc_get.miner.status_edevs,
rpc_get.miner.status_pools. v3 hashrates are TH/s.
"""

from __future__ import annotations

import json
import math
import sys
from collections.abc import Mapping
from typing import Any

from fleetd.drivers.whatsminer.error_codes import fault_for

from fleetd.model import Fan, Fault, Hashboard, Identity, Mode, Pool, Reading, Snapshot

VENDOR = "whatsminer"
DRIVER = "whatsminer"
V3_CUTOVER = 20241100  # firmware dated after 2024-11 speaks API v3 (port 4433)
V3_KEYS = (
    "rpc_get.device.info",
    "rpc_get.miner.status_summary",
    "rpc_get.miner.status_edevs",
    "rpc_get.miner.status_pools",
)


def num(v: Any) -> float | None:
    """A finite float from a JSON number or numeric string ("'20.5'" too); None otherwise."""
    t = type(v)  # exact types: bool is an int, and not a number here
    try:
        if t is float:
            f = v
        elif t is int:
            f = float(v)
        elif t is str:
            f = float(v.strip().strip("'"))
        else:
            return None
    except (ValueError, OverflowError):
        return None
    return f if math.isfinite(f) else None


def _int(v: Any) -> int | None:
    f = num(v)
    return int(f) if f is not None else None


def _mhs(v: Any) -> float | None:
    f = num(v)
    return round(f / 1e6, 6) if f is not None else None


def _ths(v: Any) -> float | None:
    f = num(v)
    return round(f, 6) if f is not None else None


def _watts(v: Any) -> float | None:
    f = num(v)
    return f if f is not None and f >= 0 else None  # -1 means "not measured"


def _max(*vals: float | None) -> float | None:
    got = [v for v in vals if v is not None]
    return max(got) if got else None


def first(reply: Any, section: str) -> dict[str, Any]:
    if isinstance(reply, dict):
        items = reply.get(section)
        if isinstance(items, list) and items and isinstance(items[0], dict):
            return items[0]
    return {}


def _rows(reply: Any, section: str) -> list[dict[str, Any]]:
    if isinstance(reply, dict):
        items = reply.get(section)
        if isinstance(items, list):
            return [i for i in items if isinstance(i, dict)]
    return []


def msg(reply: Any) -> dict[str, Any]:
    if isinstance(reply, dict):
        m = reply.get("Msg", reply.get("msg"))
        if isinstance(m, dict):
            return m
    return {}


def firmware_date(fw: str) -> int | None:
    """20230803 from "20230803.11.REL" (also "'20210322.22.REL'")."""
    head = fw.strip().strip("'")[:8]
    return int(head) if head.isdigit() else None


def prefers_v3(fw: str) -> bool:
    d = firmware_date(fw)
    return d is not None and d > V3_CUTOVER


def model_name(raw: str) -> str:
    raw = raw.strip()
    if not raw:
        return "Whatsminer"
    return raw if raw.lower().startswith("whatsminer") else f"Whatsminer {raw}"


def _mode(word: Any) -> Mode:
    w = str(word or "").strip().lower()
    return {"normal": Mode.NORMAL, "low": Mode.LOW, "high": Mode.HIGH}.get(w, Mode.UNKNOWN)


def _idle_mode(off: str) -> Mode:
    """Mode of a miner that is not hashing: asleep if its firmware says mining is off, UNKNOWN
    (broken, starting) if it says mining is on; without that reply, asleep is the likely case."""
    return Mode.UNKNOWN if off == "false" else Mode.SLEEP


def is_v3(responses: Mapping[str, Any]) -> bool:
    return any(k in responses for k in V3_KEYS)


# What `slim` keeps of each slow-changing reply: the fields the parsers read, nothing else.
_KEEP_V2: dict[str, tuple[str, ...]] = {
    "rpc_get_version": ("fw_ver", "api_ver"),
    "rpc_get_miner_info": ("minersn", "mac", "hostname"),
    "rpc_get_psu": (
        "model",
        "name",
        "vendor",
        "serial_no",
        "sw_version",
        "hw_version",
        "vin",
        "iin",
        "pin",
        "fan_speed",
        "temp0",
    ),
    "rpc_get_error_code": ("error_code",),
}
_KEEP_V3_INFO: dict[str, tuple[str, ...]] = {
    "network": ("mac", "hostname"),
    "system": ("fwversion", "api"),
    "power": ("model", "type", "sn", "swversion", "hwversion", "vendor", "fanspeed"),
}
_KEEP_V3_POOL = ("url", "account", "status", "stratum-active", "accepted", "rejected", "stale")
# Values shared by many miners of a fleet (versions, models): one string object for all of them.
_SHARED = frozenset(
    (
        "fw_ver",
        "api_ver",
        "model",
        "name",
        "vendor",
        "sw_version",
        "hw_version",
        "hostname",
        "type",
        "working",
        "fwversion",
        "api",
        "swversion",
        "hwversion",
        "Model",
        "status",
        "url",
        "account",
    )
)
_NUMERIC = frozenset(("vin", "iin", "pin", "fan_speed", "temp0", "fanspeed", "accepted", "rejected", "stale"))


def _keep(d: Mapping[str, Any], keys: tuple[str, ...]) -> dict[str, Any]:
    """The `keys` of `d` that are there; shared strings interned, numeric strings as numbers."""
    out: dict[str, Any] = {}
    for k in keys:  # the table's key strings: one object for every miner
        if k not in d:
            continue
        v = d[k]
        if isinstance(v, str):
            if k in _SHARED:
                v = sys.intern(v)
            elif k in _NUMERIC and (f := num(v)) is not None:
                v = int(f) if f.is_integer() else f
        out[k] = v
    return out


# Slim replies that most miners of a fleet share (same firmware, model, no error): one object for all.
_FLEETWIDE = frozenset(("rpc_get_version", "rpc_devdetails", "rpc_get_error_code"))
_SHARED_REPLIES: dict[str, Any] = {}
_SHARED_MAX = 512


def _shared(reply: dict[str, Any]) -> dict[str, Any]:
    """The one shared object equal to `reply` (never mutated: parsers only read)."""
    key = json.dumps(reply, sort_keys=True)
    found = _SHARED_REPLIES.get(key)
    if found is None:
        if len(_SHARED_REPLIES) >= _SHARED_MAX:
            _SHARED_REPLIES.clear()  # a fleet of that many variants gains nothing from sharing
        found = _SHARED_REPLIES[key] = reply
    return found


def slim(key: str, reply: Any) -> Any:
    """What a driver keeps of a slow-changing reply between polls: only what the parsers read of it.

    Parsing the slim reply gives the same result as parsing the whole one; it is a fraction of its size.
    The result is shared between miners where it is the same: treat it as read-only.
    """
    if not isinstance(reply, dict):
        return reply
    if key in _FLEETWIDE:
        if key == "rpc_devdetails":
            return _shared({"DEVDETAILS": [_keep(first(reply, "DEVDETAILS"), ("Model",))]})
        m = msg(reply)
        return _shared({"Msg": _keep(m, _KEEP_V2[key])} if m else {})
    if key in _KEEP_V2:
        m = msg(reply)
        return {"Msg": _keep(m, _KEEP_V2[key])} if m else {}
    if key == "rpc_get.device.info":
        m = msg(reply)
        miner = m.get("miner") if isinstance(m.get("miner"), dict) else {}
        keep = tuple(k for k in miner if k in ("type", "miner-sn", "working") or k.startswith("pcbsn"))
        out: dict[str, Any] = {
            part: _keep(m[part], keys)
            for part, keys in _KEEP_V3_INFO.items()
            if isinstance(m.get(part), dict)
        }
        out["miner"] = _keep(miner, keep)
        for k in ("salt", "error-code"):
            if k in m:
                out[k] = m[k]
        return {"msg": out}
    if key == "rpc_get.miner.status_pools":
        pools = msg(reply).get("pools")
        rows = (
            [_keep(p, _KEEP_V3_POOL) for p in pools if isinstance(p, dict)] if isinstance(pools, list) else []
        )
        return {"msg": {"pools": rows}}
    return reply


def parse(responses: Mapping[str, Any], *, host: str = "", polled_at: float = 0.0) -> Reading:
    if is_v3(responses):
        return Reading(identity_v3(responses, host=host), snapshot_v3(responses, polled_at=polled_at))
    return Reading(identity_v2(responses, host=host), snapshot_v2(responses, polled_at=polled_at))


# --- v2 -------------------------------------------------------------------------------------------
def identity_v2(r: Mapping[str, Any], *, host: str = "") -> Identity:
    summary = first(r.get("rpc_summary"), "SUMMARY")
    version = msg(r.get("rpc_get_version"))
    info = msg(r.get("rpc_get_miner_info"))
    details = first(r.get("rpc_devdetails"), "DEVDETAILS")
    fw = str(version.get("fw_ver") or summary.get("Firmware Version") or "").strip().strip("'")
    return Identity(
        vendor=VENDOR,
        model=model_name(str(details.get("Model") or "")),
        firmware=fw,
        api_version=str(version.get("api_ver") or ""),
        serial=str(info.get("minersn") or ""),
        mac=str(summary.get("MAC") or info.get("mac") or "").upper(),
        hostname=str(info.get("hostname") or ""),
        driver=DRIVER,
        host=host,
        api="btminer-v2",
    )


MAX_ERROR_CODES = 256  # "Error Code N" keys looked up at most


def errors_v2(summary: Mapping[str, Any], error_reply: Any) -> tuple[Fault, ...]:
    codes: list[str] = []
    ec = msg(error_reply).get("error_code")
    if isinstance(ec, dict):
        codes.extend(str(k) for k in ec)
    elif isinstance(ec, list):
        for item in ec:
            if isinstance(item, dict):
                codes.extend(str(k) for k in item if str(k).lower() != "reason")
            elif item not in (None, ""):
                codes.append(str(item))
    count = _int(summary.get("Error Code Count")) or 0
    for i in range(min(count, MAX_ERROR_CODES)):  # the firmware's count: a wild one must not hang the poller
        v = summary.get(f"Error Code {i}")
        if v is not None:
            codes.append(str(v))
    seen: dict[str, None] = dict.fromkeys(c.strip() for c in codes if c.strip())
    return tuple(fault_for(c) for c in seen)


# PSU text fields: the firmware's name -> the snapshot's `psu` key.
_PSU_TEXT_V2 = (
    ("model", "model"),
    ("name", "name"),
    ("vendor", "vendor"),
    ("serial_no", "serial"),
    ("sw_version", "firmware"),
    ("hw_version", "hardware"),
)
_PSU_TEXT_V3 = (
    ("model", "model"),
    ("type", "type"),
    ("sn", "serial"),
    ("swversion", "firmware"),
    ("hwversion", "hardware"),
    ("vendor", "vendor"),
)


def _texts(src: Mapping[str, Any], names: tuple[tuple[str, str], ...]) -> dict[str, Any]:
    """The non-empty `names` of `src` as strings, renamed."""
    return {dst: str(src[k]) for k, dst in names if src.get(k) not in (None, "")}


def psu_v2(psu_reply: Any, summary: Mapping[str, Any]) -> dict[str, Any]:
    m = msg(psu_reply)
    out = _texts(m, _PSU_TEXT_V2)
    # get_psu gives input volts and amps in hundredths ("vin": "22850" = 228.50 V); watts as is.
    for src, dst, scale in (
        ("vin", "input_voltage_v", 100),
        ("iin", "input_current_a", 100),
        ("pin", "input_power_w", 1),
        ("fan_speed", "fan_rpm", 1),
        ("temp0", "temp_c", 1),
    ):
        v = num(m.get(src))
        if v is not None:
            out[dst] = round(v / scale, 2) if scale != 1 else v
    if "fan_rpm" not in out and num(summary.get("Power Fanspeed")) is not None:
        out["fan_rpm"] = num(summary.get("Power Fanspeed"))
    if num(summary.get("Power Current")) is not None:
        out.setdefault("output_current_a", num(summary.get("Power Current")))
    if num(summary.get("Voltage")) is not None:
        out.setdefault("output_voltage_mv", num(summary.get("Voltage")))
    return out


# A pool row's keys for url, user, status, stratum-active, accepted, rejected and stale shares.
_V2_POOL_KEYS = ("URL", "User", "Status", "Stratum Active", "Accepted", "Rejected", "Stale")
_V3_POOL_KEYS = ("url", "account", "status", "stratum-active", "accepted", "rejected", "stale")


def _pool(index: int, row: Mapping[str, Any], keys: tuple[str, ...]) -> Pool:
    url, user, status, active, accepted, rejected, stale = keys
    return Pool(
        index=index,
        url=str(row.get(url) or ""),
        user=str(row.get(user) or ""),
        status=str(row.get(status) or "").lower(),
        active=bool(row.get(active)),
        accepted=_int(row.get(accepted)) or 0,
        rejected=_int(row.get(rejected)) or 0,
        stale=_int(row.get(stale)) or 0,
    )


def snapshot_v2(r: Mapping[str, Any], *, polled_at: float = 0.0) -> Snapshot:
    summary = first(r.get("rpc_summary"), "SUMMARY")
    devs = _rows(r.get("rpc_devs"), "DEVS") or _rows(r.get("rpc_edevs"), "DEVS")
    boards = []
    for i, d in enumerate(devs):
        idx = _int(d.get("ASC", d.get("Slot", i)))
        chips = _int(d.get("Effective Chips"))
        hr = _mhs(d.get("MHS 5s", d.get("MHS 1m")))
        status = str(d.get("Status", "")).lower()
        factory = num(d.get("Factory GHS"))
        boards.append(
            Hashboard(
                index=idx if idx is not None else i,
                hashrate_ths=hr,
                expected_hashrate_ths=factory / 1e3 if factory else None,
                chips=chips,
                chip_temp_c=_max(num(d.get("Chip Temp Max")), num(d.get("Chip Temp Avg"))),
                board_temp_c=num(d.get("Temperature")),
                serial=str(d.get("PCB SN") or ""),
                ok=status == "alive" and (chips is None or chips > 0),
                status=status,
            )
        )
    fans = [
        Fan(i, _int(summary.get(k))) for i, k in enumerate(("Fan Speed In", "Fan Speed Out")) if k in summary
    ]
    pools = [
        _pool((_int(p.get("POOL")) or i + 1) - 1, p, _V2_POOL_KEYS)
        for i, p in enumerate(_rows(r.get("rpc_pools"), "POOLS"))
    ]
    hr = _mhs(summary.get("MHS 5s"))
    off = str(msg(r.get("rpc_status")).get("btmineroff", "")).strip().lower()
    power = _watts(summary.get("Power", summary.get("Power_RT")))
    expected = num(summary.get("Factory GHS"))
    mode = _mode(summary.get("Power Mode")) if hr else _idle_mode(off)
    chip_max = _max(num(summary.get("Chip Temp Max")), *(b.chip_temp_c for b in boards))
    return Snapshot(
        hashrate_ths=hr,
        hashrate_avg_ths=_mhs(summary.get("MHS av")),
        expected_hashrate_ths=expected / 1e3 if expected else _mhs(summary.get("Target MHS")),
        power_w=power,
        power_limit_w=_watts(summary.get("Power Limit")),
        is_mining=bool(hr),
        mode=mode if summary else Mode.UNKNOWN,
        hashboards=tuple(boards),
        fans=tuple(fans),
        pools=tuple(pools),
        errors=errors_v2(summary, r.get("rpc_get_error_code")),
        uptime_s=_int(summary.get("Elapsed")),
        polled_at=polled_at,
        temp_c=_max(chip_max, num(summary.get("Temperature"))),
        env_temp_c=num(summary.get("Env Temp")),
        psu=psu_v2(r.get("rpc_get_psu"), summary),
        hw_errors=_int(summary.get("Hardware Errors")),
    )


# --- v3 -------------------------------------------------------------------------------------------
def identity_v3(r: Mapping[str, Any], *, host: str = "") -> Identity:
    m = msg(r.get("rpc_get.device.info"))
    miner = m.get("miner") if isinstance(m.get("miner"), dict) else {}
    net = m.get("network") if isinstance(m.get("network"), dict) else {}
    system = m.get("system") if isinstance(m.get("system"), dict) else {}
    return Identity(
        vendor=VENDOR,
        model=model_name(str(miner.get("type") or "")),
        firmware=str(system.get("fwversion") or ""),
        api_version=str(system.get("api") or ""),
        serial=str(miner.get("miner-sn") or ""),
        mac=str(net.get("mac") or "").upper(),
        hostname=str(net.get("hostname") or ""),
        driver=DRIVER,
        host=host,
        api="btminer-v3",
    )


def errors_v3(info: Mapping[str, Any]) -> tuple[Fault, ...]:
    out: list[Fault] = []
    raw = info.get("error-code")
    for item in raw if isinstance(raw, list) else []:
        if isinstance(item, dict):
            reason = str(item.get("reason") or "")
            for k in item:
                if str(k).lower() == "reason":
                    continue
                f = fault_for(k)
                out.append(Fault(f.code, f"{f.message}: {reason}" if reason else f.message, f.component))
        elif item not in (None, ""):
            out.append(fault_for(item))
    return tuple(out)


def snapshot_v3(r: Mapping[str, Any], *, polled_at: float = 0.0) -> Snapshot:
    info = msg(r.get("rpc_get.device.info"))
    s = msg(r.get("rpc_get.miner.status_summary")).get("summary") or {}
    edevs = msg(r.get("rpc_get.miner.status_edevs")).get("edevs") or []
    pools_raw = msg(r.get("rpc_get.miner.status_pools")).get("pools") or []
    miner = info.get("miner") if isinstance(info.get("miner"), dict) else {}
    power_info = info.get("power") if isinstance(info.get("power"), dict) else {}
    boards = []
    for i, d in enumerate(e for e in edevs if isinstance(e, dict)):
        chips = _int(d.get("effective-chips"))
        status = str(d.get("status") or "")
        idx = _int(d.get("id"))
        boards.append(
            Hashboard(
                index=idx if idx is not None else i,
                hashrate_ths=_ths(d.get("hash-realtime", d.get("hash-average"))),
                expected_hashrate_ths=_ths(d.get("factory-hash")),
                chips=chips,
                chip_temp_c=num(d.get("chip-temp-max")),
                board_temp_c=num(d.get("chip-temp-avg")),
                serial=str(miner.get(f"pcbsn{idx if idx is not None else i}") or ""),
                ok=(status.lower() in ("alive", "")) and (chips is None or chips > 0),
                status=status.lower(),
            )
        )
    fans = [Fan(i, _int(s.get(k))) for i, k in enumerate(("fan-speed-in", "fan-speed-out")) if k in s]
    pools = [_pool(i, p, _V3_POOL_KEYS) for i, p in enumerate(x for x in pools_raw if isinstance(x, dict))]
    hr = _ths(s.get("hash-realtime"))
    working = str(miner.get("working", "")).strip().lower()
    psu = _texts(power_info, _PSU_TEXT_V3)
    if num(power_info.get("fanspeed")) is not None:
        psu["fan_rpm"] = num(power_info.get("fanspeed"))
    board_temps = s.get("board-temperature")
    board_max = _max(*(num(t) for t in board_temps)) if isinstance(board_temps, list) else None
    has_status = bool(s)
    return Snapshot(
        hashrate_ths=hr,
        hashrate_avg_ths=_ths(s.get("hash-average")),
        expected_hashrate_ths=_ths(s.get("factory-hash")),
        power_w=_watts(s.get("power-realtime")),
        power_limit_w=_watts(s.get("power-limit")),
        is_mining=bool(hr),
        mode=(Mode.NORMAL if hr else _idle_mode({"false": "true", "true": "false"}.get(working, "")))
        if has_status
        else Mode.UNKNOWN,
        hashboards=tuple(boards),
        fans=tuple(fans),
        pools=tuple(pools),
        errors=errors_v3(info),
        uptime_s=_int(s.get("elapsed")),
        polled_at=polled_at,
        temp_c=_max(num(s.get("chip-temp-max")), board_max, *(b.chip_temp_c for b in boards)),
        env_temp_c=num(s.get("environment-temperature")),
        psu=psu,
    )
