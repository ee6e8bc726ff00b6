"""Antminer stock firmware emulator: the CGMiner API (TCP 4028) and the digest-protected web CGI (80).

Replies are built from real captures (fleetd/sim/captures, see PROVENANCE.md there): field names,
order, types and STATUS blocks come from the capture, live values from the miner's `MinerState`.
Both servers are bare asyncio protocols so that one process can serve thousands of miners.

Quirks (per miner, `Faults.quirks`), each the breakage some real firmware emits:
  brace           `}{` between the elements of the `stats` list
  trailing_comma  `,}` closing the last `stats` element
  inf             a bare `inf` number in `summary`
  pool_stale      the `"Pool Stale%%"` key in `pools` (the S21 firmware always emits it)
  leading_comma   `[,{` opening the `pools` list
  no_nul          no NUL terminator, and the socket is left open after the reply
"""

from __future__ import annotations

import asyncio
import copy
import hashlib
import hmac
import json
import os
import re
import time
from email.utils import formatdate
from functools import cache
from pathlib import Path
from typing import Any, ClassVar

from fleetd.sim.base import EmulatedMiner, MinerState, listen
from fleetd.sim.server import MAX_REQUEST, PADDING, Connection, OneShotConnection, RebootingMiner

QUIRKS = frozenset({"brace", "trailing_comma", "inf", "pool_stale", "leading_comma", "no_nul"})
REALM = "antMiner Configuration"
_CHALLENGE = f'Digest realm="{REALM}", charset="UTF-8", algorithm=MD5'
DEFAULT_USER = "root"
# A connection the client keeps open (no_nul, dead miner) is closed after this long idle.
# Never short: clients under load send their request seconds after connecting.
IDLE_CLOSE_S = 120.0
# lighttpd's defaults: a request may take 60 s to arrive (max-read-idle); a kept-alive connection
# idle for 5 s after a response is closed (max-keep-alive-idle), so clients must not reuse it later.
WEB_READ_IDLE_S = 60.0
WEB_KEEP_ALIVE_IDLE_S = 5.0

_CAPTURES = Path(__file__).parent / "captures"
_NONCE_KEY = os.urandom(16)


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


class AntminerMiner(RebootingMiner):
    """One Antminer on stock firmware; subclasses pin the firmware flavour."""

    vendor = "Antminer"
    prefix: ClassVar[str]  # capture file prefix
    miner_version: ClassVar[str]
    compile_time: ClassVar[str]
    rpc_stats_template: ClassVar[str] = "antminer_s19pro_stats"
    pools_stale_key: ClassVar[str] = "Pool Stale%"

    def __init__(
        self,
        state: MinerState,
        host: str,
        ports: dict[str, int],
        *,
        conf_delay_s: float = 0.0,
        reboot_s: float = 0.0,
    ) -> None:
        super().__init__(state, host, ports)
        self.conf_delay_s = conf_delay_s  # set_miner_conf.cgi answers only after this (firmware restarts)
        self.reboot_s = reboot_s  # how long reboot.cgi takes the miner off the network
        self.blink = False
        self._last_live: Live | None = None
        self._claimed_mode: str | None = None
        self.conf = copy.deepcopy(capture("antminer_s21_web-get_miner_conf.cgi"))
        worker = host.replace(".", "x")
        self.conf["pools"][0]["user"] = f"fleetd_sim.{worker}"
        self.conf["bitmain-work-mode"] = self._work_mode_value()
        if not state.serial:
            state.serial = "SIM" + hashlib.md5(host.encode()).hexdigest()[:14].upper()  # 17 chars
        self.miner_id = hashlib.md5(f"id:{host}".encode()).hexdigest()[:16]  # the control board's id
        if not state.mac:
            octets = [int(x) for x in host.split(".")]
            state.mac = "02:42:{:02X}:{:02X}:{:02X}:{:02X}".format(*octets)
        if not state.hostname:
            state.hostname = "Antminer"

    def _live(self, now: float) -> Live:
        # One reading per request: the parts of a joined reply agree with each other.
        if self._last_live is None or self._last_live.at != now:
            self._last_live = Live(self.state, now)
        return self._last_live

    # --- lifecycle ---------------------------------------------------------------------------
    async def start(self) -> None:
        try:
            self.servers.append(await listen(lambda: ApiProtocol(self), self.host, self.ports["api"]))
            self.servers.append(await listen(lambda: WebProtocol(self), self.host, self.ports["web"]))
        except BaseException:
            await EmulatedMiner.stop(self)  # not self.stop(): start() also runs inside the reboot task
            raise

    # --- CGMiner API ----------------------------------------------------------------------------
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
            body = to_text(reply)
        if self.state.faults.malformed:
            body = body[: max(1, len(body) // 2)]
        data = body.encode()
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

    # --- web CGI --------------------------------------------------------------------------------
    def password(self) -> str:
        if self.state.faults.wrong_password:
            return self.state.password + "-changed"
        return self.state.password

    def authorized(self, method: str, header: str | None) -> bool:
        if not header or not header.lower().startswith("digest "):
            return False
        fields = _auth_fields(header[7:])
        nonce = fields.get("nonce", "")
        if fields.get("username") != DEFAULT_USER or fields.get("realm") != REALM or not _nonce_ok(nonce):
            return False
        ha1 = _md5(f"{DEFAULT_USER}:{REALM}:{self.password()}")
        ha2 = _md5(f"{method}:{fields.get('uri', '')}")
        if fields.get("qop"):
            expect = _md5(
                f"{ha1}:{nonce}:{fields.get('nc', '')}:{fields.get('cnonce', '')}:{fields['qop']}:{ha2}"
            )
        else:
            expect = _md5(f"{ha1}:{nonce}:{ha2}")
        return hmac.compare_digest(expect, fields.get("response", ""))

    def web(self, method: str, path: str, body: bytes) -> tuple[int, str, float]:
        """Status, body and extra delay of one authorized web request."""
        path = path.split("?", 1)[0]
        if path in ("/", "/index.html"):
            return 200, _INDEX_HTML, 0.0
        handler = self._WEB.get(path)
        if handler is None:
            return 404, _PAGES[404], 0.0
        result = handler(self, method, body)
        delay = 0.0
        if isinstance(result, tuple):
            result, delay = result
        text = _dumps(result)
        if self.state.faults.malformed:
            text = text[: max(1, len(text) // 2)]
        return 200, text, delay

    def _web_info(self) -> dict:
        info = dict(capture("antminer_s21_web-stats.cgi")["INFO"])
        info.update(
            {
                "miner_version": self.miner_version,
                "CompileTime": self.compile_time,
                "type": self.state.spec.name,
            }
        )
        return info

    def _cgi_system_info(self, _method: str, _body: bytes) -> dict:
        return {
            "minertype": self.state.spec.name,
            "nettype": "DHCP",
            "netdevice": "eth0",
            "macaddr": self.state.mac,
            "hostname": self.state.hostname,
            "ipaddress": self.host,
            "netmask": "255.0.0.0",
            "gateway": "127.0.0.1",
            "dnsservers": "127.0.0.1",
            "system_mode": "GNU/Linux",
            "system_kernel_version": "Linux 4.9.113 #1 SMP PREEMPT",
            "system_filesystem_version": self.compile_time,
            "firmware_type": "Release",
            "serinum": self.state.serial,
        }

    def _cgi_network_info(self, _method: str, _body: bytes) -> dict:
        return {
            "nettype": "DHCP",
            "netdevice": "eth0",
            "macaddr": self.state.mac,
            "ipaddress": self.host,
            "netmask": "255.0.0.0",
            "conf_nettype": "DHCP",
            "conf_hostname": self.state.hostname,
            "conf_ipaddress": "",
            "conf_netmask": "",
            "conf_gateway": "",
            "conf_dnsservers": "",
        }

    def _cgi_get_conf(self, _method: str, _body: bytes) -> dict:
        # The mode the miner is in, or what was last written if the firmware ignored it (it claims so).
        self.conf["bitmain-work-mode"] = self._claimed_mode or self._work_mode_value()
        return self.conf

    def _cgi_set_conf(self, method: str, body: bytes) -> tuple[dict, float]:
        try:
            new = json.loads(body or b"{}")
            if not isinstance(new, dict):
                raise ValueError
        except ValueError:
            return {"stats": "error", "code": "M001", "msg": "Illegal json!"}, 0.0
        mode = new.get("miner-mode", new.get("bitmain-work-mode"))
        for key, value in new.items():
            if key in self.conf and key != "bitmain-work-mode":
                self.conf[key] = value
        if mode is not None:
            self._apply_work_mode(str(mode).strip())
        return {"stats": "success", "code": "M000", "msg": "OK!"}, self.conf_delay_s

    def _apply_work_mode(self, value: str) -> None:
        state = self.state
        if state.faults.ignore_power_commands:
            self._claimed_mode = value
            return
        self._claimed_mode = None
        if value == "1":
            state.sleep()
        elif value in ("0", "3"):
            state.wake()
            state.mode = "low" if value == "3" else "normal"

    def _work_mode_value(self) -> str:
        if self.state.sleeping:
            return "1"
        return "3" if self.state.mode == "low" else "0"

    def _cgi_summary(self, _method: str, _body: bytes) -> dict:
        live = self._live(time.time())
        cap = capture("antminer_s21_web-summary.cgi")
        status = [dict(s) for s in cap["SUMMARY"][0]["status"]]
        problems = {
            "rate": live.rate_ghs == 0 and not self.state.sleeping,
            "fans": self.state.faults.fan_failed,
            "temp": self.state.faults.overheat,
        }
        for s in status:
            if problems.get(s["type"]):
                s.update({"status": "e", "code": 1, "msg": f"{s['type']} abnormal"})
        item = dict(cap["SUMMARY"][0])
        item.update(
            {
                **live.web_rates(),
                "hw_all": live.elapsed // 100,
                "status": status,
            }
        )
        st = dict(cap["STATUS"][0])
        st["When"] = live.now
        return {"STATUS": [st], "INFO": self._web_info(), "SUMMARY": [item]}

    def _cgi_stats(self, _method: str, _body: bytes) -> dict:
        live = self._live(time.time())
        cap = capture("antminer_s21_web-stats.cgi")
        chain_t = cap["STATS"][0]["chain"][0]
        chains = []
        for b, chips in enumerate(live.chips):
            t = live.chip_temps[b]
            chip = [round(t - 14), round(t - 14), round(t), round(t)] if chips else [0, 0, 0, 0]
            c = dict(chain_t)
            c.update(
                {
                    "index": b,
                    "rate_ideal": round(live.ideal_board_ghs, 2),
                    "rate_real": round(live.board_ghs[b], 2),
                    "asic_num": chips,
                    "temp_pic": [x - 15 if x else 0 for x in chip],
                    "temp_pcb": [x - 5 if x else 0 for x in chip],
                    "temp_chip": chip,
                    "hw": live.elapsed // 3000,
                    "sn": f"{self.state.serial[:12]}B{b}",
                }
            )
            chains.append(c)
        item = dict(cap["STATS"][0])
        item.update(
            {
                **live.web_rates(),
                "chain_num": len(chains),
                "fan_num": len(live.fans),
                "fan": live.fans,
                "chain": chains,
            }
        )
        st = dict(cap["STATUS"])
        st["when"] = live.now
        return {"STATUS": st, "INFO": self._web_info(), "STATS": [item]}

    def _cgi_pools(self, _method: str, _body: bytes) -> dict:
        # No capture of pools.cgi: the same pools as the API, in the web CGI's lower-case style.
        live = self._live(time.time())
        pools = [
            {
                "index": p["POOL"],
                "url": p["URL"],
                "user": p["User"],
                "status": p["Status"],
                "priority": p["Priority"],
                "getworks": p["Getworks"],
                "accepted": p["Accepted"],
                "rejected": p["Rejected"],
                "discarded": p["Discarded"],
                "stale": p["Stale"],
                "diff": p["Diff"],
                "diff1": p["Diff1 Shares"],
                "diffa": p["Difficulty Accepted"],
                "diffr": p["Difficulty Rejected"],
                "diffs": p["Difficulty Stale"],
                "lsdiff": p["Last Share Difficulty"],
                "lstime": p["Last Share Time"],
            }
            for p in self._pool_items(live)
        ]
        st = {"STATUS": "S", "when": live.now, "Msg": "pools", "api_version": "1.0.0"}
        return {"STATUS": st, "INFO": self._web_info(), "POOLS": pools}

    def _cgi_blink_status(self, _method: str, _body: bytes) -> dict:
        return {"blink": self.blink}

    def _cgi_blink(self, _method: str, body: bytes) -> dict:
        try:
            self.blink = str(json.loads(body or b"{}").get("blink", "false")).lower() == "true"
        except (ValueError, AttributeError):
            return {"code": "B001"}
        return {"code": "B000" if self.blink else "B100"}  # the codes pyasic checks for on and off

    def _cgi_reboot(self, _method: str, _body: bytes) -> dict:
        self._restart()
        return {"stats": "success", "code": "R000", "msg": "OK!"}

    def _booted(self) -> None:
        now = time.time()
        self.state.started_at = now
        if not self.state.sleeping:
            self.state.woke_at = now

    _WEB: ClassVar[dict[str, Any]] = {
        "/cgi-bin/get_system_info.cgi": _cgi_system_info,
        "/cgi-bin/get_network_info.cgi": _cgi_network_info,
        "/cgi-bin/get_miner_conf.cgi": _cgi_get_conf,
        "/cgi-bin/set_miner_conf.cgi": _cgi_set_conf,
        "/cgi-bin/summary.cgi": _cgi_summary,
        "/cgi-bin/stats.cgi": _cgi_stats,
        "/cgi-bin/pools.cgi": _cgi_pools,
        "/cgi-bin/get_blink_status.cgi": _cgi_blink_status,
        "/cgi-bin/blink.cgi": _cgi_blink,
        "/cgi-bin/reboot.cgi": _cgi_reboot,
    }


class AntminerS19Pro(AntminerMiner):
    """S19 Pro on BMMiner 49.0.1.3 (Dec 2022): classic flat `stats` (chain_rateN, temp_chipN)."""

    prefix = "antminer_s19pro"
    miner_version = "49.0.1.3"
    compile_time = "Tue Dec  6 16:12:30 CST 2022"


class AntminerS21(AntminerMiner):
    """S21 on the 2024 firmware (uart_trans.1.3): `chain[]` in the web stats.cgi."""

    prefix = "antminer_s21"
    miner_version = "uart_trans.1.3"
    compile_time = "Thu Jul 11 16:38:25 CST 2024"
    pools_stale_key = "Pool Stale%%"  # as captured from this firmware


# --- helpers ------------------------------------------------------------------------------------
@cache
def _acs(chips: int) -> str:
    groups, rest = divmod(chips, 3)
    return "".join([" ooo"] * groups) + (" " + "o" * rest if rest else "")


def _stratum_host(url: str) -> str:
    host = url.split("://", 1)[-1]
    return host.rsplit(":", 1)[0] if host else ""


def _md5(text: str) -> str:
    return hashlib.md5(text.encode()).hexdigest()


_AUTH_RE = re.compile(r'(\w+)\s*=\s*(?:(")([^"]*)"|([^,\s]*))')


def _auth_fields(text: str) -> dict[str, str]:
    return {
        m.group(1).lower(): m.group(3) if m.group(2) else (m.group(4) or "") for m in _AUTH_RE.finditer(text)
    }


def _nonce_tail(ts: str) -> str:
    return hmac.new(_NONCE_KEY, ts.encode(), "sha256").hexdigest()[:32]


def make_nonce(now: float | None = None) -> str:
    """A digest nonce in lighttpd's `time:hash` form that this process recognises later (stateless)."""
    ts = f"{int(time.time() if now is None else now):08x}"
    return f"{ts}:{_nonce_tail(ts)}"


def _nonce_ok(nonce: str) -> bool:
    ts, _, tail = nonce.partition(":")
    return len(ts) == 8 and hmac.compare_digest(tail, _nonce_tail(ts))


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


_INDEX_HTML = (
    '<!DOCTYPE html><html><head><meta charset="utf-8"><title>Antminer</title></head>'
    '<body><div id="app"></div></body></html>\n'
)


def _lighttpd_page(status: int) -> str:
    """lighttpd's stock error page (a real S19j Pro's 401 body is exactly this, 347 bytes)."""
    title = f"{status} {_REASONS[status]}"
    return (
        '<?xml version="1.0" encoding="iso-8859-1"?>\n'
        '<!DOCTYPE html PUBLIC "-//W3C//DTD XHTML 1.0 Transitional//EN"\n'
        '         "http://www.w3.org/TR/xhtml1/DTD/xhtml1-transitional.dtd">\n'
        '<html xmlns="http://www.w3.org/1999/xhtml" xml:lang="en" lang="en">\n'
        f" <head>\n  <title>{title}</title>\n </head>\n <body>\n  <h1>{title}</h1>\n </body>\n</html>\n"
    )


_REASONS = {200: "OK", 400: "Bad Request", 401: "Unauthorized", 404: "Not Found", 405: "Method Not Allowed"}
_PAGES = {status: _lighttpd_page(status) for status in _REASONS if status != 200}


# --- protocols ----------------------------------------------------------------------------------
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


class WebProtocol(Connection):
    """One HTTP/1.1 connection to the web CGI (keep-alive, Content-Length bodies, digest auth)."""

    __slots__ = ("buf", "busy", "continued")
    idle_s = WEB_READ_IDLE_S
    miner: AntminerMiner

    def __init__(self, miner: AntminerMiner) -> None:
        super().__init__(miner)
        self.buf = bytearray()
        self.busy = False
        self.continued = False

    def eof_received(self) -> bool:
        return self.busy  # a delayed response is still to be written

    def data_received(self, data: bytes) -> None:
        self.buf += data
        if len(self.buf) > MAX_REQUEST:
            self._close()
            return
        self._touch()
        self._process()

    def _process(self) -> None:
        while not self.busy and self.transport is not None:
            end = self.buf.find(b"\r\n\r\n")
            if end < 0:
                return
            head = bytes(self.buf[:end]).decode("latin-1")
            lines = head.split("\r\n")
            parts = lines[0].split()
            headers: dict[str, str] = {}
            for line in lines[1:]:
                name, _, value = line.partition(":")
                headers[name.strip().lower()] = value.strip()
            try:
                length = int(headers.get("content-length", "0"))
            except ValueError:
                length = -1
            if len(parts) != 3 or length < 0 or "chunked" in headers.get("transfer-encoding", ""):
                self._send(400, _PAGES[400], False, 0.0)
                return
            if len(self.buf) < end + 4 + length:
                if headers.get("expect", "").lower() == "100-continue" and not self.continued:
                    self.continued = True  # curl waits for this before sending a body
                    self.transport.write(b"HTTP/1.1 100 Continue\r\n\r\n")
                return
            self.continued = False
            body = bytes(self.buf[end + 4 : end + 4 + length])
            del self.buf[: end + 4 + length]
            method, target, version = parts
            if target.startswith(("http://", "https://")):  # absolute-form (proxies)
                target = "/" + target.split("://", 1)[1].partition("/")[2]
            keep = headers.get("connection", "").lower() != "close" and version == "HTTP/1.1"
            self._handle(method, target, headers, body, keep)

    def _handle(self, method: str, target: str, headers: dict[str, str], body: bytes, keep: bool) -> None:
        miner = self.miner
        faults = miner.state.faults
        if faults.dead:
            self.busy = True  # swallow this and every later request
            return
        if not miner.authorized(method, headers.get("authorization")):
            challenge = f'{_CHALLENGE}, nonce="{make_nonce()}", qop="auth"'
            self._send(401, _PAGES[401], keep, faults.slow_s, [("WWW-Authenticate", challenge)])
            return
        if method not in ("GET", "POST"):
            self._send(405, _PAGES[405], keep, faults.slow_s)
            return
        status, text, delay = miner.web(method, target, body)
        ctype = "text/html"
        self._send(status, text, keep, faults.slow_s + delay, content_type=ctype)

    def _send(
        self,
        status: int,
        text: str,
        keep: bool,
        delay: float,
        extra: list[tuple[str, str]] | None = None,
        content_type: str = "text/html",
    ) -> None:
        body = text.encode()
        # Header names and order as a real S19j Pro's lighttpd sends them.
        head = [f"HTTP/1.1 {status} {_REASONS.get(status, 'OK')}"]
        head.extend(f"{k}: {v}" for k, v in extra or ())
        head += [
            f"Content-Type: {content_type}",
            f"Content-Length: {len(body)}",
            f"Date: {formatdate(usegmt=True)}",
            "Server: lighttpd/1.4.69",
        ]
        if not keep:
            head.append("Connection: close")
        data = ("\r\n".join(head) + "\r\n\r\n").encode() + body
        if delay > 0:
            self.busy = True
            asyncio.get_running_loop().call_later(delay, self._write, data, keep)
        else:
            self._write(data, keep)

    def _write(self, data: bytes, keep: bool) -> None:
        self.busy = False
        if self.transport is None or self.transport.is_closing():
            return
        self.transport.write(data)
        if not keep:
            self.transport.close()
            return
        self._process()
        if not self.busy and not self.buf:
            self._touch(WEB_KEEP_ALIVE_IDLE_S)
