"""Antminer web CGI endpoints: system info, miner conf and work mode, summary/stats/pools, blink, reboot."""

from __future__ import annotations

import hmac
import json
import time
from typing import Any, ClassVar

from fleetd.sim.antminer_replies import _dumps, capture
from fleetd.sim.antminer_web import _INDEX_HTML, _PAGES, DEFAULT_USER, REALM, _auth_fields, _md5, _nonce_ok
from fleetd.sim.base import MinerState, reply_override


class WebCgi:
    """The web CGI half of an Antminer (mixed into AntminerMiner)."""

    state: MinerState
    host: str
    conf: dict[str, Any]
    blink: bool
    miner_version: ClassVar[str]
    compile_time: ClassVar[str]
    _claimed_mode: str | None

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
        override = reply_override(self.state.faults, path)
        text = text if override is None else override
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
            state.power_commands += 1
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
