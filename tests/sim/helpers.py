"""Raw-socket and HTTP helpers for talking to emulated miners in tests."""

from __future__ import annotations

import asyncio
import json
from typing import Any

import httpx

BLOCK = 11  # this test area's loopback block: 127.11.x.y


async def api_raw(host: str, payload: bytes, port: int = 4028) -> bytes:
    """Send one request and read until the miner closes the socket."""
    reader, writer = await asyncio.open_connection(host, port)
    try:
        writer.write(payload)
        await writer.drain()
        return await asyncio.wait_for(reader.read(), 3.0)
    finally:
        writer.close()


async def api(host: str, command: str, parameter: str | None = None, port: int = 4028) -> Any:
    req: dict[str, Any] = {"command": command}
    if parameter is not None:
        req["parameter"] = parameter
    data = await api_raw(host, json.dumps(req).encode(), port)
    assert data.endswith(b"\x00")
    return json.loads(data[:-1])


def web_client() -> httpx.AsyncClient:
    return httpx.AsyncClient(auth=httpx.DigestAuth("root", "root"), timeout=5.0)


async def cgi(host: str, port: int, name: str, body: Any = None) -> Any:
    async with web_client() as client:
        url = f"http://{host}:{port}/cgi-bin/{name}.cgi"
        resp = await (client.post(url, json=body) if body is not None else client.get(url))
        assert resp.status_code == 200, resp.text
        return resp.json()
