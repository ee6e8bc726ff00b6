"""HTTP client for miners' web CGI (Antminer and kin): digest auth, timeouts, errors mapped to one tree."""

from __future__ import annotations

import json
from typing import TYPE_CHECKING, Any

import aiohttp

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

__all__ = ["WebClient"]


class WebClient:
    """One miner's web interface. Every error names the host and the path; the session opens lazily."""

    def __init__(
        self,
        host: str,
        port: int = 80,
        *,
        username: str,
        password: str,
        timeouts: Timeouts,
        max_bytes: int = 1 << 20,
    ) -> None:
        self.host = host
        self.port = port
        self.username = username
        self._password = password
        self.timeouts = timeouts
        self.max_bytes = max_bytes
        self._session: aiohttp.ClientSession | None = None
        self._base = f"http://{host}:{port}" if port != 80 else f"http://{host}"

    def __repr__(self) -> str:
        return f"WebClient({self._base!r}, username={self.username!r})"

    def _get_session(self) -> aiohttp.ClientSession:
        if self._session is None or self._session.closed:
            self._session = aiohttp.ClientSession(
                middlewares=(aiohttp.DigestAuthMiddleware(self.username, self._password),),
                connector=aiohttp.TCPConnector(limit=2, use_dns_cache=False),
                auto_decompress=True,
            )
        return self._session

    async def close(self) -> None:
        if self._session is not None:
            await self._session.close()
            self._session = None

    async def request(
        self, method: str, path: str, *, json_body: Any = None, timeout_s: float | None = None
    ) -> bytes:
        """Send one request and return the body of a 2xx reply; map every failure to a DeviceError."""
        timeout = aiohttp.ClientTimeout(
            total=timeout_s if timeout_s is not None else self.timeouts.read_s + self.timeouts.connect_s,
            sock_connect=self.timeouts.connect_s,
        )
        data = None if json_body is None else json.dumps(json_body, separators=(",", ":")).encode()
        headers = {"Content-Type": "application/json"} if data is not None else None
        where = {"host": self.host, "command": path}
        try:
            async with self._get_session().request(
                method, self._base + path, data=data, headers=headers, timeout=timeout, allow_redirects=False
            ) as resp:
                if resp.status == 401:
                    raise AuthError(f"authentication failed for user {self.username!r} (HTTP 401)", **where)
                if resp.status == 403:
                    raise AuthError("access forbidden (HTTP 403)", **where)
                if resp.status == 404:
                    raise InvalidCommandError("no such path on this firmware (HTTP 404)", code=404, **where)
                if resp.status >= 300:
                    raise CommandRejectedError(
                        f"HTTP {resp.status} {resp.reason or ''}".strip(), code=resp.status, **where
                    )
                body = await resp.content.read(self.max_bytes + 1)
                if len(body) > self.max_bytes:
                    raise MalformedReplyError(f"reply exceeds {self.max_bytes} bytes", **where)
                return body
        except TimeoutError:  # aiohttp's ServerTimeoutError is one too
            limit = timeout.total
            raise DeviceTimeoutError(f"no complete HTTP reply within {limit:g} s", **where) from None
        except aiohttp.ClientConnectorError as exc:
            reason = exc.os_error.strerror if exc.os_error and exc.os_error.strerror else str(exc)
            raise UnreachableError(f"cannot connect to port {self.port}: {reason}", **where) from None
        except aiohttp.ServerDisconnectedError:
            raise MalformedReplyError("connection closed before a complete HTTP reply", **where) from None
        except (aiohttp.ClientResponseError, aiohttp.ClientPayloadError) as exc:
            raise MalformedReplyError(
                f"invalid HTTP reply: {getattr(exc, 'message', exc)}", **where
            ) from None
        except aiohttp.ClientOSError as exc:
            raise UnreachableError(f"connection failed: {exc.strerror or exc}", **where) from None
        except aiohttp.ClientError as exc:
            raise UnreachableError(f"HTTP request failed: {exc}", **where) from None

    async def get_json(self, path: str, *, timeout_s: float | None = None) -> Any:
        body = await self.request("GET", path, timeout_s=timeout_s)
        return loads_tolerant(body, host=self.host, command=path)

    async def post_json(self, path: str, payload: Any, *, timeout_s: float | None = None) -> Any:
        body = await self.request("POST", path, json_body=payload, timeout_s=timeout_s)
        return loads_tolerant(body, host=self.host, command=path) if body.strip() else None
