"""One request/reply exchange over a fresh TCP connection, with timeouts and a size cap."""

from __future__ import annotations

import asyncio
import functools
import ipaddress
import os
import socket
from collections.abc import Callable
from typing import TYPE_CHECKING

from fleetd.transport.errors import (
    DeviceError,
    DeviceTimeoutError,
    MalformedReplyError,
    UnreachableError,
)

if TYPE_CHECKING:  # only the type: the transport layer does not import the driver layer
    from fleetd.transport.timeouts import Timeouts

__all__ = ["tcp_exchange"]


class _Exchange(asyncio.Protocol):
    """Sends one payload and collects the reply into a future (cheaper per call than streams)."""

    __slots__ = (
        "buf",
        "command",
        "complete",
        "done",
        "host",
        "max_bytes",
        "payload",
        "terminator",
        "transport",
    )

    def __init__(
        self,
        payload: bytes,
        done: asyncio.Future[bytes],
        max_bytes: int,
        complete: Callable[[bytearray], bool] | None,
        terminator: bytes | None,
        host: str,
        command: str,
    ) -> None:
        self.payload = payload
        self.done = done
        self.max_bytes = max_bytes
        self.complete = complete
        self.terminator = terminator
        self.host = host
        self.command = command
        self.buf = bytearray()
        self.transport: asyncio.Transport | None = None

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        self.transport = transport  # type: ignore[assignment]
        if self.payload:
            transport.write(self.payload)  # type: ignore[attr-defined]

    def data_received(self, data: bytes) -> None:
        if self.done.done():
            return
        start = len(self.buf)
        self.buf += data
        if len(self.buf) > self.max_bytes:
            self._fail(
                MalformedReplyError(
                    f"reply exceeds {self.max_bytes} bytes", host=self.host, command=self.command
                )
            )
            return
        if self.terminator is not None:
            at = self.buf.find(self.terminator, max(0, start - len(self.terminator) + 1))
            if at >= 0:
                self._finish(bytes(self.buf[:at]))
                return
        if self.complete is not None and self.complete(self.buf):  # no copy unless the reply is whole
            self._finish(bytes(self.buf))

    def eof_received(self) -> bool:
        self._at_end()
        return False

    def connection_lost(self, exc: Exception | None) -> None:
        if exc is not None and not self.buf and not self.done.done():
            self._fail(
                UnreachableError(
                    f"connection lost before any reply: {_describe(exc)}",
                    host=self.host,
                    command=self.command,
                )
            )
        else:
            self._at_end()

    def _at_end(self) -> None:
        if self.done.done():
            return
        if self.buf:
            self._finish(bytes(self.buf))
        else:
            self._fail(
                MalformedReplyError("connection closed without a reply", host=self.host, command=self.command)
            )

    def _finish(self, reply: bytes) -> None:
        if not self.done.done():
            self.done.set_result(reply)

    def _fail(self, exc: DeviceError) -> None:
        if not self.done.done():
            self.done.set_exception(exc)
        if self.transport is not None:
            self.transport.abort()


def _describe(exc: BaseException) -> str:
    if isinstance(exc, socket.gaierror):  # its errno is a resolver code, not an OS one
        return f"cannot resolve the host name ({exc.strerror})"
    if isinstance(exc, OSError) and exc.errno:
        return os.strerror(exc.errno)
    return str(exc) or type(exc).__name__


@functools.lru_cache(maxsize=65536)
def _is_ip_literal(host: str) -> bool:
    try:
        ipaddress.ip_address(host)
    except ValueError:
        return False
    return True


async def tcp_exchange(
    host: str,
    port: int,
    payload: bytes,
    *,
    command: str,
    timeouts: Timeouts,
    max_bytes: int = 1 << 20,
    complete: Callable[[bytearray], bool] | None = None,
    terminator: bytes | None = b"\0",
) -> bytes:
    """Connect, send `payload`, return the reply (without its terminator); always closes the socket.

    The reply ends at the first `terminator` (NUL for the CGMiner family; pass None for binary
    framings), at EOF, or when `complete(buf)` says a whole reply is in. `timeouts.connect_s`
    bounds the connect and `timeouts.read_s` the whole read.
    """
    loop = asyncio.get_running_loop()
    done: asyncio.Future[bytes] = loop.create_future()
    proto = _Exchange(payload, done, max_bytes, complete, terminator, host, command)
    resolving = not _is_ip_literal(host)
    try:
        async with asyncio.timeout(timeouts.connect_s):
            addr = host
            if resolving:  # resolved apart, so that a dead resolver reads as a name problem, not a dead miner
                infos = await loop.getaddrinfo(host, port, type=socket.SOCK_STREAM)
                addr = infos[0][4][0]
                resolving = False
            transport, _ = await loop.create_connection(lambda: proto, addr, port)
    except TimeoutError:
        if resolving:
            raise UnreachableError(
                f"cannot resolve the host name (no answer from the resolver within {timeouts.connect_s:g} s)",
                host=host,
                command=command,
            ) from None
        raise DeviceTimeoutError(
            f"connect to port {port} timed out after {timeouts.connect_s:g} s", host=host, command=command
        ) from None
    except OSError as exc:
        raise UnreachableError(
            f"cannot connect to port {port}: {_describe(exc)}", host=host, command=command
        ) from None
    try:
        async with asyncio.timeout(timeouts.read_s):
            return await done
    except TimeoutError:
        raise DeviceTimeoutError(
            f"no complete reply within {timeouts.read_s:g} s", host=host, command=command
        ) from None
    finally:
        if not done.done():
            done.cancel()  # so that a late connection_lost does not leave an unretrieved exception
        transport.close()
