"""Tiny raw TCP servers on loopback that send exact bytes, for transport tests."""

from __future__ import annotations

import asyncio
import contextlib
import itertools
import os
from collections.abc import AsyncIterator, Awaitable, Callable

BLOCK = 10  # this test area's loopback block: 127.10.x.y
# Two pytest processes (a full run and a focused one) may run these tests at once: give each
# process its own third octet so their servers never share an address.
_OCTET = 1 + os.getpid() % 100  # 1..100; the driver tests use 101..150, the benchmark 160+
_numbers = itertools.count()


def fresh_host() -> str:
    """A new 127.10.<per-process>.y address."""
    n = next(_numbers) % 254 + 1
    return f"127.{BLOCK}.{_OCTET}.{n}"


Handler = Callable[[asyncio.StreamReader, asyncio.StreamWriter], Awaitable[None]]


@contextlib.asynccontextmanager
async def raw_server(handler: Handler, port: int = 4028) -> AsyncIterator[tuple[str, list[bytes]]]:
    """Serve `handler` on a fresh 127.10.x.y; yields (host, list of first requests received)."""
    host = fresh_host()
    requests: list[bytes] = []
    tasks: set[asyncio.Task[None]] = set()

    async def wrapped(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        task = asyncio.current_task()
        assert task is not None
        tasks.add(task)
        try:
            await handler(reader, writer)
        except (ConnectionError, asyncio.CancelledError):
            pass
        finally:
            writer.close()
            tasks.discard(task)

    server = await asyncio.start_server(wrapped, host, port)
    server.requests = requests  # type: ignore[attr-defined]
    try:
        yield host, requests
    finally:
        server.close()
        for t in list(tasks):
            t.cancel()
        await asyncio.sleep(0)


async def read_request(reader: asyncio.StreamReader, requests: list[bytes] | None = None) -> bytes:
    """Read one client request (whatever arrives first)."""
    data = await asyncio.wait_for(reader.read(65536), 5)
    if requests is not None:
        requests.append(data)
    return data


def replying(*chunks: bytes, delay: float = 0.0, keep_open: bool = False) -> Handler:
    """A handler that reads the request, then sends `chunks` (with `delay` before each)."""

    async def handler(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        await read_request(reader)
        for chunk in chunks:
            if delay:
                await asyncio.sleep(delay)
            writer.write(chunk)
            await writer.drain()
        if keep_open:
            await reader.read()  # until the client closes

    return handler
