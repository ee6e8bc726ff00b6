"""Whatsminer emulator: btminer API v2 (TCP 4028, encrypted privileged commands) and v3 (TCP 4433).

Replies follow the real captures in tests/fixtures/devices/whatsminer_* (field names, types, STATUS
blocks); live values come from the miner's `MinerState`. The privileged API is the real one: tokens
from `get_token` (MD5-crypt of the admin password, AES-256-ECB envelope), valid 30 minutes, at most
32 live tokens per client address; v3 `set.*` commands carry SHA-256 tokens over command, password,
salt and timestamp. Passwords are the factory defaults ("admin" for v2, "super" for v3); the
`wrong_password` fault changes them.

Options: write_access (the API write switch), token_ttl_s, max_tokens, legacy_api (firmware before
API 2.0: no get_* commands), conf_delay_s (privileged commands acknowledged late), reboot_s (time off
the network after a reboot).

Quirks (per miner, `Faults.quirks`), each the breakage some real btminer firmware emits:
  error_code_list    API 2.0.4: get_error_code sends `"error_code":["110":"<time>"]` (pairs in a list)
  trailing_comma     `,}` closing the SUMMARY object
  psu_missing_comma  2023-01 firmware: get_psu lacks the comma before "temp0" (`""temp0`)
  no_joined          firmware that refuses joined commands ("summary+devs+pools")
"""

from __future__ import annotations

import asyncio
import hashlib
import json
import string
import struct
import time
from collections.abc import Callable
from typing import Any, ClassVar

from fleetd.sim.base import EmulatedMiner, MinerState, listen
from fleetd.sim.server import MAX_REQUEST, PADDING, Connection, OneShotConnection, RebootingMiner
from fleetd.transport.btminer import aes_key, decrypt, derive_token, encrypt
from fleetd.transport.btminer_v3 import v3_token
from fleetd.transport.md5crypt import md5_crypt_hash

QUIRKS: frozenset[str] = frozenset({"error_code_list", "trailing_comma", "psu_missing_comma", "no_joined"})
V2_PASSWORD = "admin"
V3_ACCOUNT = "super"
V3_PASSWORD = "super"
TOKEN_TTL_S = 30 * 60.0
MAX_TOKENS = 32  # live tokens per client address
# The firmware closes a v2 connection that sends nothing for 10 s (API v2.0.5 documentation).
V2_IDLE_CLOSE_S = 10.0
V3_IDLE_CLOSE_S = 60.0
V3_TS_WINDOW_S = 300  # how far a set.* timestamp may be from the miner's clock
JOINABLE = ("summary", "devs", "edevs", "pools", "devdetails", "version", "stats")

_SALT_CHARS = string.ascii_letters + string.digits


def _salt_from(seed: str) -> str:
    digest = hashlib.sha256(seed.encode()).digest()
    return "".join(_SALT_CHARS[b % len(_SALT_CHARS)] for b in digest[:8])


def _dumps(obj: Any) -> str:
    return json.dumps(obj, separators=(",", ":"))


def _flat(code: int, msg: Any, when: int, status: str = "S", description: str = "") -> dict[str, Any]:
    return {"STATUS": status, "When": when, "Code": code, "Msg": msg, "Description": description}


def _head(code: int, msg: str, when: int, description: str = "cgminer 4.9.2") -> list[dict[str, Any]]:
    return [{"STATUS": "S", "When": when, "Code": code, "Msg": msg, "Description": description}]


class WhatsminerMiner(RebootingMiner):
    """One Whatsminer on stock btminer firmware; subclasses pin model and firmware."""

    vendor = "Whatsminer"
    default_ports: ClassVar[dict[str, int]] = {"api": 4028, "v3": 4433}
    model_code: ClassVar[str]  # as the firmware reports it, e.g. "M50S_VH50"
    firmware: ClassVar[str]
    api_ver: ClassVar[str]
    platform: ClassVar[str] = "H616"
    v2_writes: ClassVar[bool] = True  # firmware from 2024-11 moved privileged commands to v3
    serves_v3: ClassVar[bool] = False
    psu_model: ClassVar[str] = "P221B"

    def __init__(
        self,
        state: MinerState,
        host: str,
        ports: dict[str, int],
        *,
        write_access: bool = True,
        token_ttl_s: float = TOKEN_TTL_S,
        max_tokens: int = MAX_TOKENS,
        legacy_api: bool = False,
        conf_delay_s: float = 0.0,
        reboot_s: float = 0.0,
    ) -> None:
        super().__init__(state, host, ports)
        self.conf_delay_s = conf_delay_s  # privileged commands are acknowledged (and take effect) this late
        self.reboot_s = reboot_s  # how long a reboot takes the miner off the network
        self.legacy_api = legacy_api  # firmware before API 2.0: only the CGMiner reads, no get_* commands
        self.write_access = write_access  # "API write access" switch of WhatsMinerTool / web UI
        self.token_ttl_s = token_ttl_s
        self.max_tokens = max_tokens
        self.salt = _salt_from(f"v2:{host}")  # fixed per miner: the salt of its stored password hash
        self.v3_salt = _salt_from(f"v3:{host}")
        self.tokens: dict[str, list[tuple[float, str]]] = {}  # client address -> (issued, sign)
        self.errors: dict[int, str] = {}
        self._live_at = 0.0
        self._live_cache: dict[str, Any] | None = None
        if not state.serial:
            state.serial = "HTM3" + hashlib.md5(host.encode()).hexdigest()[:16].upper()
        if not state.mac:
            octets = [int(x) for x in host.split(".")]
            state.mac = "C4:08:{:02X}:{:02X}:{:02X}:{:02X}".format(*octets)
        if not state.hostname:
            state.hostname = "WhatsMiner"

    # --- lifecycle -------------------------------------------------------------------------------
    async def start(self) -> None:
        try:
            if "api" in self.ports:
                self.servers.append(await listen(lambda: V2Protocol(self), self.host, self.ports["api"]))
            if self.serves_v3 and "v3" in self.ports:
                self.servers.append(await listen(lambda: V3Protocol(self), self.host, self.ports["v3"]))
        except BaseException:
            await EmulatedMiner.stop(self)  # not self.stop(): start() also runs inside the reboot task
            raise

    # --- shared facts ----------------------------------------------------------------------------
    @property
    def v2_password(self) -> str:
        return V2_PASSWORD + ("-changed" if self.state.faults.wrong_password else "")

    @property
    def v3_password(self) -> str:
        return V3_PASSWORD + ("-changed" if self.state.faults.wrong_password else "")

    def error_codes(self, now: float) -> dict[int, str]:
        """Active error codes -> when they appeared (from the faults and the state)."""
        f, n = self.state.faults, self.state.spec.boards
        stamp = time.strftime("%Y-%m-%d %H:%M:%S", time.localtime(self.state.started_at + 60))
        codes = dict(self.errors)
        if f.fan_failed:
            codes[110] = stamp
        if f.board_down and n:
            codes[530 + n - 1] = stamp
        if f.overheat:
            codes[350] = stamp
        return codes

    def _live(self, now: float) -> dict[str, Any]:
        if self._live_at == now and self._live_cache is not None:
            return self._live_cache  # one request (e.g. a joined read) sees one set of values
        s = self.state
        rate = s.hashrate_ths(now)
        shares = s.board_fractions()
        total = sum(shares) or 1.0
        self._live_at = now
        self._live_cache = {
            "now": int(now),
            "rate": rate,
            "avg": s.steady_hashrate_ths(now),
            "boards": [rate * sh / total for sh in shares],
            "alive": [sh > 0 for sh in shares],
            "power": s.power_w(now),
            "chip": s.chip_temp_c(now),
            "board": s.board_temp_c(now),
            "fans": s.fan_rpms(),
            "elapsed": s.uptime_s(now),
        }
        return self._live_cache

    def _limit(self) -> int:
        s = self.state
        return int(s.power_limit_w if s.power_limit_w is not None else (s.spec.max_power_w or s.spec.power_w))

    def _booted(self) -> None:
        s = self.state
        s.started_at = time.time()
        s.sleeping = False
        s.woke_at = time.time()

    # --- v2 reads --------------------------------------------------------------------------------
    def v2_reply(self, request: bytes, client: str) -> bytes:
        now = time.time()
        try:
            req = json.loads(request.strip(PADDING).decode())
        except ValueError:
            return self._v2_out(_dumps(_flat(23, "invalid JSON message", int(now), "E")))
        if not isinstance(req, dict):
            return self._v2_out(_dumps(_flat(23, "invalid JSON message", int(now), "E")))
        if "enc" in req:
            return self._v2_out(self._privileged(req, client, now))
        command = str(req.get("cmd") or req.get("command") or "").strip()
        if "+" in command and "no_joined" in self.state.faults.quirks:
            return self._v2_out(_dumps(_flat(14, "invalid cmd", int(now), "E")))
        if "+" in command:
            parts = []
            for c in command.split("+"):
                reply = self._v2_read(c, now) if c in JOINABLE else None
                parts.append(f"{json.dumps(c)}:[{reply or _dumps(_flat(14, 'invalid cmd', int(now), 'E'))}]")
            return self._v2_out("{" + ",".join(parts) + ',"id":1}')
        if command == "get_token":
            return self._v2_out(_dumps(self._get_token(client, now)))
        body = None if self.legacy_api and command.startswith("get_") else self._v2_read(command, now)
        if body is None:
            body = _dumps(_flat(14, "invalid cmd", int(now), "E"))
        return self._v2_out(body)

    def _v2_out(self, body: str) -> bytes:
        if self.state.faults.malformed:
            body = body[: max(1, len(body) // 2)]
        return body.encode() + b"\0"  # btminer is CGMiner-based: replies end with a NUL

    def _v2_read(self, command: str, now: float) -> str | None:
        handler = _V2_READS.get(command)
        if handler is None:
            return None
        return handler(self, now)

    def _summary(self, now: float) -> str:
        lv, s = self._live(now), self.state
        rate_mhs = lv["rate"] * 1e6
        avg_mhs = lv["avg"] * 1e6
        codes = self.error_codes(now)
        summary: dict[str, Any] = {
            "Accepted": s.accepted + int(lv["elapsed"] * 0.08),
            "Best Share": 41127493,
            "CB Platform": "ALLWINNER_H616" if self.platform == "H616" else self.platform,
            "CB Version": "V10",
            "Chip Data": "K88Z010-2243 BINV01-195001D",
            "Chip Temp Avg": round(lv["chip"] - 5.0, 2) if lv["rate"] else lv["chip"],
            "Chip Temp Max": lv["chip"],
            "Chip Temp Min": round(lv["chip"] - 12.0, 2),
            "Device Hardware%": 0.011,
            "Device Rejected%": 0.0,
            "Difficulty Accepted": 158334976.0,
            "Difficulty Rejected": 0.0,
            "Difficulty Stale": 0.0,
            "Discarded": 613134,
            "Elapsed": lv["elapsed"],
            "Error Code Count": len(codes),
            "Factory Error Code Count": 0,
            "Factory GHS": int(s.spec.hashrate_ths * 1000),
            "Fan Speed In": lv["fans"][0] if lv["fans"] else 0,
            "Fan Speed Out": lv["fans"][1] if len(lv["fans"]) > 1 else 0,
            "Firmware Version": f"'{self.firmware}'",
            "Found Blocks": 0,
            "Get Failures": 0,
            "Getworks": 950,
            "HS RT": round(rate_mhs, 2),
            "Hardware Errors": 69,
            "Hash Deviation%": 0.1061,
            "Hash Stable": bool(lv["rate"]),
            "Hash Stable Cost Seconds": 1538,
            "Last getwork": 0,
            "Liquid Cooling": False,
            "Local Work": 79651875,
            "MAC": s.mac,
            "MHS 15m": round(avg_mhs, 2),
            "MHS 1m": round(rate_mhs, 2),
            "MHS 5m": round(avg_mhs, 2),
            "MHS 5s": round(rate_mhs, 2),
            "MHS av": round(avg_mhs, 2),
            "Network Blocks": 20,
            "Pool Rejected%": 0.0,
            "Pool Stale%": 0.0,
            "Power": round(lv["power"]),
            "Power Current": round(lv["power"] / 13.0),
            "Power Fanspeed": 9060 if not s.sleeping else 3000,
            "Power Limit": self._limit(),
            "Power Mode": s.mode.capitalize(),
            "Power_RT": round(lv["power"]),
            "Rejected": s.rejected,
            "Remote Failures": 0,
            "Security Mode": 0,
            "Stale": 0,
            "Target Freq": 625,
            "Target MHS": int(s.expected_hashrate_ths() * 0.95e6),
            "Temperature": lv["board"],
            "Total MH": round(avg_mhs * max(1, lv["elapsed"]), 1),
            "Uptime": lv["elapsed"] + 638,
            "Utility": 13.82,
            "Voltage": 1180,
            "Work Utility": 3697.27,
            "freq_avg": 648 if lv["rate"] else 0,
        }
        for i, code in enumerate(codes):
            summary[f"Error Code {i}"] = code
        inner = _dumps(summary)
        if "trailing_comma" in s.faults.quirks:
            inner = inner[:-1] + ",}"
        return f'{{"STATUS":{_dumps(_head(11, "Summary", lv["now"]))},"SUMMARY":[{inner}],"id":1}}'

    def _devs(self, now: float) -> str:
        lv, s = self._live(now), self.state
        rows = []
        for i, (ths, alive) in enumerate(zip(lv["boards"], lv["alive"], strict=True)):
            mhs = ths * 1e6
            rows.append(
                {
                    "ASC": i,
                    "Accepted": (s.accepted + int(lv["elapsed"] * 0.08)) // max(1, s.spec.boards),
                    "Chip Frequency": 650 if alive and ths else 0,
                    "Chip Temp Avg": round(lv["chip"] - 5.0, 2) if alive else 0.0,
                    "Chip Temp Max": lv["chip"] if alive else 0.0,
                    "Chip Temp Min": round(lv["chip"] - 12.0, 2) if alive else 0.0,
                    "Device Elapsed": lv["elapsed"],
                    "Device Hardware%": 0.0072,
                    "Device Rejected%": 0.0,
                    "Diff1 Work": 209185,
                    "Difficulty Accepted": 53673984.0,
                    "Difficulty Rejected": 0.0,
                    "Effective Chips": s.spec.chips_per_board if alive else 0,
                    "Enabled": "Y",
                    "Fan Speed In": lv["fans"][0] if lv["fans"] else 0,
                    "Fan Speed Out": lv["fans"][1] if len(lv["fans"]) > 1 else 0,
                    "Hardware Errors": 15,
                    "ID": i,
                    "Last Share Difficulty": 65536.0,
                    "Last Share Pool": 0,
                    "Last Share Time": lv["now"] - 8,
                    "Last Valid Work": lv["now"],
                    "MHS 15m": round(mhs, 2),
                    "MHS 1m": round(mhs, 2),
                    "MHS 5m": round(mhs, 2),
                    "MHS 5s": round(mhs, 2),
                    "MHS av": round(mhs, 2),
                    "Name": "SM",
                    "PCB SN": f"{s.serial[:12]}K{10000 + i:05d}"[:20],
                    "Rejected": 0,
                    "Slot": i,
                    "Status": "Alive" if alive else "Dead",
                    "Temperature": lv["board"] if alive else 0.0,
                    "Total MH": round(mhs * max(1, lv["elapsed"]), 1),
                    "Upfreq Complete": 1,
                    "Utility": 4.7,
                }
            )
        head = _head(9, f"{len(rows)} ASC(s)", lv["now"])
        return _dumps({"STATUS": head, "DEVS": rows, "id": 1})

    def _pools(self, now: float) -> str:
        lv, s = self._live(now), self.state
        worker = "fleetd_sim." + self.host.replace(".", "x")
        rows = []
        for i in range(3):
            first = i == 0
            rows.append(
                {
                    "Accepted": s.accepted + int(lv["elapsed"] * 0.08) if first else 0,
                    "Bad Work": 0,
                    "Best Share": 41127493 if first else 0,
                    "Current Block Height": 920127 if first else 0,
                    "Current Block Version": 536870912 if first else 0,
                    "Diff1 Shares": 625711 if first else 0,
                    "Difficulty Accepted": 158334976.0 if first else 0.0,
                    "Difficulty Rejected": 0.0,
                    "Difficulty Stale": 0.0,
                    "Discarded": 613134 if first else 0,
                    "Get Failures": 0,
                    "Getworks": 950 if first else 0,
                    "Has GBT": False,
                    "Has Stratum": True,
                    "Last Share Difficulty": 65536.0 if first else 0.0,
                    "Last Share Time": lv["now"] - 8 if first else 0,
                    "Long Poll": "N",
                    "POOL": i + 1,
                    "Pool Rejected%": 0.0,
                    "Pool Stale%": 0.0,
                    "Priority": i,
                    "Proxy": "",
                    "Proxy Type": "",
                    "Quota": 1,
                    "Rejected": s.rejected if first else 0,
                    "Remote Failures": 0,
                    "Stale": 0,
                    "Status": "Alive",
                    "Stratum Active": first and not s.sleeping,
                    "Stratum Difficulty": 65536.0 if first else 0.0,
                    "Stratum URL": f"btc{i + 1 if i else ''}.example.pool",
                    "URL": f"stratum+tcp://btc{i + 1 if i else ''}.example.pool:3333",
                    "User": worker,
                    "Work Difficulty": 0.0,
                    "Works": 80955374 if first else 0,
                }
            )
        return _dumps({"STATUS": _head(7, "3 Pool(s)", lv["now"]), "POOLS": rows, "id": 1})

    def _devdetails(self, now: float) -> str:
        rows = [
            {
                "DEVDETAILS": i,
                "Name": "SM",
                "ID": i,
                "Driver": "bitmicro",
                "Kernel": "",
                "Model": self.model_code,
            }
            for i in range(self.state.spec.boards)
        ]
        head = _head(69, "Device Details", int(now), "btminer")
        return _dumps({"STATUS": head, "DEVDETAILS": rows, "id": 1})

    def _version(self, now: float) -> str:
        head = _head(22, "CGMiner versions", int(now), "btminer")
        return _dumps({"STATUS": head, "VERSION": [{"CGMiner": "4.9.2", "API": "3.7"}], "id": 1})

    def _get_version(self, now: float) -> str:
        msg = {"api_ver": self.api_ver, "fw_ver": self.firmware, "platform": self.platform, "chip": "K88Z"}
        return _dumps(_flat(131, msg, int(now)))

    def _get_psu(self, now: float) -> str:
        s = self.state
        p = self._live(now)["power"]
        vin = 22850
        msg = {
            "name": self.psu_model[:3],
            "hw_version": "RT0159",
            "sw_version": "230224.220429",
            "model": self.psu_model,
            "iin": str(int(p / (vin / 100) * 100)),
            "vin": str(vin),
            "pin": str(round(p)),
            "fan_speed": str(9060 if not s.sleeping else 3000),
            "version": "1",
            "serial_no": "1436B2429603097",
            "vendor": "1",
            "temp0": str(round(35.0 + 10.0 * s.ramp_fraction(now), 1)),
        }
        text = _dumps(_flat(131, msg, int(now)))
        if "psu_missing_comma" in s.faults.quirks:
            text = text.replace(',"temp0"', '"temp0"')
        return text

    def _get_miner_info(self, now: float) -> str:
        s = self.state
        msg = {
            "ip": self.host,
            "proto": "dhcp",
            "netmask": "255.0.0.0",
            "gateway": "127.0.0.1",
            "dns": "127.0.0.53",
            "hostname": s.hostname,
            "mac": s.mac,
            "ledstat": "auto",
            "minersn": s.serial,
        }
        return _dumps(_flat(131, msg, int(now)))

    def _get_error_code(self, now: float) -> str:
        codes = self.error_codes(now)
        if "error_code_list" in self.state.faults.quirks and codes:
            pairs = ",".join(f'"{c}":"{t}"' for c, t in codes.items())
            return (
                f'{{"STATUS":"S","When":{int(now)},"Code":131,"Msg":{{"error_code":[{pairs}]}},'
                '"Description":""}'
            )
        msg = {"error_code": [{str(c): t} for c, t in codes.items()]}
        return _dumps(_flat(131, msg, int(now)))

    def _status(self, now: float) -> str:
        off = "true" if self.state.sleeping else "false"
        msg = {"btmineroff": off, "Firmware Version": f"'{self.firmware}'"}
        return _dumps(_flat(131, msg, int(now)))

    # --- v2 privileged ---------------------------------------------------------------------------
    def _live_tokens(self, client: str, now: float) -> list[tuple[float, str]]:
        live = [t for t in self.tokens.get(client, []) if now - t[0] < self.token_ttl_s]
        self.tokens[client] = live
        return live

    def _get_token(self, client: str, now: float) -> dict[str, Any]:
        if not self.write_access or not self.v2_writes:
            return _flat(45, "can't access write cmd", int(now), "E")
        live = self._live_tokens(client, now)
        if len(live) >= self.max_tokens:
            return _flat(136, "over max token", int(now), "E")
        when = str(int(now))[-4:]
        newsalt = "".join(self.state.rng.choice(_SALT_CHARS) for _ in range(8))
        _, sign = derive_token(self.v2_password, self.salt, newsalt, when)
        live.append((now, sign))
        return _flat(134, {"time": when, "salt": self.salt, "newsalt": newsalt}, int(now))

    def _privileged(self, req: dict[str, Any], client: str, now: float) -> str:
        when = int(now)
        if not self.write_access or not self.v2_writes:
            return _dumps(_flat(45, "can't access write cmd", when, "E"))
        key = aes_key(md5_crypt_hash(self.v2_password, self.salt))
        try:
            plain = decrypt(str(req.get("data", "")), key)
        except ValueError:
            return _dumps(_flat(137, "base64 decode error", when, "E"))
        try:
            cmd = json.loads(plain.decode())
        except (ValueError, UnicodeDecodeError):
            return _dumps(_flat(23, "invalid JSON message", when, "E"))  # wrong key: garbage
        if not isinstance(cmd, dict):
            return _dumps(_flat(23, "invalid JSON message", when, "E"))
        signs = {sign for _, sign in self._live_tokens(client, now)}
        if cmd.get("token") not in signs:
            return _dumps(_flat(135, "check token error", when, "E"))
        reply = self._execute_v2(str(cmd.get("cmd", "")), cmd, when)
        return _dumps({"enc": encrypt(_dumps(reply).encode(), key)})

    def _execute_v2(self, command: str, cmd: dict[str, Any], when: int) -> dict[str, Any]:
        s = self.state
        ok = _flat(131, "API command OK", when)
        if command == "power_off":
            s.sleep()
            return ok
        if command == "power_on":
            s.wake()
            return ok
        if command == "adjust_power_limit":
            try:
                watts = int(str(cmd.get("power_limit", "")))
            except ValueError:
                return _flat(132, "invalid power_limit", when, "E")
            lo = int(s.spec.min_power_w or 0)
            hi = int(s.spec.max_power_w or 99999)
            if not lo <= watts <= hi:
                return _flat(132, f"power_limit must be within {lo}..{hi}", when, "E")
            s.set_power_limit(float(watts))
            return ok
        if command == "set_power_pct":
            try:
                pct = int(str(cmd.get("percent", "")))
            except ValueError:
                return _flat(132, "invalid percent", when, "E")
            if not 0 <= pct <= 100:
                return _flat(132, "percent must be within 0..100", when, "E")
            s.set_power_limit(None if pct == 100 else s.spec.power_w * pct / 100.0)
            return ok
        if command in ("set_low_power", "set_normal_power", "set_high_power"):
            if not s.faults.ignore_power_commands:
                s.mode = command.split("_")[1]
            return ok
        if command in ("reboot", "restart_btminer"):
            if not s.faults.ignore_power_commands:
                self._restart()
            return ok
        if command in (
            "set_led",
            "set_zone",
            "set_hostname",
            "update_pools",
            "enable_btminer_fast_boot",
            "disable_btminer_fast_boot",
            "enable_web_pools",
            "disable_web_pools",
            "net_config",
            "set_target_freq",
            "pre_power_on",
            "set_temp_offset",
            "adjust_upfreq_speed",
            "set_poweroff_cool",
            "set_fan_zero_speed",
        ):
            return ok
        return _flat(14, "invalid cmd", when, "E")

    # --- v3 --------------------------------------------------------------------------------------
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


_V2_READS: dict[str, Callable[[WhatsminerMiner, float], str]] = {
    "summary": WhatsminerMiner._summary,
    "devs": WhatsminerMiner._devs,
    "edevs": WhatsminerMiner._devs,
    "pools": WhatsminerMiner._pools,
    "devdetails": WhatsminerMiner._devdetails,
    "version": WhatsminerMiner._version,
    "get_version": WhatsminerMiner._get_version,
    "get_psu": WhatsminerMiner._get_psu,
    "get_miner_info": WhatsminerMiner._get_miner_info,
    "get_error_code": WhatsminerMiner._get_error_code,
    "status": WhatsminerMiner._status,
}

_V3_READS: dict[str, Callable[[WhatsminerMiner, Any, float], dict[str, Any] | None]] = {
    "get.device.info": WhatsminerMiner._device_info,
    "get.miner.status": WhatsminerMiner._miner_status,
    "get.miner.setting": WhatsminerMiner._miner_setting,
}

_REASONS = {
    110: "Intake fan speed error.",
    350: "SM0 temperature protecting.",
    530: "SM0 not found.",
    531: "SM1 not found.",
    532: "SM2 not found.",
}


class WhatsminerM50S(WhatsminerMiner):
    """M50S_VH50 on 2023 firmware: API v2.0.5 only, privileged commands over the v2 envelope."""

    default_ports: ClassVar[dict[str, int]] = {"api": 4028}
    model_code = "M50S_VH50"
    firmware = "20230803.11.REL"
    api_ver = "2.0.5"
    psu_model = "P221B"


class WhatsminerM60S(WhatsminerMiner):
    """M60S_VK40 on 2025 firmware: API v3 on 4433 (reads and set.*); v2 on 4028 answers reads only."""

    model_code = "M60S_VK40"
    firmware = "20251209.16.Rel2"
    api_ver = "3.0.2"
    v2_writes = False
    serves_v3 = True


# --- protocols ------------------------------------------------------------------------------------
class V2Protocol(OneShotConnection):
    """One btminer v2 connection: one JSON request, one reply, then close."""

    __slots__ = ("client",)
    idle_s = V2_IDLE_CLOSE_S
    miner: WhatsminerMiner

    def __init__(self, miner: WhatsminerMiner) -> None:
        super().__init__(miner)
        self.client = ""

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        super().connection_made(transport)
        peer = transport.get_extra_info("peername")
        self.client = peer[0] if peer else ""

    def complete(self, request: bytes) -> bool:
        try:
            json.loads(request)
        except ValueError:
            return False
        return True

    def delay_s(self, request: bytes) -> float:
        return super().delay_s(request) + (self.miner.conf_delay_s if b'"enc"' in request else 0.0)

    def answer(self, request: bytes) -> tuple[bytes, bool]:
        return self.miner.v2_reply(request, self.client), False


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
