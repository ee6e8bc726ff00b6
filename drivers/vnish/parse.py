"""Pure parsers: VNish web API replies (`/api/v1/info`, `/api/v1/summary`, `/api/v1/perf-summary`,
`/api/v1/autotune/presets`) in, normalized model out.

Field names, types and enums follow VNish's own OpenAPI document (1.2.6, tests/fixtures/
vnish_1.2.6_openapi.json). The `hr_*` hashrates are in the unit `info.hr_measure` names (GH/s on SHA-256
Antminers); the deprecated `instant_hashrate`/`average_hashrate` are TH/s and are read only where the
`hr_*` fields are missing (firmware 1.2.0 has only them), as `power_usage` (watts on 1.2.0) is read only
where `power_consumption` is missing. Presets are named by their watts ("1900", with "1900 watt ~ 73 TH"
as the pretty name), "disabled" being stock tuning.
"""

from __future__ import annotations

import re
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any

from fleetd.drivers.cgminer import num, to_ths

from fleetd.model import Component, Fan, Fault, Hashboard, Identity, Mode, Pool, Snapshot

__all__ = [
    "INFO",
    "PERF",
    "PRESETS",
    "SUMMARY",
    "Preset",
    "is_vnish",
    "parse_identity",
    "parse_presets",
    "parse_snapshot",
    "pick_preset",
    "preset_watts",
]

INFO = "web_api-v1-info"
SUMMARY = "web_api-v1-summary"
PERF = "web_api-v1-perf-summary"
PRESETS = "web_api-v1-autotune-presets"

MAX_THS = 5_000.0
MAX_WATTS = 20_000.0
IDLE_MAX_W = 150.0
_PRETTY_WATTS = re.compile(r"(\d+(?:\.\d+)?)\s*watt", re.IGNORECASE)
_PRETTY_TH = re.compile(r"~\s*(\d+(?:\.\d+)?)\s*TH", re.IGNORECASE)
# miner_state: mining, initializing, starting, auto-tuning, restarting, shutting-down, stopped, failure
# (the OpenAPI enum); "paused" is not in it but costs nothing to accept.
_PAUSED = frozenset({"paused", "stopped", "shutting-down"})
_BAD_CHAIN = frozenset({"failure", "disconnected", "disabled", "broken"})


@dataclass(frozen=True, slots=True)
class Preset:
    """One autotune preset: its name, its nominal watts and hashrate (from the pretty name)."""

    name: str
    watts: float | None
    hashrate_ths: float | None
    status: str = ""


def is_vnish(info: Mapping[str, Any] | None) -> bool:
    """Whether an `/api/v1/info` reply is VNish's."""
    return isinstance(info, Mapping) and str(info.get("fw_name") or "").strip().lower() == "vnish"


def _unit(info: Mapping[str, Any] | None) -> str:
    return str((info or {}).get("hr_measure") or "GH/s")


def _rate(value: Any, unit: str) -> float | None:
    v = to_ths(value, unit)
    return v if v is not None and 0 <= v <= MAX_THS else None


def _watts(value: Any) -> float | None:
    v = num(value)
    return v if v is not None and 0 <= v <= MAX_WATTS else None


def parse_identity(responses: Mapping[str, Any], *, host: str = "") -> Identity:
    info = responses.get(INFO) or {}
    net = (info.get("system") or {}).get("network_status") or {}
    serial = str(info.get("serial") or "")
    return Identity(
        vendor="antminer",
        model=str(info.get("miner") or "").strip(),
        firmware=f"VNish {info.get('fw_version') or ''}".strip(),
        api_version="v1",
        serial="" if serial == "N/A" else serial,
        mac=str(net.get("mac") or "").lower(),
        hostname=str(net.get("hostname") or ""),
        driver="vnish",
        host=host,
        api="vnish-web",
    )


def parse_presets(reply: Any) -> tuple[Preset, ...]:
    """The presets of `/api/v1/autotune/presets`, in the firmware's order; nameless ones left out."""
    out = []
    for p in reply if isinstance(reply, Sequence) and not isinstance(reply, str) else ():
        if not isinstance(p, Mapping) or not str(p.get("name") or "").strip():
            continue
        name = str(p["name"]).strip()
        pretty = str(p.get("pretty") or "")
        m = _PRETTY_WATTS.search(pretty)
        watts = _watts(m.group(1)) if m else _watts(name) if name.isdigit() else None
        th = _PRETTY_TH.search(pretty)
        out.append(Preset(name, watts, num(th.group(1)) if th else None, str(p.get("status") or "")))
    return tuple(out)


def pick_preset(presets: Sequence[Preset], watts: float) -> Preset | None:
    """The preset with the most power within `watts`; None when even the lowest exceeds it."""
    fitting = [p for p in presets if p.watts is not None and p.watts <= watts]
    return max(fitting, key=lambda p: (p.watts, p.hashrate_ths or 0.0), default=None)


def preset_watts(responses: Mapping[str, Any]) -> float | None:
    """The running preset's watts: from its entry in the preset list, else from a numeric name."""
    name = current_preset(responses)
    if not name:
        return None
    listed = responses.get(PRESETS)
    if isinstance(listed, list):
        entry = next((p for p in listed if isinstance(p, Mapping) and p.get("name") == name), None)
        if entry is not None:  # parse only the running one: the list is long and changes rarely
            return next(iter(parse_presets([entry])), Preset(name, None, None)).watts
    return _watts(name) if name.isdigit() else None


def current_preset(responses: Mapping[str, Any]) -> str:
    perf = responses.get(PERF) or {}
    return str((perf.get("current_preset") or {}).get("name") or "")


def _pools(items: Any) -> tuple[Pool, ...]:
    out = []
    for i, p in enumerate(items if isinstance(items, list) else ()):
        if not isinstance(p, Mapping) or p.get("pool_type") == "DevFee" or not p.get("url"):
            continue
        status = str(p.get("status") or "").lower()
        out.append(
            Pool(
                index=int(num(p.get("id")) if num(p.get("id")) is not None else i),
                url=str(p["url"]),
                user=str(p.get("user") or ""),
                status={"working": "alive", "active": "alive", "offline": "dead"}.get(status, status),
                active=status in ("working", "active"),
                accepted=int(num(p.get("accepted")) or 0),
                rejected=int(num(p.get("rejected")) or 0),
                stale=int(num(p.get("stale")) or 0),
            )
        )
    return tuple(out)


def _max_temp(value: Any) -> float | None:
    t = num(value.get("max")) if isinstance(value, Mapping) else num(value)
    return t if t is not None and t != 0 and -40 <= t <= 150 else None


def _sensors_max(sensors: Any) -> float | None:
    """The hottest measuring sensor of a `*_temp_sens` list (firmware 1.2.0's per-board layout)."""
    temps = (
        [_max_temp(s.get("temp")) for s in sensors if isinstance(s, Mapping) and s.get("status") == "measure"]
        if isinstance(sensors, list)
        else []
    )
    return max((t for t in temps if t is not None), default=None)


def _hashrate(miner: Mapping[str, Any], key: str, legacy: str, unit: str) -> float | None:
    """`hr_*` in the info's unit, else the deprecated field of the same figure in TH/s."""
    if key in miner:
        return _rate(miner.get(key), unit)
    return _rate(miner.get(legacy), "TH/s")


def parse_snapshot(responses: Mapping[str, Any], *, polled_at: float = 0.0) -> Snapshot:
    """The snapshot from `/api/v1/summary`, with the info's hashrate unit and the perf-summary's preset."""
    unit = _unit(responses.get(INFO))
    miner = (responses.get(SUMMARY) or {}).get("miner") or {}
    status = miner.get("miner_status") if isinstance(miner.get("miner_status"), Mapping) else {}
    state = str(status.get("miner_state") or "").lower()
    rate = _hashrate(miner, "hr_realtime", "instant_hashrate", unit)
    avg = _hashrate(miner, "hr_average", "average_hashrate", unit)
    nominal = _rate(miner.get("hr_nominal"), unit) or _rate(miner.get("hr_stock"), unit)
    power_key = "power_consumption" if "power_consumption" in miner else "power_usage"
    watts = _watts(miner.get(power_key))
    mining = bool(rate and rate > 0) and state not in _PAUSED and state != "failure"
    boards = []
    for i, chain in enumerate(miner.get("chains") or ()):
        if not isinstance(chain, Mapping):
            continue
        cstate = str((chain.get("status") or {}).get("state") or "").lower()
        brate = _rate(chain.get("hashrate_rt"), unit)
        ok = cstate not in _BAD_CHAIN and not (mining and brate == 0.0)
        board_temp = _max_temp(chain.get("pcb_temp"))
        boards.append(
            Hashboard(
                index=int(num(chain.get("id")) or i + 1) - 1,
                hashrate_ths=brate,
                expected_hashrate_ths=_rate(chain.get("hashrate_ideal"), unit),
                chip_temp_c=_max_temp(chain.get("chip_temp")) or _sensors_max(chain.get("chip_temp_sens")),
                board_temp_c=board_temp
                if board_temp is not None
                else _sensors_max(chain.get("pcb_temp_sens")),
                ok=ok,
                status=cstate,
            )
        )
    fans = tuple(
        Fan(index=int(num(f.get("id")) or i), rpm=int(num(f.get("rpm")) or 0))
        for i, f in enumerate((miner.get("cooling") or {}).get("fans") or ())
        if isinstance(f, Mapping)
    )
    if mining:
        mode = Mode.NORMAL
    elif state in _PAUSED or (state != "failure" and watts is not None and watts <= IDLE_MAX_W):
        mode = Mode.SLEEP
    else:
        mode = Mode.UNKNOWN
    errors = []
    if state == "failure":
        code = num(status.get("failure_code"))
        why = str(status.get("description") or "no description")
        errors.append(
            Fault(
                code=f"vnish_{int(code)}" if code is not None else "vnish_failure",
                message=f"miner failure: {why}",
                component=Component.OTHER,
            )
        )
    errors += [
        Fault(
            code="board", message=f"board {b.index}: {b.status or 'no hashrate'}", component=Component.BOARD
        )
        for b in boards
        if not b.ok
    ]
    if mining:
        errors += [
            Fault(code="fan_stopped", message=f"fan {f.index} stopped", component=Component.FAN)
            for f in fans
            if f.rpm == 0
        ]
    limit = preset_watts(responses)
    temps = [
        t for t in (_max_temp(miner.get("chip_temp")), _max_temp(miner.get("pcb_temp"))) if t is not None
    ]
    temps += [t for b in boards for t in (b.chip_temp_c, b.board_temp_c) if t is not None]
    uptime = num(status.get("miner_state_time"))
    return Snapshot(
        hashrate_ths=rate if state not in _PAUSED else 0.0,
        hashrate_avg_ths=avg,
        expected_hashrate_ths=nominal,
        power_w=watts,
        power_limit_w=limit,
        is_mining=mining,
        mode=mode,
        hashboards=tuple(boards),
        fans=fans,
        pools=_pools(miner.get("pools")),
        errors=tuple(errors),
        uptime_s=int(uptime) if uptime is not None and uptime >= 0 else None,
        polled_at=polled_at,
        temp_c=max(temps) if temps else None,
    )
