"""Whatsminer btminer API v2 (TCP 4028): request dispatch, get_token, AES-envelope privileged commands."""

from __future__ import annotations

import asyncio
import hashlib
import json
import string
import time
from typing import TYPE_CHECKING, Any, ClassVar

from fleetd.sim.base import MinerState, reply_override, wire
from fleetd.sim.server import PADDING, OneShotConnection
from fleetd.sim.whatsminer_replies import _V2_READS, _dumps, _flat
from fleetd.transport.btminer import aes_key, decrypt, derive_token, encrypt, password_key

if TYPE_CHECKING:
    from fleetd.sim.whatsminer import WhatsminerMiner

V2_PASSWORD = "admin"
TOKEN_TTL_S = 30 * 60.0
MAX_TOKENS = 32  # live tokens per client address
# The firmware closes a v2 connection that sends nothing for 10 s (API v2.0.5 documentation).
V2_IDLE_CLOSE_S = 10.0
JOINABLE = ("summary", "devs", "edevs", "pools", "devdetails", "version", "stats")

_SALT_CHARS = string.ascii_letters + string.digits


def _salt_from(seed: str) -> str:
    digest = hashlib.sha256(seed.encode()).digest()
    return "".join(_SALT_CHARS[b % len(_SALT_CHARS)] for b in digest[:8])


class V2Api:
    """The v2 protocol of a Whatsminer, reads and privileged commands (mixed into WhatsminerMiner)."""

    state: MinerState
    legacy_api: bool
    write_access: bool
    v2_writes: ClassVar[bool]
    token_ttl_s: float
    max_tokens: int
    salt: str
    tokens: dict[str, list[tuple[float, str]]]
    v2_password: str

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
        return wire(body) + b"\0"  # btminer is CGMiner-based: replies end with a NUL

    def _v2_read(self, command: str, now: float) -> str | None:
        override = reply_override(self.state.faults, command)
        if override is not None:
            return override
        handler = _V2_READS.get(command)
        if handler is None:
            return None
        return handler(self, now)

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
        key = aes_key(password_key(self.v2_password, self.salt))
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
