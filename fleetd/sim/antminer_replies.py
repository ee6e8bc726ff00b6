"""Antminer reply material: capture templates in firmware field order, live values, STATUS blocks."""

from __future__ import annotations

import json
import time
from functools import cache
from pathlib import Path
from typing import Any

from fleetd.sim.base import MinerState

_CAPTURES = Path(__file__).parent / "captures"


@cache
def capture(name: str) -> Any:
    """A capture template (shared, never mutate: callers deep-copy the parts they fill)."""
    data = json.loads((_CAPTURES / f"{name}.json").read_text())
    if name == "antminer_s19pro_stats":
        item = data["STATS"][1]
        data["STATS"][1] = {k: item[k] for k in sorted(item, key=_order_key(_BMMINER_STATS_ORDER))}
    if name in _RESORTED:
        # These captures were key-sorted by their publisher; restore the firmware's field order
        # from the S21 capture of the same reply (same CGMiner API code, same field set).
        section, like = _RESORTED[name]
        order = list(capture(like)[section][0])
        data[section] = [{k: item[k] for k in sorted(item, key=_order_key(order))} for item in data[section]]
    return data


_RESORTED = {
    "antminer_s19pro_version": ("VERSION", "antminer_s21_version"),
    "antminer_s19pro_summary": ("SUMMARY", "antminer_s21_summary"),
}


def _numbered(*names: str) -> list[str]:
    return [f"{name}{n}" for name in names for n in range(1, 5)]


# Field order of BMMiner 49.0.1.3 `stats` (seen in a public dump from an S19j Pro on that firmware;
# same field set as our key-sorted S19 Pro capture).
_BMMINER_STATS_ORDER = [
    *("STATS", "ID", "Elapsed", "Calls", "Wait", "Max", "Min", "GHS 5s", "GHS av", "rate_30m", "Mode"),
    *("miner_count", "frequency", "fan_num", *_numbered("fan"), "temp_num"),
    *("temp1", "temp2_1", "temp2", "temp2_2", "temp3", "temp2_3"),
    *_numbered("temp_pcb", "temp_chip", "temp_pic"),
    *("total_rateideal", "rate_unit", "total_freqavg", "total_acn", "total rate", "temp_max"),
    "no_matching_work",
    *_numbered("chain_acn", "chain_acs", "chain_hw", "chain_rate", "freq"),
    *("miner_version", "miner_id"),
]


def _order_key(order: list[str]) -> Any:
    return lambda k: order.index(k) if k in order else len(order)


def _dumps(obj: Any) -> str:
    return json.dumps(obj, separators=(",", ":"))


def _status(code: int, msg: str, when: float, status: str = "S", description: str = "cgminer 1.0.0") -> dict:
    return {"STATUS": status, "When": int(when), "Code": code, "Msg": msg, "Description": description}


class Live:
    """The values of one reply, computed once from the state (so that all fields agree)."""

    __slots__ = (
        "accepted",
        "at",
        "avg_ghs",
        "board_ghs",
        "chip_temps",
        "chips",
        "elapsed",
        "fans",
        "ideal_board_ghs",
        "ideal_ghs",
        "now",
        "rate_ghs",
        "rejected",
    )

    def __init__(self, state: MinerState, now: float | None = None) -> None:
        now = time.time() if now is None else now
        spec = state.spec
        self.at = now
        self.now = int(now)
        self.elapsed = state.uptime_s(now)
        self.rate_ghs = state.hashrate_ths(now) * 1000.0
        self.avg_ghs = state.steady_hashrate_ths(now) * 1000.0
        self.ideal_ghs = state.expected_hashrate_ths() * 1000.0
        shares = state.board_fractions()
        total_share = sum(shares) or 1.0
        self.board_ghs = [self.rate_ghs * s / total_share for s in shares]
        self.ideal_board_ghs = self.ideal_ghs / max(1, spec.boards)
        self.chips = [spec.chips_per_board if s > 0 else 0 for s in shares]
        self.chip_temps = [state.chip_temp_c(now) if s > 0 else 0.0 for s in shares]
        self.fans = state.fan_rpms()
        self.accepted = state.accepted + int(self.elapsed * 0.08)
        self.rejected = state.rejected + self.accepted // 500

    def web_rates(self) -> dict[str, int | float]:
        """Uptime and hashrates (GH/s) as the web CGI's summary and stats items carry them."""
        return {
            "elapsed": self.elapsed,
            "rate_5s": round(self.rate_ghs, 2),
            "rate_30m": round(self.avg_ghs, 2),
            "rate_avg": round(self.avg_ghs, 2),
            "rate_ideal": round(self.ideal_ghs, 2),
        }
