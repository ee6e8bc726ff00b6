"""Avalon driver: reads `version`, `estats` and `pools`; soft-off/soft-on and work modes through `ascset`.

Avalon controllers handle one API connection at a time badly (a second one stalls or resets the first),
so every command to one miner, reads included, goes through a per-miner lock. `ascset|0,softoff,1:<ts>`
and `softon` take the time at which to act, on the miner's own clock (many Avalons run with an unset
clock), so the driver takes it from the STATUS "When" of a fresh read. `softon` often closes the socket
without a reply: that is no error, the re-read decides. Work modes (Eco, Standard, Super) are the
power-limit capability: the driver picks the mode with the most expected power within the limit
(drivers/avalon/modes.py) and verifies that WORKMODE shows it while the miner hashes (a soft-off miner
is soft-oned in that mode: a limit means hashing within it). The mode the miner
ran before fleetd's first limit is remembered (per process and in `state_dir`, as the Antminer driver
keeps its mode before sleep) and `wake` switches back to it, so that ending a limit restores the miner.
"""

from __future__ import annotations

import asyncio
import contextlib
import time
from collections.abc import AsyncIterator, Callable, Mapping
from typing import Any

from fleetd.drivers import verify
from fleetd.drivers.avalon.modes import mode_watts, pick_mode
from fleetd.drivers.avalon.parse import (
    WORKMODES,
    is_avalon,
    parse_identity,
    parse_snapshot,
    when,
    work_level,
)
from fleetd.drivers.base import Driver, Endpoint, LimitsInTwoPhases, Sent, SupportsSleep
from fleetd.drivers.before_limit import BeforeLimit
from fleetd.drivers.cgminer import VersionProbe, reply_content

from fleetd.model import Identity, Mode, Reading, Snapshot
from fleetd.transport.cgminer import CGMinerAPI
from fleetd.transport.errors import (
    CommandRejectedError,
    DeviceTimeoutError,
    MalformedReplyError,
    NotCompliedError,
    UnsupportedError,
)

__all__ = ["SOFT_DELAY_S", "AvalonDriver"]

SOFT_DELAY_S = 2  # seconds ahead (miner clock) at which softoff/softon are scheduled
_LOCKS: dict[tuple[str, int], asyncio.Lock] = {}
_WORKMODE_VALUES = {mode: value for value, mode in WORKMODES.items()}


class AvalonDriver(VersionProbe, Driver, SupportsSleep, LimitsInTwoPhases):
    """A Canaan Avalon (A13xx-A15xx, Avalon Q / Nano). A poll is one joined `version+estats+pools`."""

    name = "avalon"
    vendor = "avalon"
    hardware = "Canaan"
    firmware = "Avalon cgminer API on 4028 (A13xx-A15xx and Avalon Q/Nano layouts of `estats`/`stats`)"
    models = ("AvalonMiner A1246-A1566", "Avalon Q", "Avalon Nano")
    reads = "version/devs/estats per poll"
    controls = (
        "sleep/wake: `ascset` softoff/softon on the miner's clock; power limit: `ascset` workmode "
        "(the Eco/Standard/Super mode with the most expected power within the limit, A1466/A1566/Q)"
    )
    POLL = ("version", "estats", "pools")

    def __init__(self, endpoint: Endpoint) -> None:
        super().__init__(endpoint)
        self.api = CGMinerAPI(endpoint.host, endpoint.api_port, timeouts=endpoint.timeouts)
        self._model = ""  # the model the last read showed (its work modes give the power-limit range)

    @contextlib.asynccontextmanager
    async def _serial(self) -> AsyncIterator[None]:
        """Hold this miner's command lock (one exchange with an Avalon at a time)."""
        key = (self.host, self.endpoint.api_port)
        lock = _LOCKS.get(key)
        if lock is None:
            lock = _LOCKS[key] = asyncio.Lock()
        async with lock:
            yield

    @classmethod
    def from_version(cls, reply: Mapping[str, Any], *, host: str = "") -> Identity | None:
        """Pure: the identity a `version` reply shows if it is an Avalon's, else None."""
        if not is_avalon(reply):
            return None
        return parse_identity({"rpc_version": reply}, host=host)

    async def raw_responses(self) -> dict[str, Any]:
        async with self._serial():
            replies = await self.api.commands(*self.POLL, optional=("pools",))
        return {f"rpc_{cmd}": reply for cmd, reply in replies.items()}

    async def read(self) -> Reading:
        reading = self.parse_responses(await self.raw_responses(), host=self.host, polled_at=time.time())
        self._model = reading.identity.model
        return reading

    async def identity(self) -> Identity:
        async with self._serial():
            reply = await self.api.command("version")
        return parse_identity({"rpc_version": reply}, host=self.host)

    async def snapshot(self) -> Snapshot:
        return (await self.read()).snapshot

    @classmethod
    def parse_responses(
        cls, responses: Mapping[str, Any], *, host: str = "", polled_at: float = 0.0
    ) -> Reading:
        with reply_content(host):
            return Reading(
                parse_identity(responses, host=host), parse_snapshot(responses, polled_at=polled_at)
            )

    # --- power ---------------------------------------------------------------------------------

    async def _ascset(self, param: str, *, reply_optional: bool = False) -> None:
        async with self._serial():
            try:
                await self.api.command("ascset", param)
            except (MalformedReplyError, DeviceTimeoutError):
                if not reply_optional:
                    raise  # else closed without a reply, as softon does: the re-read decides

    async def _miner_clock(self) -> tuple[int, float | None]:
        """(the miner's clock now, its current hashrate) from one `estats` read."""
        async with self._serial():
            reply = await self.api.command("estats")
        rate = parse_snapshot({"rpc_estats": reply}).hashrate_ths
        return (when(reply) or int(time.time())), rate

    async def sleep(self) -> Snapshot:
        now, before = await self._miner_clock()
        await self._ascset(f"0,softoff,1:{now + SOFT_DELAY_S}")

        def off(snap: Snapshot) -> bool:
            rate = snap.hashrate_ths
            low = rate is not None and (rate <= 0.05 * before if before else rate <= 0.0)
            return snap.mode is Mode.SLEEP and low

        return await self._verify("softoff", off)

    async def wake(self) -> Snapshot:
        """Soft-on, verified hashing; then back to the work mode from before fleetd's power limit, if any."""
        now, _ = await self._miner_clock()
        await self._ascset(f"0,softon,1:{now + SOFT_DELAY_S}", reply_optional=True)
        snap = await self._verify(
            "softon", lambda s: s.mode is not Mode.SLEEP and bool(s.hashrate_ths and s.hashrate_ths > 0)
        )
        before = self._remembered_mode()
        if before is not None and snap.mode is not before:
            snap = await self.set_work_mode(before)
        if before is not None:
            self._remember_mode(None)
        return snap

    @property
    def _before_limit(self) -> BeforeLimit:
        """The work mode this miner ran before fleetd's first power limit, restored by wake."""
        return BeforeLimit(f"avalon:{self.host}:{self.endpoint.api_port}", self.state_dir)

    def _remember_mode(self, mode: Mode | None) -> None:
        self._before_limit.set(mode.value if mode else None)

    def _remembered_mode(self) -> Mode | None:
        name = self._before_limit.get()
        return Mode(name) if name in {m.value for m in _WORKMODE_VALUES} else None

    def power_limit_range(self) -> tuple[int, int] | None:
        modes = mode_watts(self._model)
        return (int(modes[0].watts), int(modes[-1].watts)) if modes else None

    async def send_power_limit(self, watts: int) -> Sent:
        """Switch to the work mode with the most expected power within `watts`; confirm() verifies it."""
        reading = await self.read()
        model = reading.identity.model
        modes = mode_watts(model)
        if not modes:
            raise UnsupportedError(
                f"no work-mode power figures for {model or 'this Avalon'} (known: Avalon A1466, A1566, Q): "
                "a power limit would be a guess",
                host=self.host,
                command="workmode",
            )
        chosen = pick_mode(modes, watts)
        if chosen is None:
            low = modes[0]
            raise CommandRejectedError(
                f"{watts} W is below this {model}'s lowest work mode ({low.mode.value}, {low.watts:g} W); "
                "to draw less, sleep it",
                host=self.host,
                command="workmode",
            )
        if self._remembered_mode() is None and reading.snapshot.mode in _WORKMODE_VALUES:
            self._remember_mode(reading.snapshot.mode)
        deadline = verify.deadline_in(self.endpoint.timeouts.verify_s)
        await self._ascset(f"0,workmode,set,{chosen.value}")
        if reading.snapshot.mode is Mode.SLEEP:  # a limit means hashing within it: soft-on in that mode
            now, _ = await self._miner_clock()
            await self._ascset(f"0,softon,1:{now + SOFT_DELAY_S}", reply_optional=True)
        return Sent(
            lambda: self._verify(
                f"workmode {chosen.value} ({chosen.mode.value}, {chosen.watts:g} W) for a {watts} W limit",
                lambda s: s.mode is chosen.mode and bool(s.hashrate_ths and s.hashrate_ths > 0),
                deadline,
            )
        )

    async def set_work_mode(self, mode: Mode) -> Snapshot:
        """Switch the work mode (LOW = Eco, NORMAL = Standard, HIGH = Super) and verify it shows."""
        value = _WORKMODE_VALUES.get(mode)
        if value is None:
            raise CommandRejectedError(
                f"Avalon work modes are low, normal and high, not {mode.value}",
                host=self.host,
                command="workmode",
            )
        await self._ascset(f"0,workmode,set,{value}")
        return await self._verify(f"workmode {mode.value}", lambda s: s.mode is mode)

    async def set_work_level(self, level: int) -> int:
        """Set the work level (`ascset|0,worklevel,set,N`) and verify WORKLEVEL shows it; returns it.

        Only where the stats carry WORKLEVEL (the Avalon Q/Nano layout): elsewhere the level could not be
        verified, so nothing is sent."""
        if not 0 <= level <= 100:
            raise CommandRejectedError(
                f"Avalon work level {level} is out of range", host=self.host, command="worklevel"
            )
        if work_level(await self.raw_responses()) is None:
            raise UnsupportedError(
                "this Avalon's stats carry no WORKLEVEL, so a work level could not be verified",
                host=self.host,
                command="worklevel",
            )
        await self._ascset(f"0,worklevel,set,{level}")
        timeouts = self.endpoint.timeouts
        end = await verify.until(
            self.raw_responses,
            lambda r: work_level(r) == level,
            deadline=verify.deadline_in(timeouts.verify_s),
            interval=timeouts.verify_interval_s,
        )
        if end.ok:
            return level
        seen = work_level(end.last) if end.last is not None else None
        raise NotCompliedError(
            f"worklevel {level} acknowledged but not in effect after {timeouts.verify_s:g} s "
            f"(WORKLEVEL {seen})",
            host=self.host,
            command="worklevel",
        )

    async def _verify(
        self, action: str, ok: Callable[[Snapshot], bool], deadline: float | None = None
    ) -> Snapshot:
        return await verify.confirm(
            self.snapshot,
            ok,
            action=action,
            host=self.host,
            timeouts=self.endpoint.timeouts,
            describe=lambda s: f"mode {s.mode.value}, hashrate {verify.rate(s)}",
            deadline=deadline,
        )
