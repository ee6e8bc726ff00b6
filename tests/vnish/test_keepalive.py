"""The lean kept-alive HTTP client the VNish and Braiins OS drivers use, against small real servers."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator, Awaitable, Callable

import pytest
from fleetd.drivers.base import Timeouts

from fleetd.transport.errors import (
    AuthError,
    CommandRejectedError,
    DeviceTimeoutError,
    InvalidCommandError,
    MalformedReplyError,
    UnreachableError,
)
from fleetd.transport.keepalive import KeepAliveHTTP
from tests.conftest import loopback_host

BLOCK = 51
PORT = 8081
FAST = Timeouts(connect_s=0.5, read_s=0.5)
Reply = Callable[[bytes], bytes | None]  # request head -> raw reply (None: say nothing)


@pytest.fixture
async def serve() -> AsyncIterator[Callable[[Reply], Awaitable[tuple[str, list[int]]]]]:
    servers: list[asyncio.Server] = []

    async def _serve(reply: Reply, *, close_after: bool = False) -> tuple[str, list[int]]:
        host = loopback_host(BLOCK)
        connections: list[int] = []

        async def handle(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
            connections.append(1)
            try:
                while True:
                    head = await reader.readuntil(b"\r\n\r\n")
                    length = next(
                        (
                            int(li.split(b":")[1])
                            for li in head.split(b"\r\n")
                            if li.lower().startswith(b"content-length")
                        ),
                        0,
                    )
                    body = await reader.readexactly(length)
                    out = reply(head + body)
                    if out is None:
                        await asyncio.sleep(5)
                        return
                    writer.write(out)
                    await writer.drain()
                    if close_after:
                        break
            except (asyncio.IncompleteReadError, ConnectionError):
                pass
            finally:
                writer.close()

        servers.append(await asyncio.start_server(handle, host, PORT))
        return host, connections

    yield _serve  # type: ignore[misc]
    for srv in servers:
        srv.close()


def _ok(body: bytes, extra: str = "") -> bytes:
    return f"HTTP/1.1 200 OK\r\nContent-Length: {len(body)}\r\n{extra}\r\n".encode() + body


async def test_keeps_one_connection_and_sends_json(serve) -> None:
    seen: list[bytes] = []
    host, conns = await serve(lambda req: seen.append(req) or _ok(b'{"a":1}'))
    http = KeepAliveHTTP(host, PORT, timeouts=FAST)
    try:
        assert await http.get_json("/x") == {"a": 1}
        assert await http.post_json("/y", {"pw": "admin"}) == {"a": 1}
        assert len(conns) == 1
        assert seen[1].startswith(b"POST /y HTTP/1.1\r\n") and seen[1].endswith(b'{"pw":"admin"}')
    finally:
        await http.close()


async def test_chunked_and_empty_bodies(serve) -> None:
    chunked = b'HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n4\r\n{"b"\r\n3\r\n:2}\r\n0\r\n\r\n'
    replies = iter([chunked, _ok(b"")])
    host, _ = await serve(lambda req: next(replies))
    http = KeepAliveHTTP(host, PORT, timeouts=FAST)
    try:
        assert await http.get_json("/c") == {"b": 2}
        assert await http.post_json("/pause", None) is None
    finally:
        await http.close()


async def test_reopens_a_connection_the_server_closed(serve) -> None:
    host, conns = await serve(lambda req: _ok(b"[]"), close_after=True)
    http = KeepAliveHTTP(host, PORT, timeouts=FAST)
    try:
        for _ in range(3):
            assert await http.get_json("/x") == []
        assert len(conns) == 3
    finally:
        await http.close()


@pytest.mark.parametrize(
    ("status", "error"),
    [(401, AuthError), (403, AuthError), (404, InvalidCommandError), (500, CommandRejectedError)],
)
async def test_status_codes_map_to_the_error_tree(serve, status: int, error: type) -> None:
    host, _ = await serve(lambda req: f"HTTP/1.1 {status} X\r\nContent-Length: 2\r\n\r\n{{}}".encode())
    http = KeepAliveHTTP(host, PORT, timeouts=FAST)
    try:
        with pytest.raises(error) as info:
            await http.request("GET", "/p")
        assert info.value.host == host
    finally:
        await http.close()


async def test_garbage_silence_and_nobody(serve) -> None:
    host, _ = await serve(lambda req: b"SSH-2.0-dropbear\r\n\r\n")
    http = KeepAliveHTTP(host, PORT, timeouts=FAST)
    with pytest.raises(MalformedReplyError, match="not an HTTP status line"):
        await http.request("GET", "/p")
    await http.close()
    host, _ = await serve(lambda req: None)
    http = KeepAliveHTTP(host, PORT, timeouts=FAST)
    with pytest.raises(DeviceTimeoutError):
        await http.request("GET", "/p")
    await http.close()
    with pytest.raises(UnreachableError, match="cannot connect to port"):
        await KeepAliveHTTP(loopback_host(BLOCK), PORT, timeouts=FAST).request("GET", "/p")
