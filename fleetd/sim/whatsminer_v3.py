"""Whatsminer btminer API v3 (TCP 4433): length-prefixed JSON, get.* reads, SHA-256-token set.* commands."""

from __future__ import annotations

import json
import struct
import time
from collections.abc import Callable
from typing import TYPE_CHECKING, Any, ClassVar

from fleetd.sim.base import MinerState, reply_override, wire
from fleetd.sim.server import MAX_REQUEST, Connection
from fleetd.sim.whatsminer_replies import _dumps
from fleetd.transport.btminer_v3 import v3_token

if TYPE_CHECKING:
    from fleetd.sim.whatsminer import WhatsminerMiner

V3_ACCOUNT = "super"
V3_PASSWORD = "super"
V3_IDLE_CLOSE_S = 60.0
V3_TS_WINDOW_S = 300  # how far a set.* timestamp may be from the miner's clock


class V3Api:
    """The v3 protocol of a Whatsminer (mixed into WhatsminerMiner)."""

    state: MinerState
    host: str
    model_code: ClassVar[str]
    firmware: ClassVar[str]
    api_ver: ClassVar[str]
    platform: ClassVar[str]
    psu_model: ClassVar[str]
    write_access: bool
    v3_salt: str
    v3_password: str

    def v3_reply(self, body: bytes) -> bytes:
        now = time.time()
        try:
            req = json.loads(body.decode())
            if not isinstance(req, dict):
                raise ValueError
        except (ValueError, UnicodeDecodeError):
            return self._v3_out({"code": -3, "msg": "invalid json", "when": int(now)})
        command = str(req.get("cmd", ""))
        param = req.get("param")
        override = reply_override(self.state.faults, command)
        if override is not None:
            raw = wire(override)
            return struct.pack("<I", len(raw)) + raw
        if command.startswith("set."):
            reply = self._v3_set(command, req, now)
        else:
            handler = _V3_READS.get(command)
            reply = handler(self, param, now) if handler else None
        if reply is None:
            reply = {"code": -2, "msg": "invalid cmd", "when": int(now)}
        reply.setdefault("desc", command)
        return self._v3_out(reply)

    def _v3_out(self, reply: dict[str, Any]) -> bytes:
        ordered = {k: reply[k] for k in ("code", "desc", "msg", "when") if k in reply}
        body = _dumps(ordered)
        if self.state.faults.malformed:
            body = body[: max(1, len(body) // 2)]
        raw = body.encode()
        return struct.pack("<I", len(raw)) + raw

    def _ok(self, msg: Any, now: float) -> dict[str, Any]:
        return {"code": 0, "msg": msg, "when": int(now)}

    def _device_info(self, param: Any, now: float) -> dict[str, Any]:
        s = self.state
        miner = {
            "board-num": str(s.spec.boards),
            **{f"chipdata{i}": "K8EC374-2426 BINVE6-197806A" for i in range(s.spec.boards)},
            "detect-hash-rate": ":".join(
                str(int(s.spec.hashrate_ths * 1000 / s.spec.boards)) for _ in range(s.spec.boards)
            ),
            "fast-boot": "disable",
            "hash-board": self.model_code.split("_V")[-1] if "_V" in self.model_code else "",
            "hash-percent": "0",
            "miner-sn": s.serial,
            **{f"pcbsn{i}": f"{s.serial[:12]}K{10000 + i:05d}"[:20] for i in range(s.spec.boards)},
            "pool-strategy": "FAILOVER",
            "type": self.model_code,
            "working": "false" if s.sleeping else "true",
        }
        msg: dict[str, Any] = {
            "miner": miner,
            "network": {
                "dns": "127.0.0.53",
                "gateway": "127.0.0.1",
                "hostname": s.hostname,
                "ip": self.host,
                "mac": s.mac,
                "netmask": "255.0.0.0",
                "proto": "dhcp",
            },
            "power": {
                "fanspeed": 6344 if not s.sleeping else 3000,
                "hwversion": "RT0159",
                "mode": "1",
                "model": self.psu_model,
                "sn": "1436B2429603097",
                "swversion": "230224.220429",
                "type": self.psu_model,
                "vendor": "1",
            },
            "salt": self.v3_salt,
            "system": {
                "api": self.api_ver,
                "apiswitch": "1" if self.write_access else "0",
                "control-board-version": "CB6V10",
                "fwversion": self.firmware,
                "ledstatus": "auto",
                "platform": self.platform,
            },
        }
        codes = self.error_codes(now)
        if codes:
            msg = {
                "error-code": [{str(c): t, "reason": _REASONS.get(c, "error")} for c, t in codes.items()],
                **msg,
            }
        if isinstance(param, str) and param:
            wanted = [p.strip() for p in param.split(",")]
            if all(w in msg for w in wanted):
                msg = {w: msg[w] for w in wanted}
        return self._ok(msg, now)

    def _miner_status(self, param: Any, now: float) -> dict[str, Any] | None:
        wanted = [p.strip() for p in str(param or "summary").split(",") if p.strip()]
        lv, s = self._live(now), self.state
        msg: dict[str, Any] = {}
        for w in wanted:
            if w == "summary":
                msg["summary"] = {
                    "board-temperature": [lv["board"] if a else 0.0 for a in lv["alive"]],
                    "bootup-time": lv["elapsed"] + 638,
                    "chip-temp-avg": round(lv["chip"] - 5.0, 2),
                    "chip-temp-max": lv["chip"],
                    "chip-temp-min": round(lv["chip"] - 12.0, 2),
                    "elapsed": lv["elapsed"],
                    "environment-temperature": 25.0,
                    "factory-hash": round(s.spec.hashrate_ths, 3),
                    "fan-speed-in": lv["fans"][0] if lv["fans"] else 0,
                    "fan-speed-out": lv["fans"][1] if len(lv["fans"]) > 1 else 0,
                    "freq-avg": 625 if lv["rate"] else 0,
                    "hash-15min": round(lv["avg"], 3),
                    "hash-1min": round(lv["rate"], 3),
                    "hash-average": round(lv["avg"], 3),
                    "hash-realtime": round(lv["rate"], 3),
                    "power-5min": round(lv["power"], 1),
                    "power-limit": self._limit(),
                    "power-rate": round(lv["power"] / lv["rate"], 2) if lv["rate"] else 0.0,
                    "power-realtime": round(lv["power"], 1),
                    "up-freq-finish": 1 if lv["rate"] else 0,
                }
            elif w == "edevs":
                msg["edevs"] = [
                    {
                        "chip-temp-avg": round(lv["chip"] - 5.0, 2) if a else 0.0,
                        "chip-temp-max": lv["chip"] if a else 0.0,
                        "chip-temp-min": round(lv["chip"] - 12.0, 2) if a else 0.0,
                        "effective-chips": s.spec.chips_per_board if a else 0,
                        "factory-hash": round(s.spec.hashrate_ths / max(1, s.spec.boards), 3),
                        "freq": 625.0 if a and ths else 0.0,
                        "hash-average": round(ths, 3),
                        "hash-realtime": round(ths, 3),
                        "id": i,
                        "status": "alive" if a else "dead",
                    }
                    for i, (ths, a) in enumerate(zip(lv["boards"], lv["alive"], strict=True))
                ]
            elif w == "pools":
                worker = "fleetd_sim." + self.host.replace(".", "x")
                msg["pools"] = [
                    {
                        "id": i,
                        "account": worker,
                        "pool-priority": i,
                        "status": "alive",
                        "stratum-active": i == 0 and not s.sleeping,
                        "url": f"stratum+tcp://btc{i + 1 if i else ''}.example.pool:3333",
                    }
                    for i in range(3)
                ]
            else:
                return {"code": -1, "msg": f"invalid param {w}", "when": int(now)}
        return self._ok(msg, now)

    def _miner_setting(self, _param: Any, now: float) -> dict[str, Any]:
        s = self.state
        return self._ok(
            {
                "power-mode": s.mode,
                "power-limit": self._limit(),
                "pool-strategy": "FAILOVER",
                "fast-boot": "disable",
                "heat-mode": "normal",
            },
            now,
        )

    def _v3_set(self, command: str, req: dict[str, Any], now: float) -> dict[str, Any]:
        when = int(now)
        if not self.write_access:
            return {"code": -1, "msg": "permission denied: api write is disabled", "when": when}
        ts = req.get("ts")
        if not isinstance(ts, int) or abs(ts - now) > V3_TS_WINDOW_S:
            return {"code": -1, "msg": "invalid ts: token expired", "when": when}
        if req.get("account") != V3_ACCOUNT or req.get("token") != v3_token(
            command, self.v3_password, self.v3_salt, ts
        ):
            return {"code": -1, "msg": "token error: account or password incorrect", "when": when}
        s, param = self.state, req.get("param")
        if command == "set.miner.service":
            if param == "stop":
                s.sleep()
            elif param == "start":
                s.wake()
            elif param == "restart":
                if not s.faults.ignore_power_commands:
                    self._restart()
            else:
                return {"code": -1, "msg": f"invalid param {param!r}", "when": when}
            return self._ok("ok", now)
        if command == "set.miner.power_limit":
            try:
                watts = int(param)  # type: ignore[arg-type]
            except (TypeError, ValueError):
                return {"code": -1, "msg": "invalid param", "when": when}
            lo, hi = int(s.spec.min_power_w or 0), int(s.spec.max_power_w or 99999)
            if not lo <= watts <= hi:
                return {"code": -1, "msg": f"power limit must be within {lo}..{hi}", "when": when}
            s.set_power_limit(float(watts))
            return self._ok("ok", now)
        if command == "set.system.reboot":
            if not s.faults.ignore_power_commands:
                self._restart()
            return self._ok("ok", now)
        if command in ("set.system.led", "set.miner.pools", "set.system.hostname", "set.fan.poweroff_cool"):
            return self._ok("ok", now)
        return {"code": -2, "msg": "invalid cmd", "when": when}


_V3_READS: dict[str, Callable[[V3Api, Any, float], dict[str, Any] | None]] = {
    "get.device.info": V3Api._device_info,
    "get.miner.status": V3Api._miner_status,
    "get.miner.setting": V3Api._miner_setting,
}

_REASONS = {
    110: "Intake fan speed error.",
    350: "SM0 temperature protecting.",
    530: "SM0 not found.",
    531: "SM1 not found.",
    532: "SM2 not found.",
}


class V3Protocol(Connection):
    """One btminer v3 connection: length-prefixed requests and replies, several per connection."""

    __slots__ = ("buf",)
    idle_s = V3_IDLE_CLOSE_S
    miner: WhatsminerMiner

    def __init__(self, miner: WhatsminerMiner) -> None:
        super().__init__(miner)
        self.buf = bytearray()

    def data_received(self, data: bytes) -> None:
        self.buf += data
        self._touch()
        while len(self.buf) >= 4:
            (n,) = struct.unpack_from("<I", self.buf)
            if n > MAX_REQUEST:
                self._close()
                return
            if len(self.buf) < 4 + n:
                return
            body = bytes(self.buf[4 : 4 + n])
            del self.buf[: 4 + n]
            self._dispatch(body)

    def _dispatch(self, body: bytes) -> None:
        faults = self.miner.state.faults
        if faults.dead:
            return
        self._after(faults.slow_s + (self.miner.conf_delay_s if b'"set.' in body else 0.0), self._reply, body)

    def _reply(self, body: bytes) -> None:
        if self.transport is None or self.transport.is_closing():
            return
        self.transport.write(self.miner.v3_reply(body))
