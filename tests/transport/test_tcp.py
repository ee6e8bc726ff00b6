"""tcp_exchange against raw loopback servers sending exact bytes."""

from __future__ import annotations

import asyncio
import socket
import time

import pytest
from fleetd.drivers.base import Timeouts
from rawserver import fresh_host, raw_server, read_request, replying

from fleetd.transport.errors import DeviceTimeoutError, MalformedReplyError, UnreachableError
from fleetd.transport.tcp import tcp_exchange

FAST = Timeouts(connect_s=0.5, read_s=0.5)


async def test_reply_ends_at_nul_even_if_socket_stays_open() -> None:
    async with raw_server(replying(b'{"a":', b"1}\0", keep_open=True)) as (host, _):
        t0 = time.monotonic()
        reply = await tcp_exchange(host, 4028, b'{"command":"summary"}', command="summary", timeouts=FAST)
    assert reply == b'{"a":1}'
    assert time.monotonic() - t0 < 0.4


async def test_payload_arrives_exactly() -> None:
    seen: list[bytes] = []

    async def handler(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        await read_request(reader, seen)
        writer.write(b"{}\0")

    async with raw_server(handler) as (host, _):
        await tcp_exchange(host, 4028, b"summary|", command="summary", timeouts=FAST)
    assert seen == [b"summary|"]


async def test_reply_without_nul_ends_at_eof() -> None:
    async with raw_server(replying(b'{"a":1', b"}")) as (host, _):
        assert await tcp_exchange(host, 4028, b"x", command="x", timeouts=FAST) == b'{"a":1}'


async def test_kept_open_without_nul_uses_completion_detector() -> None:
    async with raw_server(replying(b'{"a":[1,', b"2]}", keep_open=True, delay=0.01)) as (host, _):
        reply = await tcp_exchange(
            host, 4028, b"x", command="x", timeouts=FAST, complete=lambda b: b.endswith(b"}")
        )
    assert reply == b'{"a":[1,2]}'


async def test_kept_open_without_nul_or_detector_times_out() -> None:
    async with raw_server(replying(b'{"a":1}', keep_open=True)) as (host, _):
        with pytest.raises(DeviceTimeoutError) as err:
            await tcp_exchange(host, 4028, b"x", command="stats", timeouts=FAST)
    assert err.value.host == host and err.value.command == "stats"


async def test_slow_reply_times_out_overall() -> None:
    # Each chunk is within the read timeout but the whole reply is not.
    chunks = [b"{"] + [b" "] * 10 + [b"}\0"]
    async with raw_server(replying(*chunks, delay=0.1)) as (host, _):
        t0 = time.monotonic()
        with pytest.raises(DeviceTimeoutError, match=r"no complete reply within 0\.5 s"):
            await tcp_exchange(host, 4028, b"x", command="x", timeouts=FAST)
    assert time.monotonic() - t0 < 0.9


async def test_dead_socket_times_out() -> None:
    async def dead(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        await asyncio.sleep(10)

    async with raw_server(dead) as (host, _):
        with pytest.raises(DeviceTimeoutError):
            await tcp_exchange(host, 4028, b"x", command="x", timeouts=FAST)


async def test_refused_is_unreachable_naming_host_and_command() -> None:
    host = fresh_host()
    with pytest.raises(UnreachableError) as err:
        await tcp_exchange(host, 4028, b"x", command="version", timeouts=FAST)
    assert str(err.value) == f"{host} (version): cannot connect to port 4028: Connection refused"


def syn_dropping_listener(host: str) -> tuple[socket.socket, list[socket.socket]]:
    """A listener on a kernel-chosen free port whose accept queue is full, so it drops further SYNs.

    Port 0 rather than a fixed one: a fixed port can collide with a TIME_WAIT or an unaccepted
    connection that an earlier run (or a parallel one on the same address) left behind (EADDRINUSE).
    """
    lsock = socket.socket()
    lsock.bind((host, 0))
    lsock.listen(0)
    port = lsock.getsockname()[1]
    fillers = []
    for _ in range(4):
        s = socket.socket()
        s.setblocking(False)
        s.connect_ex((host, port))
        fillers.append(s)
    return lsock, fillers


async def test_connect_timeout() -> None:
    lsock, fillers = syn_dropping_listener(fresh_host())
    host, port = lsock.getsockname()
    try:
        await asyncio.sleep(0.05)
        with pytest.raises(DeviceTimeoutError, match=f"connect to port {port} timed out"):
            await tcp_exchange(host, port, b"x", command="x", timeouts=Timeouts(connect_s=0.2, read_s=0.2))
    finally:
        for s in fillers:
            s.close()
        lsock.close()


async def test_oversize_reply_is_malformed() -> None:
    async with raw_server(replying(b"{" + b" " * 5000, keep_open=True)) as (host, _):
        with pytest.raises(MalformedReplyError, match="exceeds 4096 bytes"):
            await tcp_exchange(host, 4028, b"x", command="x", timeouts=FAST, max_bytes=4096)


async def test_reset_before_reply_is_unreachable() -> None:
    async def reset(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        await read_request(reader)
        sock = writer.get_extra_info("socket")
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, b"\x01\x00\x00\x00\x00\x00\x00\x00")
        writer.transport.abort()

    async with raw_server(reset) as (host, _):
        with pytest.raises(UnreachableError, match="before any reply"):
            await tcp_exchange(host, 4028, b"x", command="x", timeouts=FAST)


async def test_close_without_reply_is_malformed() -> None:
    async with raw_server(replying()) as (host, _):
        with pytest.raises(MalformedReplyError, match="closed without a reply"):
            await tcp_exchange(host, 4028, b"x", command="x", timeouts=FAST)


async def test_socket_is_closed_after_reply() -> None:
    closed = asyncio.Event()

    async def handler(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        await read_request(reader)
        writer.write(b"{}\0")
        await reader.read()  # returns when the client closes its end
        closed.set()

    async with raw_server(handler) as (host, _):
        await tcp_exchange(host, 4028, b"x", command="x", timeouts=FAST)
        await asyncio.wait_for(closed.wait(), 1)


async def test_socket_is_closed_after_timeout() -> None:
    closed = asyncio.Event()

    async def handler(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        await read_request(reader)
        await reader.read()
        closed.set()

    async with raw_server(handler) as (host, _):
        with pytest.raises(DeviceTimeoutError):
            await tcp_exchange(host, 4028, b"x", command="x", timeouts=Timeouts(connect_s=0.5, read_s=0.1))
        await asyncio.wait_for(closed.wait(), 1)


async def test_binary_framing_without_terminator() -> None:
    body = b"\x05\x00\x00\x00hello"
    async with raw_server(replying(body, keep_open=True)) as (host, _):
        reply = await tcp_exchange(
            host,
            4028,
            b"x",
            command="x",
            timeouts=FAST,
            terminator=None,
            complete=lambda b: len(b) >= 4 and len(b) >= 4 + int.from_bytes(b[:4], "little"),
        )
    assert reply == body
