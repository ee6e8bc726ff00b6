"""Antminer stock firmware emulator: the CGMiner API (TCP 4028) and the digest-protected web CGI (80).

Replies are built from real captures (fleetd/sim/captures, see PROVENANCE.md there): field names,
order, types and STATUS blocks come from the capture, live values from the miner's `MinerState`.
Both servers are bare asyncio protocols so that one process can serve thousands of miners.

Its parts: antminer_api (CGMiner API), antminer_web (HTTP server, digest auth), antminer_cgi (CGI
endpoints), antminer_replies (captures, live values); the names stay importable from here.

Quirks (per miner, `Faults.quirks`), each the breakage some real firmware emits:
  brace           `}{` between the elements of the `stats` list
  trailing_comma  `,}` closing the last `stats` element
  inf             a bare `inf` number in `summary`
  pool_stale      the `"Pool Stale%%"` key in `pools` (the S21 firmware always emits it)
  leading_comma   `[,{` opening the `pools` list
  no_nul          no NUL terminator, and the socket is left open after the reply
"""

from __future__ import annotations

import copy
import hashlib
import time
from typing import ClassVar

from fleetd.sim.antminer_api import IDLE_CLOSE_S, ApiProtocol, CgminerApi, to_text
from fleetd.sim.antminer_cgi import WebCgi
from fleetd.sim.antminer_replies import Live, capture
from fleetd.sim.antminer_web import (
    DEFAULT_USER,
    REALM,
    WEB_KEEP_ALIVE_IDLE_S,
    WEB_READ_IDLE_S,
    WebProtocol,
    make_nonce,
)
from fleetd.sim.base import EmulatedMiner, MinerState, listen
from fleetd.sim.server import RebootingMiner

__all__ = [
    "DEFAULT_USER",
    "IDLE_CLOSE_S",
    "QUIRKS",
    "REALM",
    "WEB_KEEP_ALIVE_IDLE_S",
    "WEB_READ_IDLE_S",
    "AntminerMiner",
    "AntminerS19Pro",
    "AntminerS21",
    "ApiProtocol",
    "Live",
    "WebProtocol",
    "capture",
    "make_nonce",
    "to_text",
]

QUIRKS = frozenset({"brace", "trailing_comma", "inf", "pool_stale", "leading_comma", "no_nul"})


class AntminerMiner(CgminerApi, WebCgi, RebootingMiner):
    """One Antminer on stock firmware; subclasses pin the firmware flavour."""

    vendor = "Antminer"
    prefix: ClassVar[str]  # capture file prefix
    miner_version: ClassVar[str]
    compile_time: ClassVar[str]

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

    def _booted(self) -> None:
        now = time.time()
        self.state.started_at = now
        if not self.state.sleeping:
            self.state.woke_at = now


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
