"""A JSON-over-HTTP/1.1 connection for the emulated firmware REST APIs (Braiins OS, VNish).

The HTTP framing (keep-alive, Content-Length bodies, 100-continue, slow and dead faults) is the
Antminer web emulator's; requests go to `miner.rest(method, path, headers, body, now)`, which returns
(status, JSON value or None for an empty body). The malformed fault cuts every body in half.
"""

from __future__ import annotations

import asyncio
import json
import time
from email.utils import formatdate
from typing import Any, Protocol

from fleetd.sim.antminer_web import WebProtocol
from fleetd.sim.base import reply_override, wire

__all__ = ["REASONS", "JsonWebProtocol", "RestMiner", "json_body"]

REASONS = {
    200: "OK",
    204: "No Content",
    400: "Bad Request",
    401: "Unauthorized",
    403: "Forbidden",
    404: "Not Found",
    405: "Method Not Allowed",
    409: "Conflict",
    500: "Internal Server Error",
}


class RestMiner(Protocol):
    def rest(
        self, method: str, path: str, headers: dict[str, str], body: bytes, now: float
    ) -> tuple[int, Any]:
        """(HTTP status, JSON value to send, or None for an empty body)."""


class JsonWebProtocol(WebProtocol):
    """One HTTP/1.1 connection to a firmware's JSON API."""

    __slots__ = ()
    server = "nginx"

    def _handle(self, method: str, target: str, headers: dict[str, str], body: bytes, keep: bool) -> None:
        miner: Any = self.miner
        faults = miner.state.faults
        if faults.dead:
            self.busy = True  # swallow this and every later request
            return
        path = target.partition("?")[0]
        status, value = miner.rest(method, path, headers, body, time.time())
        text = "" if value is None else json.dumps(value, separators=(",", ":"))
        override = reply_override(faults, path) if status == 200 else None
        text = text if override is None else override
        if faults.malformed and text:
            text = text[: max(1, len(text) // 2)]
        self._send_json(status, text, keep, faults.slow_s)

    def _send_json(self, status: int, text: str, keep: bool, delay: float) -> None:
        body = wire(text)
        head = [f"HTTP/1.1 {status} {REASONS.get(status, 'OK')}", f"Server: {self.server}"]
        head += [f"Date: {formatdate(usegmt=True)}", f"Content-Length: {len(body)}"]
        if body:
            head.append("Content-Type: application/json")
        if not keep:
            head.append("Connection: close")
        data = ("\r\n".join(head) + "\r\n\r\n").encode() + body
        if delay > 0:
            self.busy = True
            asyncio.get_running_loop().call_later(delay, self._write, data, keep)
        else:
            self._write(data, keep)


def json_body(body: bytes) -> Any:
    """The request's JSON value, or None when it is empty or not JSON."""
    try:
        return json.loads(body) if body.strip() else None
    except ValueError:
        return None
