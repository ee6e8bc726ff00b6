"""Pure parsers: Antminer stock replies (RPC and web CGI) in, normalized model out.

Two stats layouts exist: the classic flat one (`chain_rateN`, `chain_acnN`, `temp_chipN`,
`fanN`; RPC `stats` on BMMiner) and the newer `chain[]` array (`rate_real`, `temp_pcb`,
`temp_chip`, `rate_unit`; web `stats.cgi`). Both are handled wherever they appear.
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from typing import Any

from fleetd.drivers.cgminer import first, hashrate_ths, num, parse_pools, section, to_ths

from fleetd.model import Component, Fan, Fault, Hashboard, Identity, Mode, Snapshot

__all__ = [
    "MODE_VALUES",
    "conf_mode",
    "parse_boards",
    "parse_fans",
    "parse_identity",
    "parse_snapshot",
]

# Values of `miner-mode` / `bitmain-work-mode` in get_miner_conf.cgi / set_miner_conf.cgi.
MODE_VALUES: dict[str, Mode] = {"0": Mode.NORMAL, "1": Mode.SLEEP, "3": Mode.LOW}

_CHAIN_KEY = re.compile(r"^chain_acn(\d+)$")
_FAN_KEY = re.compile(r"^fan(\d+)$")


def _temps(value: Any) -> list[float]:
    """Sensor readings from "78-50-69-70", [59, 59, 73], or a number; zeros mean no sensor."""
    if isinstance(value, str):
        parts: list[Any] = value.split("-")
    elif isinstance(value, list):
        parts = value
    else:
        parts = [value]
    out = []
    for p in parts:
        v = num(p)
        if v:
            out.append(v)
    return out


def _max(values: list[float]) -> float | None:
    return max(values) if values else None


def _stats_entry(reply: Mapping[str, Any] | None) -> Mapping[str, Any]:
    """The STATS element holding the telemetry (the first one only names the miner)."""
    items = section(reply, "STATS")
    for item in items:
        if "chain" in item or any(k.startswith("chain_acn") for k in item):
            return item
    for item in items:
        if "Elapsed" in item or "elapsed" in item or "GHS 5s" in item or "rate_5s" in item:
            return item
    return items[-1] if items else {}


def _flat_boards(stats: Mapping[str, Any], mining: bool) -> list[Hashboard]:
    unit = str(stats.get("rate_unit") or "GH")
    slots = sorted(int(m.group(1)) for k in stats if (m := _CHAIN_KEY.match(k)))
    boards = []
    for n in slots:
        chips = num(stats.get(f"chain_acn{n}"))
        rate_raw = stats.get(f"chain_rate{n}")
        acs = str(stats.get(f"chain_acs{n}") or "")
        chip_temps = _temps(stats.get(f"temp_chip{n}")) or _temps(stats.get(f"temp2_{n}"))
        pcb_temps = _temps(stats.get(f"temp_pcb{n}")) or _temps(stats.get(f"temp{n}"))
        present = bool(chips) or (rate_raw not in (None, "")) or bool(acs.strip()) or bool(chip_temps)
        if not present:
            continue  # an empty slot, not a failed board
        rate = to_ths(rate_raw, unit)
        expected_chips = (acs.count("o") + acs.count("x")) or None
        ideal = stats.get(f"chain_rateideal{n}")
        boards.append(
            _board(
                len(boards),
                rate,
                to_ths(ideal, unit) if ideal is not None else None,
                int(chips) if chips is not None else None,
                expected_chips,
                _max(chip_temps),
                _max(pcb_temps),
                "",
                mining,
                bad_chips="x" in acs,
            )
        )
    return boards


def _chain_boards(stats: Mapping[str, Any], mining: bool) -> list[Hashboard]:
    unit = str(stats.get("rate_unit") or "GH")
    boards = []
    for chain in stats.get("chain") or ():
        if not isinstance(chain, Mapping):
            continue
        chips = num(chain.get("asic_num"))
        boards.append(
            _board(
                len(boards),
                to_ths(chain.get("rate_real"), unit),
                to_ths(chain.get("rate_ideal"), unit),
                int(chips) if chips is not None else None,
                None,
                _max(_temps(chain.get("temp_chip"))),
                _max(_temps(chain.get("temp_pcb"))),
                str(chain.get("sn") or ""),
                mining,
            )
        )
    return boards


def _board(
    index: int,
    rate: float | None,
    expected: float | None,
    chips: int | None,
    expected_chips: int | None,
    chip_temp: float | None,
    pcb_temp: float | None,
    serial: str,
    mining: bool,
    bad_chips: bool = False,
) -> Hashboard:
    problems = []
    if not chips:
        problems.append("no chips detected")
    elif expected_chips and chips < expected_chips:
        problems.append(f"{chips}/{expected_chips} chips")
    elif bad_chips:
        problems.append("chips failing")
    if mining and not rate:
        problems.append("not hashing")
    return Hashboard(
        index=index,
        hashrate_ths=rate,
        expected_hashrate_ths=expected,
        chips=chips,
        expected_chips=expected_chips,
        chip_temp_c=chip_temp,
        board_temp_c=pcb_temp,
        serial=serial,
        ok=not problems,
        status="; ".join(problems) if problems else "ok",
    )


def parse_boards(stats_reply: Mapping[str, Any] | None, *, mining: bool) -> tuple[Hashboard, ...]:
    """Hashboards from a `stats` reply in either layout."""
    stats = _stats_entry(stats_reply)
    if isinstance(stats.get("chain"), list):
        return tuple(_chain_boards(stats, mining))
    return tuple(_flat_boards(stats, mining))


def parse_fans(stats_reply: Mapping[str, Any] | None) -> tuple[Fan, ...]:
    stats = _stats_entry(stats_reply)
    if isinstance(stats.get("fan"), list):
        return tuple(
            Fan(i, int(v) if (v := num(rpm)) is not None else None) for i, rpm in enumerate(stats["fan"])
        )
    keys = sorted((int(m.group(1)), k) for k in stats if (m := _FAN_KEY.match(k)))
    values = [(n, num(stats[k])) for n, k in keys]
    count = num(stats.get("fan_num"))
    if count is not None and len(values) > count:
        # S9-style: fan1..fan8 with only the connected ones non-zero; fan_num says how many.
        spinning = [nv for nv in values if nv[1]]
        values = spinning if len(spinning) == count else values[: int(count)]
    return tuple(Fan(i, int(v) if v is not None else None) for i, (_, v) in enumerate(values))


def conf_mode(conf: Mapping[str, Any] | None) -> Mode:
    """The work mode a get_miner_conf.cgi reply shows (`miner-mode` first, then `bitmain-work-mode`)."""
    if not conf:
        return Mode.UNKNOWN
    for key in ("miner-mode", "bitmain-work-mode"):
        if key in conf:
            return MODE_VALUES.get(str(conf[key]).strip(), Mode.UNKNOWN)
    return Mode.UNKNOWN


_WEB_STATUS_COMPONENT = {
    "rate": Component.BOARD,
    "network": Component.NETWORK,
    "fans": Component.FAN,
    "temp": Component.TEMPERATURE,
}


def _web_status_faults(web_summary: Mapping[str, Any] | None) -> list[Fault]:
    out = []
    for entry in first(web_summary, "SUMMARY").get("status") or ():
        if not isinstance(entry, Mapping) or str(entry.get("status", "s")).lower() == "s":
            continue
        kind = str(entry.get("type") or "other")
        out.append(
            Fault(
                code=f"{kind}:{entry.get('code', '')}",
                message=str(entry.get("msg") or f"{kind} status {entry.get('status')}"),
                component=_WEB_STATUS_COMPONENT.get(kind, Component.OTHER),
            )
        )
    return out


def _rates(entry: Mapping[str, Any]) -> tuple[float | None, float | None, float | None, float | None]:
    """(5 s, average, expected, uptime) from a summary/stats entry of either naming style."""
    if "rate_5s" in entry or "rate_avg" in entry:
        unit = str(entry.get("rate_unit") or "GH")
        ideal = entry.get("rate_ideal")
        return (
            to_ths(entry.get("rate_5s"), unit),
            to_ths(entry.get("rate_avg"), unit),
            to_ths(ideal, unit) if ideal is not None else None,
            num(entry.get("elapsed")),
        )
    unit = str(entry.get("rate_unit") or "GH")
    ideal = entry.get("total_rateideal")
    return (
        hashrate_ths(entry, "5s"),
        hashrate_ths(entry, "av"),
        to_ths(ideal, unit) if ideal is not None else None,
        num(entry.get("Elapsed")),
    )


def parse_identity(responses: Mapping[str, Any], *, host: str = "") -> Identity:
    version = first(responses.get("rpc_version"), "VERSION")
    info = responses.get("web_get_system_info.cgi") or {}
    web_stats_info = (responses.get("web_stats.cgi") or {}).get("INFO") or {}
    stats = _stats_entry(responses.get("rpc_stats"))
    model = str(version.get("Type") or info.get("minertype") or web_stats_info.get("type") or "").strip()
    firmware = str(
        version.get("CompileTime")
        or info.get("system_filesystem_version")
        or web_stats_info.get("CompileTime")
        or ""
    ).strip()
    return Identity(
        vendor="antminer",
        model=model,
        firmware=firmware,
        api_version=str(version.get("API") or ""),
        serial=str(stats.get("miner_id") or info.get("serinum") or ""),
        mac=str(info.get("macaddr") or "").lower(),
        hostname=str(info.get("hostname") or ""),
        driver="antminer",
        host=host,
        api="cgminer",
    )


def parse_snapshot(responses: Mapping[str, Any], *, polled_at: float = 0.0) -> Snapshot:
    summary = first(responses.get("rpc_summary"), "SUMMARY")
    rpc_stats = responses.get("rpc_stats")
    web_stats = responses.get("web_stats.cgi")
    stats = _stats_entry(rpc_stats)
    web_entry = _stats_entry(web_stats)
    rate, avg, expected, uptime = None, None, None, None
    for entry in (summary, stats, first(responses.get("web_summary.cgi"), "SUMMARY"), web_entry):
        if not entry:
            continue
        r, a, e, u = _rates(entry)
        rate = rate if rate is not None else r
        avg = avg if avg is not None else a
        expected = expected if expected is not None else e
        uptime = uptime if uptime is not None else u
    mining = bool(rate and rate > 0)

    boards = parse_boards(rpc_stats, mining=mining) if stats else ()
    if not boards and web_entry:
        boards = parse_boards(web_stats, mining=mining)
    fans = parse_fans(rpc_stats) if stats else ()
    if not fans and web_entry:
        fans = parse_fans(web_stats)

    errors = _web_status_faults(responses.get("web_summary.cgi"))
    for b in boards:
        if not b.ok:
            errors.append(
                Fault(code="board", message=f"board {b.index}: {b.status}", component=Component.BOARD)
            )
    if mining:
        for f in fans:
            if f.rpm == 0:
                errors.append(
                    Fault(code="fan_stopped", message=f"fan {f.index} stopped", component=Component.FAN)
                )

    psu = web_entry.get("psu")
    chip_temps = [b.chip_temp_c for b in boards if b.chip_temp_c is not None]
    board_temps = [b.board_temp_c for b in boards if b.board_temp_c is not None]
    mode = conf_mode(responses.get("web_get_miner_conf.cgi"))
    return Snapshot(
        hashrate_ths=rate,
        hashrate_avg_ths=avg,
        expected_hashrate_ths=expected,
        power_w=None,  # stock firmware does not measure input power
        is_mining=mining,
        mode=mode,
        hashboards=boards,
        fans=fans,
        pools=parse_pools(responses.get("rpc_pools")),
        errors=tuple(errors),
        uptime_s=int(uptime) if uptime is not None else None,
        polled_at=polled_at,
        temp_c=_max(chip_temps) or _max(board_temps),
        psu={str(k): v for k, v in psu.items() if k != "index"} if isinstance(psu, Mapping) else {},
        hw_errors=_count(summary.get("Hardware Errors")) if summary else None,
    )


def _count(v: Any) -> int | None:
    n = num(v)
    return int(n) if n is not None and 0 <= n < 2**63 else None
