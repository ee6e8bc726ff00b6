"""A corpus of malformed replies: each kind names an emulated model and the reply bodies it serves instead.

A kind's replies are built from the emulator's own healthy reply (so everything else stays true) and
set on its `Faults.replies`: by API command ("summary", "stats", "get.miner.status") or web path.
`values` marks kinds whose replies decode but carry impossible figures: those miners stay up; the
others may be reported down with a clean error. `fault` marks kinds whose impossible figures reach
the normalized model and must leave an "implausible" fault (decoding turns NaN and Infinity tokens
into null, and parsers turn words and unparsable fields into None, before that).
"""

from __future__ import annotations

import json
import math
import re
import time
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import Any

S19, M50S, M60S = "Antminer S19 Pro", "Whatsminer M50S_VH50", "Whatsminer M60S_VK40"
LUXOS, AVALON, VNISH, BRAIINS = "Antminer S19k Pro", "AvalonMiner 15-194", "Antminer S19", "Antminer S21 Pro"
NAN, INF = math.nan, math.inf
HUGE = 10**30


@dataclass(frozen=True)
class Kind:
    name: str
    model: str
    build: Callable[[Any], dict[str, bytes]]  # emulator -> replies
    values: bool = False  # decodes; impossible figures only
    fault: bool = False  # an "implausible" fault must show
    driver: str = ""  # forced driver (else detection)


def dumps(doc: Any) -> bytes:
    """JSON as a careless firmware writes it: NaN and Infinity as bare tokens, any integer."""
    return json.dumps(doc, separators=(",", ":"), allow_nan=True).encode()


def put(doc: Any, values: Mapping[str, Any]) -> Any:
    """`doc` with every key of `values`, wherever it occurs, set to its value."""
    if isinstance(doc, dict):
        return {k: values[k] if k in values else put(v, values) for k, v in doc.items()}
    if isinstance(doc, list):
        return [put(v, values) for v in doc]
    return doc


def rpc(emu: Any, command: str) -> dict[str, Any]:
    return emu.rpc(command, "", time.time())


def api(
    command: str, values: Mapping[str, Any] | None = None, edit: Callable[[Any], Any] | None = None
) -> Any:
    """A CGMiner-API kind: `command`'s healthy reply with `values` put in (or `edit`ed)."""

    def build(emu: Any) -> dict[str, bytes]:
        doc = rpc(emu, command)
        return {command: dumps(edit(doc) if edit else put(doc, values or {}))}

    return build


def raw(replies: Mapping[str, bytes]) -> Callable[[Any], dict[str, bytes]]:
    return lambda _emu: dict(replies)


def both(*builds: Callable[[Any], dict[str, bytes]]) -> Callable[[Any], dict[str, bytes]]:
    return lambda emu: {k: v for b in builds for k, v in b(emu).items()}


def _chains(key: str, value: Any) -> dict[str, Any]:
    return {f"{key}{i}": value for i in range(1, 5)}


def _duplicated(emu: Any) -> dict[str, bytes]:
    text = dumps(rpc(emu, "summary")).decode()
    text = re.sub(r'("GHS 5s":[^,]+)', r'\1,"GHS 5s":1e300', text)
    text = re.sub(r'("GHS av":[^,]+)', r'\1,"GHS av":-1e308', text)
    return {"summary": text.encode()}


def _huge_pools(emu: Any) -> dict[str, bytes]:
    doc = rpc(emu, "pools")
    pool = {"POOL": 0, "URL": "stratum+tcp://p:3333", "Status": "Alive", "Accepted": 1, "Rejected": 0}
    doc["POOLS"] = [{**pool, "POOL": i} for i in range(8000)]
    return {"pools": dumps(doc)}


def _non_utf8(emu: Any) -> dict[str, bytes]:
    body = dumps(rpc(emu, "summary")).replace(b'"Elapsed"', b'"Elap\xff\xfesed"')
    return {"summary": body.replace(b'"SUMMARY"', b'"SUMMARY","Note\xc3":"\x80\x81\xfe"')}


def _v2(command: str, values: Mapping[str, Any]) -> Callable[[Any], dict[str, bytes]]:
    def build(emu: Any) -> dict[str, bytes]:
        doc = json.loads(emu._v2_read(command, time.time()))
        return {command: dumps(put(doc, values))}

    return build


def _v3_status(values: Mapping[str, Any]) -> Callable[[Any], dict[str, bytes]]:
    """get.miner.status answers for every param at once (summary, edevs, pools), impossible figures put in."""

    def build(emu: Any) -> dict[str, bytes]:
        from fleetd.sim.whatsminer_v3 import _V3_READS

        msg: dict[str, Any] = {}
        for param in ("summary", "edevs", "pools"):
            msg.update(_V3_READS["get.miner.status"](emu, param, time.time())["msg"])
        return {"get.miner.status": dumps(put({"code": 0, "msg": msg, "when": int(time.time())}, values))}

    return build


def _avalon(emu: Any) -> dict[str, bytes]:
    doc = rpc(emu, "estats")
    mm = doc["STATS"][0]["MM ID0"]
    for key, value in (("GHSspd", "1e300"), ("TMax", "inf"), ("Fan1", "-99999"), ("WALLPOWER", str(HUGE))):
        mm = re.sub(rf"{key}\[[^\]]*\]", f"{key}[{value}]", mm)
    doc["STATS"][0]["MM ID0"] = mm
    return {"estats": dumps(doc)}


def _vnish_summary(values: Mapping[str, Any]) -> Callable[[Any], dict[str, bytes]]:
    def build(emu: Any) -> dict[str, bytes]:
        _status, doc = emu._summary(None, time.time())  # the protected page, as the logged-in driver sees it
        return {"/api/v1/summary": dumps(put(doc, values))}

    return build


KINDS: tuple[Kind, ...] = (
    Kind("nan_hashrate", S19, api("summary", {"GHS 5s": NAN, "GHS av": NAN}), values=True),
    Kind("inf_hashrate", S19, api("summary", {"GHS 5s": INF, "GHS av": INF}), values=True),
    Kind("neg_inf_board_rates", S19, api("stats", _chains("chain_rate", -INF)), values=True),
    Kind(
        "1e300_temperatures",
        S19,
        api(
            "stats",
            {
                "temp2_1": 1e300,
                "temp2_2": 1e300,
                "temp_max": 1e300,
                **_chains("temp_chip", "1e300-1e300-1e300-1e300"),
            },
        ),
        values=True,
    ),
    Kind(
        "-1e308_hashrate", S19, api("summary", {"GHS 5s": -1e308, "GHS av": -1e308}), values=True, fault=True
    ),
    Kind("1e30_chips", S19, api("stats", _chains("chain_acn", HUGE)), values=True, fault=True),
    Kind("1e30_fans", S19, api("stats", _chains("fan", HUGE)), values=True, fault=True),
    Kind("negative_fans", S19, api("stats", _chains("fan", -6000)), values=True, fault=True),
    Kind(
        "negative_hashrate", S19, api("summary", {"GHS 5s": -110000, "GHS av": -5}), values=True, fault=True
    ),
    Kind(
        "words_for_numbers",
        S19,
        api("summary", {"GHS 5s": "fast", "GHS av": "high", "Elapsed": "long"}),
        values=True,
    ),
    Kind(
        "inf_as_strings",
        S19,
        api("summary", {"GHS 5s": "inf", "GHS av": "-Infinity", "Elapsed": "nan"}),
        values=True,
    ),
    Kind(
        "1e30_pool_counters",
        S19,
        api("pools", {"Accepted": HUGE, "Rejected": 1e300, "Stale": -1e308}),
        values=True,
        fault=True,
    ),
    Kind(
        "1e30_uptime",
        S19,
        api("summary", {"Elapsed": HUGE, "Hardware Errors": 1e300}),
        values=True,
        fault=True,
    ),
    Kind("list_for_dict", S19, api("summary", {"SUMMARY": [[1, 2, 3]]})),
    Kind("dict_for_list", S19, both(api("pools", {"POOLS": {"a": 1}}), api("stats", {"STATS": {"x": 1}}))),
    Kind("null_sections", S19, both(api("summary", {"SUMMARY": None}), api("stats", {"STATS": None}))),
    Kind(
        "missing_sections",
        S19,
        both(
            api("summary", edit=lambda d: {"STATUS": d["STATUS"], "id": 1}),
            api("stats", edit=lambda d: {"STATUS": d["STATUS"], "id": 1}),
        ),
    ),
    Kind("duplicated_keys", S19, _duplicated, values=True, fault=True),
    Kind("deep_nesting", S19, raw({"stats": b"[" * 300_000 + b"]" * 300_000})),
    Kind("huge_array", S19, _huge_pools, values=True, fault=True),
    Kind("truncated", S19, lambda emu: {"summary": dumps(rpc(emu, "summary"))[:150]}),
    Kind("non_utf8", S19, _non_utf8),
    Kind(
        "wrong_status",
        S19,
        raw(
            {
                "summary": b'{"STATUS":[{"STATUS":"E","When":1,"Code":45,"Msg":"Access denied"'
                b',"Description":"cgminer"}],"id":1}'
            }
        ),
    ),
    Kind("empty_reply", S19, raw({"summary": b""})),
    Kind("binary_garbage", S19, raw({"stats": bytes(range(256)) * 4})),
    Kind("scalars_for_replies", S19, raw({"summary": b"[1,2,3]", "stats": b"42"})),
    Kind(
        "generic_cgminer_devs",
        S19,
        api("devs", {"MHS 5s": INF, "GHS 5s": 1e300, "Temperature": 1e300}),
        values=True,
        fault=True,
        driver="cgminer",
    ),
    Kind(
        "whatsminer_v2_summary",
        M50S,
        _v2(
            "summary",
            {
                "HS RT": 1e300,
                "MHS 5s": 1e300,
                "Power": -1e308,
                "Temperature": NAN,
                "Fan Speed In": HUGE,
                "Elapsed": -5,
                "Error Code Count": HUGE,
            },
        ),
        values=True,
        fault=True,
    ),
    Kind(
        "whatsminer_v2_psu",
        M50S,
        _v2("get_psu", {"vin": 1e300, "pin": INF, "fan_speed": HUGE, "temp0": -1e308}),
        values=True,
        fault=True,
    ),
    Kind(
        "whatsminer_v3_status",
        M60S,
        _v3_status(
            {
                "hash-average": 1e300,
                "power-realtime": HUGE,
                "fan-speed-in": -1,
                "chip-temp-max": 1e300,
                "elapsed": -1e308,
                "hash-realtime": INF,
            }
        ),
        values=True,
        fault=True,
    ),
    Kind(
        "luxos_power",
        LUXOS,
        both(api("power", {"Watts": HUGE}), api("summary", {"GHS 5s": 1e300})),
        values=True,
    ),
    Kind("avalon_estats", AVALON, _avalon, values=True),
    Kind(
        "vnish_summary",
        VNISH,
        _vnish_summary(
            {
                "instant_hashrate": 1e300,
                "average_hashrate": -1e308,
                "power_consumption": HUGE,
                "rpm": -100,
                "chip_temp": {"min": 1e300, "max": 1e300},
            },
        ),
        values=True,
        fault=True,
    ),
    Kind(
        "braiins_summary",
        BRAIINS,
        api("summary", {"MHS 5s": 1e300, "MHS av": -1e308, "Elapsed": HUGE}),
        values=True,
        fault=True,
    ),
)
