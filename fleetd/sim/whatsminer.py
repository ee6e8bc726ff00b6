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

Its parts: whatsminer_v2 (v2 protocol, tokens, privileged commands), whatsminer_v3 (v3 protocol),
whatsminer_replies (v2 read replies); the names stay importable from here.

Quirks (per miner, `Faults.quirks`), each the breakage some real btminer firmware emits:
  error_code_list    API 2.0.4: get_error_code sends `"error_code":["110":"<time>"]` (pairs in a list)
  trailing_comma     `,}` closing the SUMMARY object
  psu_missing_comma  2023-01 firmware: get_psu lacks the comma before "temp0" (`""temp0`)
  no_joined          firmware that refuses joined commands ("summary+devs+pools")
"""

from __future__ import annotations

import hashlib
import time
from typing import Any, ClassVar

from fleetd.sim.base import EmulatedMiner, MinerState, listen
from fleetd.sim.server import RebootingMiner
from fleetd.sim.whatsminer_replies import V2Reads
from fleetd.sim.whatsminer_v2 import (
    JOINABLE,
    MAX_TOKENS,
    TOKEN_TTL_S,
    V2_IDLE_CLOSE_S,
    V2_PASSWORD,
    V2Api,
    V2Protocol,
    _salt_from,
)
from fleetd.sim.whatsminer_v3 import (
    V3_ACCOUNT,
    V3_IDLE_CLOSE_S,
    V3_PASSWORD,
    V3_TS_WINDOW_S,
    V3Api,
    V3Protocol,
)

__all__ = [
    "JOINABLE",
    "MAX_TOKENS",
    "QUIRKS",
    "TOKEN_TTL_S",
    "V2_IDLE_CLOSE_S",
    "V2_PASSWORD",
    "V3_ACCOUNT",
    "V3_IDLE_CLOSE_S",
    "V3_PASSWORD",
    "V3_TS_WINDOW_S",
    "V2Protocol",
    "V3Protocol",
    "WhatsminerM50S",
    "WhatsminerM60S",
    "WhatsminerMiner",
]

QUIRKS: frozenset[str] = frozenset({"error_code_list", "trailing_comma", "psu_missing_comma", "no_joined"})


class WhatsminerMiner(V2Api, V2Reads, V3Api, RebootingMiner):
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
