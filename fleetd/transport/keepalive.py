"""A lean HTTP/1.1 client for miners' JSON web APIs: one kept-alive connection, no session machinery.

The Braiins OS and VNish drivers poll a JSON API every few seconds on thousands of miners; aiohttp's
per-request cost (middlewares, cookie jar, connector pool) is most of such a poll's CPU. This client
keeps one connection per miner, sends a request, reads the status line, headers and a
Content-Length or chunked body, and maps every failure to the driver-layer error tree. A kept-alive
connection the server has since closed is re-opened once for the same request.
"""

from __future__ import annotations

import asyncio
import json
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from fleetd.transport.errors import (
    AuthError,
    CommandRejectedError,
    DeviceTimeoutError,
    InvalidCommandError,
    MalformedReplyError,
    UnreachableError,
)
from fleetd.transport.jsonfix import loads_tolerant

if TYPE_CHECKING:
    from fleetd.transport.timeouts import Timeouts

__all__ = ["KeepAliveHTTP", "Reply"]

MAX_HEAD = 16 * 1024


@dataclass(frozen=True, slots=True)
class Reply:
    """A reply as it came: status, headers (names lower-cased) and body."""

    status: int
    headers: dict[str, str]
    body: bytes

    def checked(self, host: str, path: str) -> bytes:
        """The body of a 2xx reply; the matching DeviceError for any other status (401 included)."""
        where = {"host": host, "command": path}
        status = self.status
        if status == 401:
            raise AuthError("authentication failed (HTTP 401)", **where)
        if status == 403:
            raise AuthError("access forbidden (HTTP 403)", **where)
        if status == 404:
            raise InvalidCommandError("no such path on this firmware (HTTP 404)", code=404, **where)
        if status >= 300:
            detail = self.body[:200].decode("utf-8", "replace").strip()
            raise CommandRejectedError(
                f"HTTP {status}{': ' + detail if detail else ''}", code=status, **where
            )
        return self.body


class _Stale(Exception):
    """The kept-alive connection was closed by the server before a reply began."""


class KeepAliveHTTP:
    """One miner's JSON web API over a single kept-alive HTTP/1.1 connection (requests serialized)."""

    def __init__(self, host: str, port: int = 80, *, timeouts: Timeouts, max_bytes: int = 1 << 20) -> None:
        self.host = host
        self.port = port
        self.timeouts = timeouts
        self.max_bytes = max_bytes
        self._conn: tuple[asyncio.StreamReader, asyncio.StreamWriter] | None = None
        self._lock = asyncio.Lock()
        self._hostport = host if port == 80 else f"{host}:{port}"

    def __repr__(self) -> str:
        return f"KeepAliveHTTP({self._hostport!r})"

    async def close(self) -> None:
        conn, self._conn = self._conn, None
        if conn is not None:
            conn[1].close()

    async def request(
        self,
        method: str,
        path: str,
        *,
        json_body: Any = None,
        headers: dict[str, str] | None = None,
        timeout_s: float | None = None,
    ) -> bytes:
        """Send one request and return the body of a 2xx reply; map every failure to a DeviceError."""
        reply = await self.exchange(method, path, json_body=json_body, headers=headers, timeout_s=timeout_s)
        return reply.checked(self.host, path)

    async def exchange(
        self,
        method: str,
        path: str,
        *,
        json_body: Any = None,
        headers: dict[str, str] | None = None,
        timeout_s: float | None = None,
    ) -> Reply:
        """Send one request and return whatever reply came (any status); DeviceError if none did.

        `timeout_s` bounds the whole exchange (default: the connect plus the read timeout).
        """
        body = b"" if json_body is None else json.dumps(json_body, separators=(",", ":")).encode()
        lines = [f"{method} {path} HTTP/1.1", f"Host: {self._hostport}", "Accept: application/json"]
        lines += [f"{k}: {v}" for k, v in (headers or {}).items()]
        if body or method in ("POST", "PUT", "PATCH"):
            lines += ["Content-Type: application/json", f"Content-Length: {len(body)}"]
        data = ("\r\n".join(lines) + "\r\n\r\n").encode() + body
        where = {"host": self.host, "command": path}
        limit = self.timeouts.connect_s + self.timeouts.read_s if timeout_s is None else timeout_s
        async with self._lock:
            try:
                async with asyncio.timeout(limit):
                    try:
                        return await self._exchange(data, reused=self._conn is not None)
                    except _Stale:
                        return await self._exchange(data, reused=False)
            except TimeoutError:
                await self.close()
                raise DeviceTimeoutError(f"no complete HTTP reply within {limit:g} s", **where) from None
            except (
                OSError,
                asyncio.IncompleteReadError,
                asyncio.LimitOverrunError,
                ValueError,
                _Stale,
            ) as exc:
                await self.close()
                if isinstance(exc, ConnectionRefusedError | _NoConnect):
                    raise UnreachableError(f"cannot connect to port {self.port}: {exc}", **where) from None
                raise MalformedReplyError(
                    f"invalid or cut HTTP reply: {exc or type(exc).__name__}", **where
                ) from None
            except asyncio.CancelledError:
                await self.close()  # cut mid-request (a caller's deadline): the connection is unusable
                raise

    async def get_json(self, path: str) -> Any:
        """GET `path` and decode its JSON body (None for an empty one)."""
        return await _decode(await self.request("GET", path), self.host, path)

    async def post_json(self, path: str, payload: Any) -> Any:
        """POST `payload` as JSON to `path` and decode the reply (None for an empty one)."""
        return await _decode(await self.request("POST", path, json_body=payload), self.host, path)

    async def _exchange(self, data: bytes, *, reused: bool) -> Reply:
        if self._conn is None:
            try:
                async with asyncio.timeout(self.timeouts.connect_s):
                    self._conn = await asyncio.open_connection(self.host, self.port, limit=MAX_HEAD)
            except (OSError, TimeoutError) as exc:
                reason = exc.strerror if isinstance(exc, OSError) and exc.strerror else "timed out"
                raise _NoConnect(reason) from None
        reader, writer = self._conn
        try:
            writer.write(data)
            head = await reader.readuntil(b"\r\n\r\n")
        except (ConnectionError, asyncio.IncompleteReadError) as exc:
            await self.close()
            if reused and (not isinstance(exc, asyncio.IncompleteReadError) or not exc.partial):
                raise _Stale() from None
            raise
        status_line, *header_lines = head.decode("latin-1").split("\r\n")
        parts = status_line.split(" ", 2)
        if len(parts) < 2 or not parts[0].startswith("HTTP/1."):
            raise ValueError(f"not an HTTP status line: {status_line[:60]!r}")
        status = int(parts[1])
        fields: dict[str, str] = {}
        for line in header_lines:
            name, sep, value = line.partition(":")
            if sep:
                name = name.strip().lower()
                if name not in fields or name != "www-authenticate":  # several challenges: the first
                    fields[name] = value.strip()
        if "chunked" in fields.get("transfer-encoding", "").lower():
            reply = await self._chunked(reader)
        elif "content-length" in fields:
            length = int(fields["content-length"])
            if length > self.max_bytes:
                raise ValueError(f"reply of {length} bytes exceeds {self.max_bytes} bytes")
            reply = await reader.readexactly(length)
        else:  # delimited by the server closing the connection: read to EOF (one read() may be a part)
            body = bytearray()
            while len(body) <= self.max_bytes:
                part = await reader.read(self.max_bytes + 1 - len(body))
                if not part:
                    break
                body += part
            reply = bytes(body)
            fields["connection"] = "close"
        if len(reply) > self.max_bytes:
            raise ValueError(f"reply exceeds {self.max_bytes} bytes")
        if fields.get("connection", "").lower() == "close" or parts[0] == "HTTP/1.0":
            await self.close()
        return Reply(status, fields, reply)

    async def _chunked(self, reader: asyncio.StreamReader) -> bytes:
        out = bytearray()
        while True:
            size = int((await reader.readuntil(b"\r\n")).split(b";")[0].strip(), 16)
            if size == 0:
                await reader.readuntil(b"\r\n")  # no trailers expected from these firmwares
                return bytes(out)
            out += await reader.readexactly(size)
            if len(out) > self.max_bytes:
                raise ValueError(f"reply exceeds {self.max_bytes} bytes")
            await reader.readexactly(2)


class _NoConnect(OSError):
    """The TCP connection could not be made."""


async def _decode(body: bytes, host: str, path: str) -> Any:
    return loads_tolerant(body, host=host, command=path) if body.strip() else None
