"""What the vendor emulators share on the wire: tracked connections, one-request servers, reboots."""

from __future__ import annotations

import abc
import asyncio
import contextlib
from collections.abc import Callable
from typing import ClassVar

from fleetd.sim.base import EmulatedMiner

MAX_REQUEST = 65536
# Bytes around a request that firmwares ignore (NUL terminators, line ends).
PADDING = b"\x00\r\n\t "


class RebootingMiner(EmulatedMiner):
    """An emulated miner whose reboot command takes it off the network for `reboot_s`."""

    reboot_s: float = 0.0
    _rebooting: asyncio.Future[None] | None = None

    @abc.abstractmethod
    def _booted(self) -> None:
        """Reset the state as the firmware does when it comes up."""

    def _restart(self) -> None:
        if self.reboot_s > 0:
            # Go offline just after this reply is out; answer again after reboot_s.
            asyncio.get_running_loop().call_later(0.05, self._go_offline)
        else:
            self._booted()

    def _go_offline(self) -> None:
        if self._rebooting is None and self.servers:
            self._rebooting = asyncio.ensure_future(self._reboot())

    async def _reboot(self) -> None:
        try:
            await EmulatedMiner.stop(self)
            await asyncio.sleep(self.reboot_s)
            self._booted()
            await self.start()
        finally:
            self._rebooting = None

    async def stop(self) -> None:
        if self._rebooting is not None:
            self._rebooting.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._rebooting
        await super().stop()


class Connection(asyncio.Protocol):
    """A connection to one emulated miner, tracked in `miner.connections` so that stop and reboot cut it."""

    __slots__ = ("idle", "miner", "transport")
    # Closed after this long without traffic. Never short: clients under load send their request
    # seconds after connecting.
    idle_s: ClassVar[float]

    def __init__(self, miner: EmulatedMiner) -> None:
        self.miner = miner
        self.transport: asyncio.Transport | None = None
        self.idle: asyncio.TimerHandle | None = None

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        assert isinstance(transport, asyncio.Transport)
        self.transport = transport
        self.miner.connections.add(transport)
        self._touch()

    def _touch(self, idle_s: float | None = None) -> None:
        """(Re)start the idle timer: `idle_s` (default the class's) from now."""
        if self.idle:
            self.idle.cancel()
        if self.transport is not None:
            loop = asyncio.get_running_loop()
            self.idle = loop.call_later(self.idle_s if idle_s is None else idle_s, self.transport.close)

    def _close(self) -> None:
        if self.transport is not None:
            self.transport.close()

    @staticmethod
    def _after(delay: float, reply: Callable[[bytes], None], request: bytes) -> None:
        """`reply(request)` now, or `delay` s from now (a slow miner)."""
        if delay > 0:
            asyncio.get_running_loop().call_later(delay, reply, request)
        else:
            reply(request)

    def connection_lost(self, exc: Exception | None) -> None:
        if self.idle:
            self.idle.cancel()
        if self.transport is not None:
            self.miner.connections.discard(self.transport)
        self.transport = None


class OneShotConnection(Connection):
    """One request, one reply, then close (unless `answer` says to keep the socket open)."""

    __slots__ = ("buf", "done")

    def __init__(self, miner: EmulatedMiner) -> None:
        super().__init__(miner)
        self.buf = bytearray()
        self.done = False

    @abc.abstractmethod
    def complete(self, request: bytes) -> bool:
        """Whether `request` (stripped of padding, not empty) is a whole request."""

    @abc.abstractmethod
    def answer(self, request: bytes) -> tuple[bytes, bool]:
        """The reply to `request`, and whether to keep the socket open after it."""

    def delay_s(self, request: bytes) -> float:
        """How long the miner takes before answering `request`."""
        return self.miner.state.faults.slow_s

    def data_received(self, data: bytes) -> None:
        if self.done:
            return
        self.buf += data
        if len(self.buf) > MAX_REQUEST:
            self._close()
            return
        text = bytes(self.buf).strip(PADDING)
        if text and self.complete(text):
            self._dispatch()

    def eof_received(self) -> bool:
        # Half-closed by the client (`nc -q1`): keep the socket to write the reply, which may be due later.
        if not self.done:
            if not self.buf.strip(PADDING):
                return False
            self._dispatch()
        return True

    def _dispatch(self) -> None:
        self.done = True
        if self.miner.state.faults.dead:
            return  # the idle timer still closes it
        if self.idle:
            self.idle.cancel()  # a slow reply is not cut short
        request = bytes(self.buf)
        self._after(self.delay_s(request), self._reply, request)

    def _reply(self, request: bytes) -> None:
        if self.transport is None or self.transport.is_closing():
            return
        data, keep_open = self.answer(request)
        self.transport.write(data)
        if keep_open:
            self._touch()
        else:
            self._close()
