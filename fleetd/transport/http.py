"""HTTP client for miners' web CGI (Antminer and kin): digest auth over the lean kept-alive client.

A fleet-wide command sends thousands of these at once, so it rides on `KeepAliveHTTP` (one connection,
no session machinery) rather than a general-purpose client. A digest challenge is remembered per (host,
port, user) for `CHALLENGE_REUSE_S`, so that the next operation on a miner (a sleep after the daemon's
last configuration read) authenticates in its first request instead of after a 401; a nonce the server
no longer takes costs that one 401 and is replaced.
"""

from __future__ import annotations

import asyncio
import hashlib
import os
import re
import time
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

from fleetd.transport.errors import AuthError, DeviceTimeoutError
from fleetd.transport.jsonfix import loads_tolerant
from fleetd.transport.keepalive import KeepAliveHTTP, Reply

if TYPE_CHECKING:
    from fleetd.transport.timeouts import Timeouts

__all__ = ["WebClient", "parse_challenge"]

CHALLENGE_REUSE_S = 540.0  # lighttpd (mod_auth) calls a digest nonce stale 600 s after it issued it
_PARAM = re.compile(r'(\w+)\s*=\s*(?:"((?:[^"\\]|\\.)*)"|([^\s,]+))')
_HASHES = {
    "MD5": hashlib.md5,
    "MD5-SESS": hashlib.md5,
    "SHA-256": hashlib.sha256,
    "SHA-256-SESS": hashlib.sha256,
}


@dataclass(slots=True)
class Challenge:
    """A server's digest challenge and the count of answers to it (shared by a host's clients)."""

    realm: str
    nonce: str
    algorithm: str
    qop: str  # "auth", or "" for RFC 2069 servers
    opaque: str | None
    issued: float = field(default_factory=time.monotonic)
    nc: int = 0

    def authorization(self, username: str, password: str, method: str, uri: str) -> str:
        """The Authorization header answering this challenge for one request (RFC 7616)."""
        h = _HASHES[self.algorithm]

        def hx(text: str) -> str:
            return h(text.encode()).hexdigest()

        self.nc += 1
        nc, cnonce = f"{self.nc:08x}", os.urandom(8).hex()
        ha1 = hx(f"{username}:{self.realm}:{password}")
        if self.algorithm.endswith("-SESS"):
            ha1 = hx(f"{ha1}:{self.nonce}:{cnonce}")
        ha2 = hx(f"{method}:{uri}")
        parts = [
            f'username="{username}"',
            f'realm="{self.realm}"',
            f'nonce="{self.nonce}"',
            f'uri="{uri}"',
            f"algorithm={self.algorithm}",
        ]
        if self.qop:
            parts.append(f'response="{hx(f"{ha1}:{self.nonce}:{nc}:{cnonce}:{self.qop}:{ha2}")}"')
            parts += [f"qop={self.qop}", f"nc={nc}", f'cnonce="{cnonce}"']
        else:
            parts.append(f'response="{hx(f"{ha1}:{self.nonce}:{ha2}")}"')
        if self.opaque is not None:
            parts.append(f'opaque="{self.opaque}"')
        return "Digest " + ", ".join(parts)


def parse_challenge(header: str) -> Challenge | None:
    """Pure: the digest challenge in a WWW-Authenticate value, or None (another scheme, or unsupported)."""
    scheme, _, rest = header.strip().partition(" ")
    if scheme.lower() != "digest":
        return None
    params = {
        m.group(1).lower(): m.group(2) if m.group(2) is not None else m.group(3)
        for m in _PARAM.finditer(rest)
    }
    algorithm = (params.get("algorithm") or "MD5").upper()
    if "nonce" not in params or algorithm not in _HASHES:
        return None
    qops = [q.strip().lower() for q in (params.get("qop") or "").split(",")]
    if params.get("qop") and "auth" not in qops:
        return None  # auth-int only
    return Challenge(
        realm=params.get("realm") or "",
        nonce=params["nonce"],
        algorithm=algorithm,
        qop="auth" if "auth" in qops else "",
        opaque=params.get("opaque"),
    )


# The last challenge per (host, port, username): a process talks to each miner as one client.
_CHALLENGES: dict[tuple[str, int, str], Challenge] = {}


class WebClient:
    """One miner's web interface (digest auth, one kept-alive connection); errors name host and path."""

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
        self._http = KeepAliveHTTP(host, port, timeouts=timeouts, max_bytes=max_bytes)

    def __repr__(self) -> str:
        where = self.host if self.port == 80 else f"{self.host}:{self.port}"
        return f"WebClient({where!r}, username={self.username!r})"

    async def close(self) -> None:
        await self._http.close()

    async def request(
        self, method: str, path: str, *, json_body: Any = None, timeout_s: float | None = None
    ) -> bytes:
        """Send one request and return the body of a 2xx reply; map every failure to a DeviceError."""
        total = timeout_s if timeout_s is not None else self.timeouts.read_s + self.timeouts.connect_s
        try:
            async with asyncio.timeout(total):
                reply = await self._authenticated(method, path, json_body, total)
        except TimeoutError:
            await self.close()
            raise DeviceTimeoutError(
                f"no complete HTTP reply within {total:g} s", host=self.host, command=path
            ) from None
        if reply.status == 401:
            raise AuthError(
                f"authentication failed for user {self.username!r} (HTTP 401)", host=self.host, command=path
            )
        return reply.checked(self.host, path)

    async def get_json(self, path: str, *, timeout_s: float | None = None) -> Any:
        body = await self.request("GET", path, timeout_s=timeout_s)
        return loads_tolerant(body, host=self.host, command=path)

    async def post_json(self, path: str, payload: Any, *, timeout_s: float | None = None) -> Any:
        body = await self.request("POST", path, json_body=payload, timeout_s=timeout_s)
        return loads_tolerant(body, host=self.host, command=path) if body.strip() else None

    async def _authenticated(self, method: str, path: str, json_body: Any, limit_s: float) -> Reply:
        """The reply, after answering the server's digest challenge once (a first one, or a new nonce)."""
        key = (self.host, self.port, self.username)
        known = _CHALLENGES.get(key)
        if known is not None and time.monotonic() - known.issued > CHALLENGE_REUSE_S:
            known = None
        reply = await self._send(method, path, json_body, known, limit_s)
        if reply.status != 401:
            return reply
        fresh = parse_challenge(reply.headers.get("www-authenticate", ""))
        if fresh is None or (known is not None and fresh.nonce == known.nonce):
            _CHALLENGES.pop(key, None)
            return reply  # not digest, or our answer to this very nonce was refused: a wrong login
        _CHALLENGES[key] = fresh
        reply = await self._send(method, path, json_body, fresh, limit_s)
        if reply.status == 401:
            _CHALLENGES.pop(key, None)
        return reply

    async def _send(
        self, method: str, path: str, json_body: Any, challenge: Challenge | None, limit_s: float
    ) -> Reply:
        headers = None
        if challenge is not None:
            auth = challenge.authorization(self.username, self._password, method, path)
            headers = {"Authorization": auth}
        # The caller's limit, not the client's default: a miner may take many seconds to acknowledge
        # a configuration change (the request's overall limit still applies).
        return await self._http.exchange(
            method, path, json_body=json_body, headers=headers, timeout_s=limit_s
        )
