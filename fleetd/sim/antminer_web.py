"""Antminer web server (lighttpd on 80): the HTTP/1.1 connection, digest auth, stock error pages."""

from __future__ import annotations

import asyncio
import hashlib
import hmac
import os
import re
import time
from email.utils import formatdate
from typing import TYPE_CHECKING

from fleetd.sim.base import wire
from fleetd.sim.server import MAX_REQUEST, Connection

if TYPE_CHECKING:
    from fleetd.sim.antminer import AntminerMiner

REALM = "antMiner Configuration"
_CHALLENGE = f'Digest realm="{REALM}", charset="UTF-8", algorithm=MD5'
DEFAULT_USER = "root"
# lighttpd's defaults: a request may take 60 s to arrive (max-read-idle); a kept-alive connection
# idle for 5 s after a response is closed (max-keep-alive-idle), so clients must not reuse it later.
WEB_READ_IDLE_S = 60.0
WEB_KEEP_ALIVE_IDLE_S = 5.0

_NONCE_KEY = os.urandom(16)


def _md5(text: str) -> str:
    return hashlib.md5(text.encode()).hexdigest()


_AUTH_RE = re.compile(r'(\w+)\s*=\s*(?:(")([^"]*)"|([^,\s]*))')


def _auth_fields(text: str) -> dict[str, str]:
    return {
        m.group(1).lower(): m.group(3) if m.group(2) else (m.group(4) or "") for m in _AUTH_RE.finditer(text)
    }


def _nonce_tail(ts: str) -> str:
    return hmac.new(_NONCE_KEY, ts.encode(), "sha256").hexdigest()[:32]


def make_nonce(now: float | None = None) -> str:
    """A digest nonce in lighttpd's `time:hash` form that this process recognises later (stateless)."""
    ts = f"{int(time.time() if now is None else now):08x}"
    return f"{ts}:{_nonce_tail(ts)}"


def _nonce_ok(nonce: str) -> bool:
    ts, _, tail = nonce.partition(":")
    return len(ts) == 8 and hmac.compare_digest(tail, _nonce_tail(ts))


_INDEX_HTML = (
    '<!DOCTYPE html><html><head><meta charset="utf-8"><title>Antminer</title></head>'
    '<body><div id="app"></div></body></html>\n'
)


def _lighttpd_page(status: int) -> str:
    """lighttpd's stock error page (a real S19j Pro's 401 body is exactly this, 347 bytes)."""
    title = f"{status} {_REASONS[status]}"
    return (
        '<?xml version="1.0" encoding="iso-8859-1"?>\n'
        '<!DOCTYPE html PUBLIC "-//W3C//DTD XHTML 1.0 Transitional//EN"\n'
        '         "http://www.w3.org/TR/xhtml1/DTD/xhtml1-transitional.dtd">\n'
        '<html xmlns="http://www.w3.org/1999/xhtml" xml:lang="en" lang="en">\n'
        f" <head>\n  <title>{title}</title>\n </head>\n <body>\n  <h1>{title}</h1>\n </body>\n</html>\n"
    )


_REASONS = {200: "OK", 400: "Bad Request", 401: "Unauthorized", 404: "Not Found", 405: "Method Not Allowed"}
_PAGES = {status: _lighttpd_page(status) for status in _REASONS if status != 200}


class WebProtocol(Connection):
    """One HTTP/1.1 connection to the web CGI (keep-alive, Content-Length bodies, digest auth)."""

    __slots__ = ("buf", "busy", "continued")
    idle_s = WEB_READ_IDLE_S
    miner: AntminerMiner

    def __init__(self, miner: AntminerMiner) -> None:
        super().__init__(miner)
        self.buf = bytearray()
        self.busy = False
        self.continued = False

    def eof_received(self) -> bool:
        return self.busy  # a delayed response is still to be written

    def data_received(self, data: bytes) -> None:
        self.buf += data
        if len(self.buf) > MAX_REQUEST:
            self._close()
            return
        self._touch()
        self._process()

    def _process(self) -> None:
        while not self.busy and self.transport is not None:
            end = self.buf.find(b"\r\n\r\n")
            if end < 0:
                return
            head = bytes(self.buf[:end]).decode("latin-1")
            lines = head.split("\r\n")
            parts = lines[0].split()
            headers: dict[str, str] = {}
            for line in lines[1:]:
                name, _, value = line.partition(":")
                headers[name.strip().lower()] = value.strip()
            try:
                length = int(headers.get("content-length", "0"))
            except ValueError:
                length = -1
            if len(parts) != 3 or length < 0 or "chunked" in headers.get("transfer-encoding", ""):
                self._send(400, _PAGES[400], False, 0.0)
                return
            if len(self.buf) < end + 4 + length:
                if headers.get("expect", "").lower() == "100-continue" and not self.continued:
                    self.continued = True  # curl waits for this before sending a body
                    self.transport.write(b"HTTP/1.1 100 Continue\r\n\r\n")
                return
            self.continued = False
            body = bytes(self.buf[end + 4 : end + 4 + length])
            del self.buf[: end + 4 + length]
            method, target, version = parts
            if target.startswith(("http://", "https://")):  # absolute-form (proxies)
                target = "/" + target.split("://", 1)[1].partition("/")[2]
            keep = headers.get("connection", "").lower() != "close" and version == "HTTP/1.1"
            self._handle(method, target, headers, body, keep)

    def _handle(self, method: str, target: str, headers: dict[str, str], body: bytes, keep: bool) -> None:
        miner = self.miner
        faults = miner.state.faults
        if faults.dead:
            self.busy = True  # swallow this and every later request
            return
        if not miner.authorized(method, headers.get("authorization")):
            challenge = f'{_CHALLENGE}, nonce="{make_nonce()}", qop="auth"'
            self._send(401, _PAGES[401], keep, faults.slow_s, [("WWW-Authenticate", challenge)])
            return
        if method not in ("GET", "POST"):
            self._send(405, _PAGES[405], keep, faults.slow_s)
            return
        status, text, delay = miner.web(method, target, body)
        ctype = "text/html"
        self._send(status, text, keep, faults.slow_s + delay, content_type=ctype)

    def _send(
        self,
        status: int,
        text: str,
        keep: bool,
        delay: float,
        extra: list[tuple[str, str]] | None = None,
        content_type: str = "text/html",
    ) -> None:
        body = wire(text)
        # Header names and order as a real S19j Pro's lighttpd sends them.
        head = [f"HTTP/1.1 {status} {_REASONS.get(status, 'OK')}"]
        head.extend(f"{k}: {v}" for k, v in extra or ())
        head += [
            f"Content-Type: {content_type}",
            f"Content-Length: {len(body)}",
            f"Date: {formatdate(usegmt=True)}",
            "Server: lighttpd/1.4.69",
        ]
        if not keep:
            head.append("Connection: close")
        data = ("\r\n".join(head) + "\r\n\r\n").encode() + body
        if delay > 0:
            self.busy = True
            asyncio.get_running_loop().call_later(delay, self._write, data, keep)
        else:
            self._write(data, keep)

    def _write(self, data: bytes, keep: bool) -> None:
        self.busy = False
        if self.transport is None or self.transport.is_closing():
            return
        self.transport.write(data)
        if not keep:
            self.transport.close()
            return
        self._process()
        if not self.busy and not self.buf:
            self._touch(WEB_KEEP_ALIVE_IDLE_S)
