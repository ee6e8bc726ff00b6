"""Pure parsers: Avalon cgminer replies in, normalized model out.

Avalon firmware packs its telemetry into one bracket-encoded string per controller (`MM ID0`), e.g.
"Ver[15-194-...] GHSspd[199241.07] MGHS[59459.52 61407.83 63139.66] WORKMODE[1]": a key, then its
value in brackets, lists space-separated. Two layouts carry it: the A13xx-A15xx `estats`/`stats` entry
with the string under "MM ID0", and the Avalon Q/Nano one under "MM ID0:Summary" wrapped as
"'STATS':{...}", with per-board sensors in a separate "HBinfo" string ("'HB0':{PVT_T0[...] ...}").
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from typing import Any

from fleetd.drivers.cgminer import (
    current_hashrate_ths,
    first,
    hashrate_ths,
    num,
    parse_pools,
    section,
    to_ths,
)

from fleetd.model import Component, Fan, Fault, Hashboard, Identity, Mode, Snapshot

__all__ = [
    "WORKMODES",
    "is_avalon",
    "mm_fields",
    "parse_identity",
    "parse_snapshot",
    "softoff",
    "when",
    "work_level",
]

# WORKMODE values: Eco, Standard, Super on both the A15 and the Q.
WORKMODES: dict[int, Mode] = {0: Mode.LOW, 1: Mode.NORMAL, 2: Mode.HIGH}
MAX_WATTS = 20_000.0
MAX_THS = 5_000.0

_FIELD = re.compile(r"([^\[\]\s][^\[\]]*?)\[([^\]]*)\]")


def mm_fields(text: Any) -> dict[str, str]:
    """The key -> raw value pairs of one bracket-encoded string (either layout); {} for anything else."""
    if not isinstance(text, str):
        return {}
    start = text.find(":{")
    if start != -1 and text.startswith("'"):
        text = text[start + 2 :].removesuffix("}")
    return {k.strip(): v.strip() for k, v in _FIELD.findall(text)}


def _nums(value: str | None) -> list[float]:
    """The finite numbers of a space-separated value ("59459.52 61407.83"), "%" signs dropped."""
    out = []
    for part in (value or "").replace("%", "").split():
        v = num(part)
        if v is not None:
            out.append(v)
    return out


def _one(fields: Mapping[str, str], key: str) -> float | None:
    values = _nums(fields.get(key))
    return values[0] if values else None


def _ths(ghs: float | None) -> float | None:
    v = to_ths(ghs, "GH") if ghs is not None else None
    return v if v is not None and 0 <= v <= MAX_THS else None


def _temp(value: float | None) -> float | None:
    return value if value is not None and -40 <= value <= 150 and value != 0 else None


def _watts(value: float | None) -> float | None:
    return value if value is not None and 0 < value <= MAX_WATTS else None


def is_avalon(version_reply: Mapping[str, Any] | None) -> bool:
    """Whether a `version` reply is an Avalon's (PROD "AvalonMiner 15-194", "Avalon Q", ...)."""
    version = first(version_reply, "VERSION")
    prod = str(version.get("PROD") or version.get("Type") or "").lower()
    return prod.startswith("avalon") or ("MODEL" in version and "HWTYPE" in version and "CGMiner" in version)


def _mac(raw: Any) -> str:
    text = str(raw or "").strip().lower().replace(":", "").replace("-", "")
    if len(text) == 12 and all(c in "0123456789abcdef" for c in text):
        return ":".join(text[i : i + 2] for i in range(0, 12, 2))
    return str(raw or "").lower()


def parse_identity(responses: Mapping[str, Any], *, host: str = "") -> Identity:
    version = first(responses.get("rpc_version"), "VERSION")
    return Identity(
        vendor="avalon",
        model=str(version.get("PROD") or version.get("MODEL") or "Avalon").strip(),
        # A15xx: VERSION; Avalon Q/Nano: LVERSION (= CGVERSION); CGMiner is cgminer's own version.
        firmware=str(
            version.get("VERSION")
            or version.get("LVERSION")
            or version.get("CGVERSION")
            or version.get("CGMiner")
            or ""
        ).strip(),
        api_version=str(version.get("API") or ""),
        serial=str(version.get("DNA") or ""),
        mac=_mac(version.get("MAC")),
        driver="avalon",
        host=host,
        api="cgminer",
    )


def _stats_fields(responses: Mapping[str, Any]) -> tuple[dict[str, str], dict[str, str]]:
    """(MM fields, HBinfo fields) of the first controller in `estats` or `stats`."""
    for key in ("rpc_estats", "rpc_stats"):
        for entry in section(responses.get(key), "STATS"):
            for name, value in entry.items():
                if str(name).startswith("MM ID"):
                    return mm_fields(value), mm_fields(entry.get("HBinfo"))
    return {}, {}


def when(reply: Mapping[str, Any] | None) -> int | None:
    """The miner's own clock (STATUS When) in a reply: softoff/softon timestamps are on that clock."""
    status = first(reply, "STATUS")
    v = num(status.get("When"))
    return int(v) if v is not None else None


def work_level(responses: Mapping[str, Any]) -> int | None:
    """The WORKLEVEL the stats show (the Avalon Q/Nano layout has it); None where the layout has none."""
    fields, _ = _stats_fields(responses)
    level = _one(fields, "WORKLEVEL")
    return int(level) if level is not None and 0 <= level <= 100 else None


def softoff(fields: Mapping[str, str]) -> bool:
    """Whether the MM fields show the miner soft-off (SoftOFF set, or "Work: In Idle")."""
    flag = _one(fields, "SoftOFF")
    idle = "in idle" in fields.get("SYSTEMSTATU", "").lower()
    return bool(flag) or idle


def parse_snapshot(responses: Mapping[str, Any], *, polled_at: float = 0.0) -> Snapshot:
    fields, hb = _stats_fields(responses)
    devs = section(responses.get("rpc_devs"), "DEVS")
    rate = _ths(_one(fields, "GHSspd"))
    avg = _ths(_one(fields, "GHSavg"))
    if rate is None and devs:
        rates = [current_hashrate_ths(d) for d in devs]
        rate = round(sum(r for r in rates if r is not None), 9) if any(r is not None for r in rates) else None
        avgs = [hashrate_ths(d, "av") for d in devs]
        avg = round(sum(a for a in avgs if a is not None), 9) if any(a is not None for a in avgs) else None
        rate, avg = (v if v is not None and 0 <= v <= MAX_THS else None for v in (rate, avg))
    mining = bool(rate and rate > 0)
    off = softoff(fields)

    board_rates = _nums(fields.get("MGHS"))
    board_max = _nums(fields.get("MTmax"))
    if not board_max and hb:  # Avalon Q/Nano: per-chip sensors of each board in HBinfo
        board_max = [max(_nums(hb.get(f"PVT_T{i}")) or [0.0]) for i in range(len(board_rates))]
    errors_per_board = _nums(fields.get("ECHU"))
    total = sum(board_rates)
    chips_total = _one(fields, "TA")
    boards = []
    for i, share in enumerate(board_rates):
        board_rate = rate * share / total if rate is not None and total > 0 else (0.0 if rate == 0 else None)
        chips = int(chips_total / len(board_rates)) if chips_total else None
        code = int(errors_per_board[i]) if i < len(errors_per_board) else 0
        problems = [f"error code {code}"] if code else []
        if mining and not board_rate:
            problems.append("not hashing")
        boards.append(
            Hashboard(
                index=i,
                hashrate_ths=round(board_rate, 9) if board_rate is not None else None,
                chips=chips,
                chip_temp_c=_temp(board_max[i] if i < len(board_max) else None),
                inlet_temp_c=_temp(_one(fields, "HBITemp")) if len(board_rates) == 1 else None,
                outlet_temp_c=_temp(_one(fields, "HBOTemp")) if len(board_rates) == 1 else None,
                ok=not problems,
                status="; ".join(problems) if problems else "ok",
            )
        )
    fans = tuple(
        Fan(n - 1, int(v))
        if (v := _one(fields, f"Fan{n}")) is not None and 0 <= v <= 30_000
        else Fan(n - 1, None)
        for n in range(1, 9)
        if f"Fan{n}" in fields
    )

    wall = _one(fields, "WALLPOWER")
    if wall is None:
        ps = _nums(fields.get("PS"))
        wall = ps[-1] if len(ps) >= 7 else None  # PS[...]: the last value is the wall power (= WALLPOWER)
    workmode = _one(fields, "WORKMODE")
    mode = (
        Mode.SLEEP
        if off
        else WORKMODES.get(int(workmode), Mode.UNKNOWN)
        if workmode is not None
        else Mode.UNKNOWN
    )

    faults = [
        Fault(code="board", message=f"board {b.index}: {b.status}", component=Component.BOARD)
        for b in boards
        if not b.ok
    ]
    ecmm = _one(fields, "ECMM")
    if ecmm:
        faults.append(
            Fault(
                code=f"ECMM:{int(ecmm)}",
                message=f"controller error code {int(ecmm)}",
                component=Component.CONTROL_BOARD,
            )
        )
    if mining:
        faults += [
            Fault(code="fan_stopped", message=f"fan {f.index} stopped", component=Component.FAN)
            for f in fans
            if f.rpm == 0
        ]
    temps = [t for t in (_temp(_one(fields, "TMax")), *(b.chip_temp_c for b in boards)) if t is not None]
    elapsed = _one(fields, "Elapsed")
    return Snapshot(
        hashrate_ths=rate,
        hashrate_avg_ths=avg,
        power_w=_watts(wall),
        power_limit_w=_watts(_one(fields, "MPO")),
        is_mining=mining,
        mode=mode,
        hashboards=tuple(boards),
        fans=fans,
        pools=parse_pools(responses.get("rpc_pools")),
        errors=tuple(faults),
        uptime_s=int(elapsed) if elapsed is not None and elapsed >= 0 else None,
        polled_at=polled_at,
        temp_c=max(temps) if temps else None,
        env_temp_c=_temp(_one(fields, "ITemp") if "ITemp" in fields else _one(fields, "Temp")),
    )
