"""What every emulated miner shares: its model's physics, its mutable state, its faults.

Vendor emulators (fleetd.sim.antminer, fleetd.sim.whatsminer, ...) own the wire protocol and
render replies from a `MinerState`; the state owns the physics (ramp, jitter, sleep, limits).
"""

from __future__ import annotations

import abc
import asyncio
import contextlib
import random
import socket
import time
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from typing import ClassVar


@dataclass(frozen=True, slots=True)
class ModelSpec:
    """Nominal figures of one emulated model."""

    name: str  # as `fleetd scan` reports it, e.g. "Antminer S19 Pro"
    vendor: str
    hashrate_ths: float
    power_w: float
    idle_w: float = 25.0
    boards: int = 3
    chips_per_board: int = 114
    fans: int = 4
    fan_rpm: int = 5800
    min_power_w: float = 0.0  # lowest power limit the firmware accepts
    max_power_w: float = 0.0


@dataclass(slots=True)
class Faults:
    """Faults switched on for one emulated miner."""

    slow_s: float = 0.0  # delay before every reply
    dead: bool = False  # accepts then never answers
    malformed: bool = False  # replies with broken JSON
    wrong_password: bool = False  # the miner's password differs from the default
    board_down: bool = False  # one hashboard reports no chips and no hashrate
    fan_failed: bool = False  # one fan reports 0 rpm
    overheat: bool = False  # chip temperatures above the firmware's limit
    ignore_power_commands: bool = False  # acknowledges sleep/wake and does nothing
    # Slow degradation (rates per emulated hour, see MinerState.time_scale): the last board loses
    # BOARD_DECAY_PER_H of its hashrate; the fans speed up FAN_CREEP_PER_H, chips heat TEMP_CREEP_C_PER_H.
    board_degrading: bool = False
    fan_degrading: bool = False
    # Protocol breakage real firmwares emit, by name (see the vendor emulator for the names it knows).
    quirks: frozenset[str] = frozenset()
    # Reply bodies served as they are instead of the rendered ones, by API command or web path
    # ("summary", "get_miner_info", "/cgi-bin/stats.cgi", "/api/v1/summary"); "*" replaces every
    # reply. The wire framing (NUL end, length prefix, HTTP head) is still added around them.
    replies: Mapping[str, bytes] = field(default_factory=dict)

    FIELDS: ClassVar[tuple[str, ...]] = (
        "slow",
        "dead",
        "malformed",
        "wrong_password",
        "board_down",
        "fan_failed",
        "overheat",
        "ignore_power_commands",
        "board_degrading",
        "fan_degrading",
        "quirks",
    )


def reply_override(faults: Faults, key: str) -> str | None:
    """The body `faults.replies` sets for `key` (or for every reply), as text `wire` turns back to bytes."""
    raw = faults.replies.get(key, faults.replies.get("*")) if faults.replies else None
    return None if raw is None else raw.decode("utf-8", "surrogateescape")


def wire(text: str) -> bytes:
    """The bytes of a reply body; undecodable bytes of an overridden reply go out unchanged."""
    return text.encode("utf-8", "surrogateescape")


BOARD_DECAY_PER_H = 0.02  # share of the board's own hashrate lost per emulated hour (floor 10 %)
FAN_CREEP_PER_H = 0.015  # fan speed gained per emulated hour (up to +40 %)
TEMP_CREEP_C_PER_H = 0.4  # chip temperature gained per emulated hour (up to +30 C)


@dataclass(slots=True)
class MinerState:
    """Mutable state of one emulated miner; values are computed on read from the clock."""

    spec: ModelSpec
    serial: str = ""
    mac: str = ""
    hostname: str = ""
    faults: Faults = field(default_factory=Faults)
    password: str = "root"
    started_at: float = field(default_factory=time.time)
    ramp_s: float = 30.0  # time to full hashrate after wake
    sleeping: bool = False
    mode_before_sleep: str = "normal"
    mode: str = "normal"  # normal / low / high
    power_limit_w: float | None = None
    # (hashrate, power) factors of normal per mode where a model's differ from the default low 0.75, high 1.1
    mode_factors: dict[str, tuple[float, float]] | None = None
    woke_at: float | None = None
    jitter: float = 0.01  # relative jitter of hashrate, power and temperatures
    rng: random.Random = field(default_factory=random.Random)
    accepted: int = 0
    rejected: int = 0
    power_commands: int = 0  # sleep/wake/power-limit commands received, obeyed or not (tests count them)
    time_scale: float = 1.0  # emulated seconds per real second, for the slow-degradation faults
    degrading_since: float = field(default_factory=time.time)

    def degraded_h(self, now: float | None = None) -> float:
        """Emulated hours of degradation so far."""
        now = time.time() if now is None else now
        return max(0.0, now - self.degrading_since) * self.time_scale / 3600.0

    # --- physics ---------------------------------------------------------------------------
    def ramp_fraction(self, now: float | None = None) -> float:
        if self.sleeping:
            return 0.0
        if self.woke_at is None:
            return 1.0
        now = time.time() if now is None else now
        if self.ramp_s <= 0:
            return 1.0
        return max(0.0, min(1.0, (now - self.woke_at) / self.ramp_s))

    def _mode_factors(self) -> tuple[float, float]:
        own = self.mode_factors.get(self.mode) if self.mode_factors else None
        if own is not None:
            return own
        f = {"low": 0.75, "high": 1.1}.get(self.mode, 1.0)
        return f, f

    def _mode_factor(self) -> float:
        """The power factor of the current mode."""
        return self._mode_factors()[1]

    def mode_power_w(self) -> float:
        """Nominal power of the current mode."""
        return self.spec.power_w * self._mode_factor()

    def _limit_factor(self) -> float:
        if self.power_limit_w is None or self.power_limit_w >= self.spec.power_w * self._mode_factor():
            return 1.0
        return max(0.0, self.power_limit_w / (self.spec.power_w * self._mode_factor()))

    def _noise(self) -> float:
        return 1.0 + self.rng.uniform(-self.jitter, self.jitter)

    def expected_hashrate_ths(self) -> float:
        return self.spec.hashrate_ths * self._mode_factors()[0]

    def board_fractions(self) -> list[float]:
        """Share of the miner's hashrate each board carries (0 for a board that is down)."""
        n = self.spec.boards
        shares = [1.0 / n] * n
        if self.faults.board_down and n:
            shares[-1] = 0.0
        elif self.faults.board_degrading and n:
            shares[-1] *= max(0.1, 1.0 - BOARD_DECAY_PER_H * self.degraded_h())
        return shares

    def steady_hashrate_ths(self, now: float | None = None) -> float:
        """Hashrate without jitter (what a long average converges to)."""
        total = self.expected_hashrate_ths() * self._limit_factor() * self.ramp_fraction(now)
        return total * sum(self.board_fractions())

    def hashrate_ths(self, now: float | None = None) -> float:
        total = self.steady_hashrate_ths(now)
        return max(0.0, total * self._noise()) if total else 0.0

    def power_w(self, now: float | None = None) -> float:
        frac = self.ramp_fraction(now)
        if frac == 0.0:
            return self.spec.idle_w
        full = self.spec.power_w * self._mode_factor() * self._limit_factor() * sum(self.board_fractions())
        return max(self.spec.idle_w, self.spec.idle_w + (full - self.spec.idle_w) * frac) * self._noise()

    def chip_temp_c(self, now: float | None = None) -> float:
        base = 30.0 + 40.0 * self.ramp_fraction(now)
        if self.faults.overheat:
            base = 98.0
        elif self.faults.fan_degrading and not self.sleeping:
            base += min(30.0, TEMP_CREEP_C_PER_H * self.degraded_h(now))
        return round(base * self._noise(), 1)

    def board_temp_c(self, now: float | None = None) -> float:
        return round(self.chip_temp_c(now) - 12.0, 1)

    def fan_rpms(self) -> list[int]:
        rpm = self.spec.fan_rpm if not self.sleeping else int(self.spec.fan_rpm * 0.3)
        if self.faults.fan_degrading and not self.sleeping:
            rpm = int(rpm * (1.0 + min(0.4, FAN_CREEP_PER_H * self.degraded_h())))
        rpms = [int(rpm * self._noise()) for _ in range(self.spec.fans)]
        if self.faults.fan_failed and rpms:
            rpms[0] = 0
        return rpms

    def uptime_s(self, now: float | None = None) -> int:
        now = time.time() if now is None else now
        return int(now - self.started_at)

    def is_mining(self) -> bool:
        return not self.sleeping and self.hashrate_ths() > 0

    # --- commands --------------------------------------------------------------------------
    def sleep(self) -> None:
        self.power_commands += 1
        if self.faults.ignore_power_commands:
            return
        if not self.sleeping:
            self.mode_before_sleep = self.mode
        self.sleeping = True
        self.woke_at = None

    def wake(self) -> None:
        self.power_commands += 1
        if self.faults.ignore_power_commands:
            return
        if self.sleeping:
            self.sleeping = False
            self.mode = self.mode_before_sleep
            self.woke_at = time.time()

    def set_power_limit(self, watts: float | None) -> None:
        self.power_commands += 1
        if self.faults.ignore_power_commands:
            return
        self.power_limit_w = watts


async def listen(factory: Callable[[], asyncio.Protocol], host: str, port: int) -> asyncio.Server:
    """Serve `factory` on host:port; binds the socket directly (no resolver thread), cheap at scale."""
    sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    try:
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        sock.bind((host, port))
        sock.listen(128)
        sock.setblocking(False)
        return await asyncio.get_running_loop().create_server(factory, sock=sock)
    except BaseException:
        sock.close()
        raise


class EmulatedMiner(abc.ABC):
    """One emulated miner: serves its vendor's protocols on one loopback address."""

    vendor: ClassVar[str]
    default_ports: ClassVar[dict[str, int]] = {"api": 4028, "web": 80}  # protocol name -> real port

    def __init__(self, state: MinerState, host: str, ports: dict[str, int]) -> None:
        self.state = state
        self.host = host
        self.ports = ports  # protocol name -> port, e.g. {"api": 4028, "web": 80}
        self.servers: list[asyncio.AbstractServer] = []
        # Open client connections; protocols add and discard theirs so that stop() can close them.
        self.connections: set[asyncio.BaseTransport] = set()

    @abc.abstractmethod
    async def start(self) -> None:
        """Bind this miner's listeners on `host` and append them to `servers`."""

    async def stop(self) -> None:
        for srv in self.servers:
            srv.close()
            close_clients = getattr(srv, "close_clients", None)  # Python 3.13+
            if close_clients is not None:
                close_clients()
        for transport in list(self.connections):
            transport.abort()
        self.connections.clear()
        for srv in self.servers:
            # From Python 3.12 this also waits for open connections, which a client may hold on to.
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(srv.wait_closed(), 1.0)
        self.servers.clear()
