"""Pure parsers: VNish web API replies (`/api/v1/info`, `/api/v1/summary`, `/api/v1/perf-summary`,
`/api/v1/autotune/presets`) in, normalized model out.

Hashrates are in the unit `info.hr_measure` names (GH/s on SHA-256 Antminers); presets are named by
their watts ("1900", with "1900 watt ~ 73 TH" as the pretty name), "disabled" being stock tuning.
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
_PAUSED = frozenset({"paused", "stopped", "stopping", "pause"})


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


def parse_snapshot(responses: Mapping[str, Any], *, polled_at: float = 0.0) -> Snapshot:
    """The snapshot from `/api/v1/summary`, with the info's hashrate unit and the perf-summary's preset."""
    unit = _unit(responses.get(INFO))
    miner = (responses.get(SUMMARY) or {}).get("miner") or {}
    state = str((miner.get("miner_status") or {}).get("miner_state") or "").lower()
    rate = _rate(miner.get("instant_hashrate"), unit)
    avg = _rate(miner.get("average_hashrate"), unit)
    nominal = _rate(miner.get("hr_nominal"), unit) or _rate(miner.get("hr_stock"), unit)
    watts = _watts(miner.get("power_consumption"))
    mining = bool(rate and rate > 0) and state not in _PAUSED
    boards = []
    for i, chain in enumerate(miner.get("chains") or ()):
        if not isinstance(chain, Mapping):
            continue
        cstate = str((chain.get("status") or {}).get("state") or "").lower()
        brate = _rate(chain.get("hashrate_rt"), unit)
        ok = cstate not in ("failure", "broken", "disabled") and not (mining and brate == 0.0)
        boards.append(
            Hashboard(
                index=int(num(chain.get("id")) or i + 1) - 1,
                hashrate_ths=brate,
                expected_hashrate_ths=_rate(chain.get("hashrate_ideal"), unit),
                chip_temp_c=_max_temp(chain.get("chip_temp")),
                board_temp_c=_max_temp(chain.get("pcb_temp")),
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
    elif state in _PAUSED or (watts is not None and watts <= IDLE_MAX_W):
        mode = Mode.SLEEP
    else:
        mode = Mode.UNKNOWN
    errors = [
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
    uptime = num(miner.get("miner_status", {}).get("miner_state_time"))
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
