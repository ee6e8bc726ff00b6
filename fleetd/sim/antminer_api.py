"""Antminer CGMiner API (TCP 4028): the commands, quirky rendering, the text form and the connection."""

from __future__ import annotations

import json
import re
import time
from functools import cache
from typing import TYPE_CHECKING, Any, ClassVar

from fleetd.sim.antminer_replies import Live, _dumps, _status, capture
from fleetd.sim.base import MinerState, reply_override, wire
from fleetd.sim.server import PADDING, OneShotConnection

if TYPE_CHECKING:
    from fleetd.sim.antminer import AntminerMiner

# A connection the client keeps open (no_nul, dead miner) is closed after this long idle.
# Never short: clients under load send their request seconds after connecting.
IDLE_CLOSE_S = 120.0


class CgminerApi:
    """The CGMiner API half of an Antminer (mixed into AntminerMiner)."""

    state: MinerState
    conf: dict[str, Any]
    prefix: ClassVar[str]
    miner_version: ClassVar[str]
    miner_id: str
    rpc_stats_template: ClassVar[str] = "antminer_s19pro_stats"
    pools_stale_key: ClassVar[str] = "Pool Stale%"

    def api_reply(self, request: bytes) -> tuple[bytes, bool]:
        """The bytes answering one API request, and whether to keep the socket open afterwards."""
        quirks = self.state.faults.quirks
        text = request.strip(PADDING).decode("utf-8", "replace")
        now = time.time()
        if text.startswith("{"):
            body = self._json_request(text, now)
        else:
            command, _, param = text.partition("|")
            reply = self.rpc(command.strip(), param, now) if "+" not in command else None
            if reply is None:
                reply = self._error(14, "Invalid command", now)
            body = reply_override(self.state.faults, command.strip()) or to_text(reply)
        if self.state.faults.malformed:
            body = body[: max(1, len(body) // 2)]
        data = wire(body)
        if "no_nul" in quirks:
            return data, True
        return data + b"\x00", False

    def _json_request(self, text: str, now: float) -> str:
        try:
            req = json.loads(text)
        except ValueError:
            return _dumps(self._error(23, "Invalid JSON", now))
        if not isinstance(req, dict) or not isinstance(req.get("command"), str):
            return _dumps(self._error(24, "Missing JSON 'command'", now))
        command = req["command"].strip()
        param = req.get("parameter", "")
        param = "" if param is None else str(param)
        if "+" not in command:
            return self._render(
                command, self.rpc(command, param, now) or self._error(14, "Invalid command", now)
            )
        # Joined commands: one object keyed by command, each value a one-element list.
        parts = []
        for cmd in command.split("+"):
            reply = self.rpc(cmd, param, now) or self._error(14, "Invalid command", now)
            parts.append(f"{json.dumps(cmd)}:[{self._render(cmd, reply)}]")
        return "{" + ",".join(parts) + ',"id":1}'

    def _render(self, command: str, reply: dict) -> str:
        override = reply_override(self.state.faults, command)
        if override is not None:
            return override
        quirks = self.state.faults.quirks
        if command == "stats" and ("brace" in quirks or "trailing_comma" in quirks) and "STATS" in reply:
            items = [_dumps(item) for item in reply["STATS"]]
            if "trailing_comma" in quirks:
                items[-1] = items[-1][:-1] + ",}"
            sep = "" if "brace" in quirks else ","
            stats = "[" + sep.join(items) + "]"
            return f'{{"STATUS":{_dumps(reply["STATUS"])},"STATS":{stats},"id":1}}'
        body = _dumps(reply)
        if command == "summary" and "inf" in quirks:
            body = re.sub(r'"Device Hardware%":[-0-9.eE+]+', '"Device Hardware%":inf', body)
        if command == "pools" and "leading_comma" in quirks:
            body = body.replace('"POOLS":[{', '"POOLS":[,{', 1)
        return body

    def _error(self, code: int, msg: str, now: float) -> dict:
        return {"STATUS": [_status(code, msg, now, "E")], "id": 1}

    def rpc(self, command: str, param: str, now: float) -> dict | None:
        """The decoded reply to one API command, or None for a command this firmware lacks."""
        handler = self._RPC.get(command)
        return handler(self, param, now) if handler else None

    def _rpc_version(self, _param: str, now: float) -> dict:
        cap = capture(f"{self.prefix}_version")
        return {"STATUS": [_status(22, "CGMiner versions", now)], "VERSION": cap["VERSION"], "id": 1}

    def _rpc_summary(self, _param: str, now: float) -> dict:
        live = self._live(now)
        item = dict(capture(f"{self.prefix}_summary")["SUMMARY"][0])
        elapsed = max(1, live.elapsed)
        item.update(
            {
                "Elapsed": live.elapsed,
                "GHS 5s": round(live.rate_ghs, 2),
                "GHS av": round(live.avg_ghs, 2),
                "GHS 30m": round(live.avg_ghs, 2),
                "Accepted": live.accepted,
                "Rejected": live.rejected,
                "Getwork": live.elapsed // 12,
                "Local Work": live.elapsed * 90,
                "Discarded": live.elapsed * 89,
                "Hardware Errors": live.elapsed // 100,
                "Utility": round(live.accepted / elapsed * 60, 2),
                "Work Utility": round(live.avg_ghs * 13.97, 2),
                "Difficulty Accepted": float(live.accepted * 262144),
                "Difficulty Rejected": float(live.rejected * 262144),
                "Total MH": float(round(live.avg_ghs * 1000 * live.elapsed)),
                "Last getwork": live.now,
            }
        )
        return {"STATUS": [_status(11, "Summary", now)], "SUMMARY": [item], "id": 1}

    def _rpc_stats(self, _param: str, now: float) -> dict:
        live = self._live(now)
        cap = capture(self.rpc_stats_template)
        head = dict(capture(f"{self.prefix}_version")["VERSION"][0])
        head.pop("API", None)
        item = dict(cap["STATS"][1])
        rate_keys = [k for k in item if k.startswith("chain_rate")]
        slots = len(rate_keys)
        item.update(
            {
                "Elapsed": live.elapsed,
                "GHS 5s": round(live.rate_ghs, 2),
                "GHS av": round(live.avg_ghs, 2),
                "rate_30m": round(live.avg_ghs, 2),
                "total rate": round(live.avg_ghs, 2),
                "total_rateideal": round(live.ideal_ghs, 2),
                "miner_count": sum(1 for c in live.chips if c),
                "total_acn": sum(live.chips),
                "fan_num": len(live.fans),
                "temp_num": len(live.chips),
                "miner_id": self.miner_id,
                "miner_version": self.miner_version,
            }
        )
        for i, rpm in enumerate(live.fans[:4], start=1):
            item[f"fan{i}"] = rpm
        max_temp = 0
        for n in range(1, slots + 1):
            b = n - 1
            if b < len(live.chips) and live.chips[b]:
                t = live.chip_temps[b]
                chip = [round(t + 8), round(t - 20), round(t - 1), round(t)]
                pcb = [c - 5 for c in chip]
                pic = [c - 15 for c in chip]
                max_temp = max(max_temp, *chip)
                item.update(
                    {
                        f"chain_acn{n}": live.chips[b],
                        f"chain_acs{n}": _acs(live.chips[b]),
                        f"chain_hw{n}": live.elapsed // 300,
                        f"chain_rate{n}": f"{live.board_ghs[b]:.2f}",
                        f"freq{n}": item.get("frequency", 525),
                        f"temp_chip{n}": "-".join(map(str, chip)),
                        f"temp_pcb{n}": "-".join(map(str, pcb)),
                        f"temp_pic{n}": "-".join(map(str, pic)),
                    }
                )
                if n <= 3:
                    item[f"temp{n}"] = pcb[0]
                    item[f"temp2_{n}"] = chip[0]
            elif b < len(live.chips):  # a board that is down: detected slot, no chips
                item.update(
                    {
                        f"chain_acn{n}": 0,
                        f"chain_acs{n}": "",
                        f"chain_hw{n}": 0,
                        f"chain_rate{n}": "0.00",
                        f"temp_chip{n}": "0-0-0-0",
                        f"temp_pcb{n}": "0-0-0-0",
                        f"temp_pic{n}": "0-0-0-0",
                    }
                )
                if n <= 3:
                    item[f"temp{n}"] = 0
                    item[f"temp2_{n}"] = 0
        item["temp_max"] = max_temp
        return {"STATUS": [_status(70, "CGMiner stats", now)], "STATS": [head, item], "id": 1}

    def _pool_items(self, live: Live) -> list[dict]:
        template = capture("antminer_s21_pools")["POOLS"]
        items = []
        for i, conf in enumerate(self.conf["pools"][: len(template)]):
            item = dict(template[min(i, len(template) - 1)])
            url = conf.get("url", "")
            if i == 0:
                item.update(
                    {
                        "Getworks": live.elapsed // 12,
                        "Accepted": live.accepted,
                        "Rejected": live.rejected,
                        "Discarded": live.elapsed * 89,
                        "Difficulty Accepted": float(live.accepted * 262144),
                        "Difficulty Rejected": float(live.rejected * 262144),
                        "Status": "Alive" if url else "Dead",
                    }
                )
            item.update(
                {
                    "POOL": i,
                    "URL": url,
                    "User": conf.get("user", ""),
                    "Priority": i,
                    "Stratum URL": _stratum_host(url),
                }
            )
            stale_key = "Pool Stale%%" if "pool_stale" in self.state.faults.quirks else self.pools_stale_key
            value = item.pop("Pool Stale%%", 0.0)
            item[stale_key] = value
            items.append(item)
        return items

    def _rpc_pools(self, _param: str, now: float) -> dict:
        items = self._pool_items(self._live(now))
        return {"STATUS": [_status(7, f"{len(items)} Pool(s)", now)], "POOLS": items, "id": 1}

    def _rpc_devs(self, _param: str, now: float) -> dict:
        live = self._live(now)
        item = dict(capture("antminer_s21_devs")["DEVS"][0])
        item.update(
            {
                "Temperature": float(round(max(live.chip_temps or [0.0]))),
                "MHS av": round(live.avg_ghs * 1000, 2),
                "MHS 5s": round(live.rate_ghs * 1000, 2),
                "Accepted": live.accepted,
                "Rejected": live.rejected,
                "Last Share Time": live.now,
                "Last Share Difficulty": live.now,
                "Last Valid Work": live.now,
                "Difficulty Accepted": live.accepted * 262144,
                "Difficulty Rejected": live.rejected * 262144,
                "Device Elapsed": live.elapsed,
            }
        )
        return {"STATUS": [_status(9, "1 ASC(s)", now)], "DEVS": [item], "id": 1}

    def _rpc_config(self, _param: str, now: float) -> dict:
        item = {
            "ASC Count": 1,
            "PGA Count": 0,
            "Pool Count": len(self.conf["pools"]),
            "Strategy": "Failover",
            "Log Interval": 5,
            "Device Code": "",
            "OS": "Linux",
            "Hotplug": "None",
        }
        return {"STATUS": [_status(33, "CGMiner config", now)], "CONFIG": [item], "id": 1}

    def _rpc_check(self, param: str, now: float) -> dict:
        exists = "Y" if param in self._RPC else "N"
        item = {"Exists": exists, "Access": exists}
        return {"STATUS": [_status(72, "Check command", now)], "CHECK": [item], "id": 1}

    _RPC: ClassVar[dict[str, Any]] = {
        "version": _rpc_version,
        "summary": _rpc_summary,
        "stats": _rpc_stats,
        "pools": _rpc_pools,
        "devs": _rpc_devs,
        "edevs": _rpc_devs,
        "config": _rpc_config,
        "check": _rpc_check,
    }


@cache
def _acs(chips: int) -> str:
    groups, rest = divmod(chips, 3)
    return "".join([" ooo"] * groups) + (" " + "o" * rest if rest else "")


def _stratum_host(url: str) -> str:
    host = url.split("://", 1)[-1]
    return host.rsplit(":", 1)[0] if host else ""


def to_text(reply: dict) -> str:
    """A decoded reply in CGMiner's text form: `STATUS=S,When=..,Code=..|SECTION,k=v,...|`."""
    out = []
    for section, items in reply.items():
        if section == "id":
            continue
        for item in items if isinstance(items, list) else [items]:
            pairs = ",".join(f"{k}={_text_value(v)}" for k, v in item.items())
            first = next(iter(item), "")
            # Items led by their own id field (STATS=0, POOL=0, ASC=0) carry no section name.
            if section in ("STATUS", "STATS") or section.startswith(first) or first in ("ASC", "PGA", "GPU"):
                out.append(pairs + "|")
            else:
                out.append(f"{section},{pairs}|")
    return "".join(out)


def _text_value(v: Any) -> str:
    if isinstance(v, bool):
        return "true" if v else "false"
    if isinstance(v, list | dict):
        return _dumps(v)
    return str(v)


class ApiProtocol(OneShotConnection):
    """One CGMiner API connection: one request, one reply, then close (unless a quirk keeps it open)."""

    __slots__ = ()
    idle_s = IDLE_CLOSE_S
    miner: AntminerMiner

    def complete(self, request: bytes) -> bool:
        if not request.startswith(b"{"):
            return True  # text form: CGMiner answers whatever one read returned
        try:
            json.loads(request)
        except ValueError:
            return False
        return True

    def answer(self, request: bytes) -> tuple[bytes, bool]:
        return self.miner.api_reply(request)
