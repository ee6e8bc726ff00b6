"""Whatsminer btminer API v3 (TCP 4433, firmware from 2024-11): length-prefixed JSON and per-command tokens.

Each message, both ways, is a 4-byte little-endian length then that many bytes of JSON. Reads are
`{"cmd": ..., "param": ...}`; `set.*` commands add `ts` (unix time), `account` and `token`: the
first 8 characters of base64(SHA-256(cmd + password + salt + ts)), salt from `get.device.info`.
Replies are `{"code": 0, "msg": ..., "desc": cmd, "when": ts}`; a non-zero code is an error.
"""

from __future__ import annotations

import base64
import hashlib
import json
import struct
import time
from typing import TYPE_CHECKING, Any

from fleetd.transport.btminer import WrongPasswordError
from fleetd.transport.errors import (
    AccessDeniedError,
    AuthError,
    CommandRejectedError,
    InvalidCommandError,
    MalformedReplyError,
)
from fleetd.transport.jsonfix import loads_tolerant
from fleetd.transport.tcp import tcp_exchange

if TYPE_CHECKING:
    from fleetd.transport.timeouts import Timeouts

__all__ = ["DEFAULT_ACCOUNT", "DEFAULT_PASSWORD", "BtminerV3", "frame", "v3_token", "whole_frame"]

DEFAULT_ACCOUNT = "super"
DEFAULT_PASSWORD = "super"
MAX_FRAME = 1 << 20


def frame(obj: dict[str, Any]) -> bytes:
    body = json.dumps(obj, separators=(",", ":")).encode()
    return struct.pack("<I", len(body)) + body


def whole_frame(buf: bytes | bytearray) -> bool:
    """True once `buf` holds a length prefix and the whole body it announces."""
    return len(buf) >= 4 and len(buf) >= 4 + struct.unpack_from("<I", buf)[0]


def unframe(buf: bytes, *, host: str, command: str) -> bytes:
    if len(buf) < 4:
        raise MalformedReplyError("reply shorter than its 4-byte length prefix", host=host, command=command)
    (n,) = struct.unpack_from("<I", buf)
    if n > MAX_FRAME or len(buf) < 4 + n:
        raise MalformedReplyError(
            f"reply announces {n} bytes but carries {len(buf) - 4}", host=host, command=command
        )
    return buf[4 : 4 + n]


def v3_token(command: str, password: str, salt: str, ts: int) -> str:
    digest = hashlib.sha256(f"{command}{password}{salt}{ts}".encode()).digest()
    return base64.b64encode(digest).decode()[:8]


def check_v3(reply: Any, *, host: str, command: str) -> dict[str, Any]:
    if not isinstance(reply, dict) or "code" not in reply:
        raise MalformedReplyError("not a btminer v3 reply (no code)", host=host, command=command)
    try:
        code = int(reply["code"])
    except (TypeError, ValueError):
        raise MalformedReplyError(f"non-numeric code {reply['code']!r}", host=host, command=command) from None
    if code == 0:
        return reply
    msg = reply.get("msg")
    text = msg if isinstance(msg, str) else json.dumps(msg)
    low = text.lower()
    if "permission" in low or "disable" in low:
        raise AccessDeniedError(
            f"{text}: API write access is disabled on this miner; enable it in WhatsMinerTool (change the "
            "default admin password, then turn on API write access), then retry",
            host=host,
            command=command,
            code=code,
        )
    if "expired" in low or "ts" in low.split():
        raise AuthError(
            f"{text}: timestamp refused; check this host's clock against the miner's",
            host=host,
            command=command,
        )
    if any(w in low for w in ("token", "password", "account", "auth")):
        raise WrongPasswordError(
            f"{text}: give fleetd the miner's API v3 account and password (--user/--password or "
            "FLEETD_MINER_USER/FLEETD_MINER_PASSWORD; the daemon: the miner's [credentials] in the config); "
            "the factory account is 'super'",
            host=host,
            command=command,
        )
    if "invalid" in low and ("cmd" in low or "command" in low):
        raise InvalidCommandError(
            f"command not supported by this firmware ({text})", host=host, command=command, code=code
        )
    raise CommandRejectedError(f"miner answered code {code}: {text}", host=host, command=command, code=code)


class BtminerV3:
    """One miner's btminer v3 API."""

    __slots__ = ("account", "host", "password", "port", "salt", "timeouts")

    def __init__(
        self,
        host: str,
        port: int,
        timeouts: Timeouts,
        *,
        account: str | None = None,
        password: str | None = None,
    ) -> None:
        self.host = host
        self.port = port
        self.timeouts = timeouts
        self.account = account or DEFAULT_ACCOUNT
        self.password = password or DEFAULT_PASSWORD
        self.salt: str | None = None

    async def raw(self, command: str, param: Any = None, **extra: Any) -> Any:
        req: dict[str, Any] = {"cmd": command}
        if param is not None:
            req["param"] = param
        req.update(extra)
        buf = await tcp_exchange(
            self.host,
            self.port,
            frame(req),
            command=command,
            timeouts=self.timeouts,
            max_bytes=MAX_FRAME + 4,
            complete=whole_frame,
            terminator=None,
        )
        return loads_tolerant(unframe(buf, host=self.host, command=command), host=self.host, command=command)

    async def get(self, command: str, param: Any = None) -> dict[str, Any]:
        return check_v3(await self.raw(command, param), host=self.host, command=command)

    async def _salt(self) -> str:
        if self.salt is None:
            info = await self.get("get.device.info", "salt")
            msg = info.get("msg")
            if not isinstance(msg, dict) or not isinstance(msg.get("salt"), str):
                raise MalformedReplyError(
                    "get.device.info lacks the salt", host=self.host, command="get.device.info"
                )
            self.salt = msg["salt"]
        return self.salt

    async def set(self, command: str, param: Any = None) -> dict[str, Any]:
        """A privileged `set.*` command with its per-command token."""
        cached = self.salt is not None
        try:
            return await self._set_once(command, param)
        except WrongPasswordError:
            if not cached:
                raise
        self.salt = None  # the miner may have a new salt since we read it (password changed)
        return await self._set_once(command, param)

    async def _set_once(self, command: str, param: Any) -> dict[str, Any]:
        salt = await self._salt()
        ts = int(time.time())
        token = v3_token(command, self.password, salt, ts)
        reply = await self.raw(command, param, ts=ts, account=self.account, token=token)
        return check_v3(reply, host=self.host, command=command)
