"""Local HTTP servers on the economics loopback block (127.19.x.y), serving the real formats."""

from __future__ import annotations

import io
import json
import zipfile
from collections.abc import AsyncIterator, Awaitable, Callable

import pytest
from aiohttp import web

from tests.conftest import loopback_host

BLOCK = 19

Handler = Callable[[web.Request], Awaitable[web.StreamResponse]]


class Server:
    """An aiohttp app on a fresh loopback address and an ephemeral port; records the requests it saw."""

    def __init__(self) -> None:
        self.app = web.Application()
        self.requests: list[web.Request] = []
        self.runner: web.AppRunner | None = None
        self.url = ""

    def route(self, path: str, handler: Handler) -> None:
        async def logged(request: web.Request) -> web.StreamResponse:
            self.requests.append(request)
            return await handler(request)

        self.app.router.add_get(path, logged)

    def hits(self, path: str) -> int:
        return sum(1 for r in self.requests if r.path == path)

    async def start(self) -> str:
        self.runner = web.AppRunner(self.app)
        await self.runner.setup()
        host = loopback_host(BLOCK)
        site = web.TCPSite(self.runner, host, 0)
        await site.start()
        port = site._server.sockets[0].getsockname()[1]  # type: ignore[union-attr]
        self.url = f"http://{host}:{port}"
        return self.url

    async def stop(self) -> None:
        if self.runner is not None:
            await self.runner.cleanup()


@pytest.fixture
async def server() -> AsyncIterator[Server]:
    s = Server()
    yield s
    await s.stop()


def json_reply(data: object, status: int = 200) -> Handler:
    async def handler(request: web.Request) -> web.Response:
        return web.Response(text=json.dumps(data), status=status, content_type="application/json")

    return handler


def text_reply(text: str, status: int = 200, content_type: str = "text/plain") -> Handler:
    async def handler(request: web.Request) -> web.Response:
        return web.Response(text=text, status=status, content_type=content_type)

    return handler


def zipped(name: str, text: str) -> bytes:
    buf = io.BytesIO()
    with zipfile.ZipFile(buf, "w", zipfile.ZIP_DEFLATED) as zf:
        zf.writestr(name, text)
    return buf.getvalue()
