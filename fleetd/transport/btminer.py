"""Whatsminer btminer API v2 (TCP 4028): plain JSON reads and the encrypted privileged envelope.

Privileged commands need a token: `get_token` gives (time, salt, newsalt); the key is the
MD5-crypt hash of the admin password under `salt`, the sign the MD5-crypt hash of key+time under
`newsalt`. The command JSON, with `"token": sign`, is NUL-padded to 16 bytes, AES-256-ECB
encrypted under SHA-256(key), base64-encoded and sent as `{"enc": 1, "data": ...}`; the miner
answers `{"enc": "<base64>"}` under the same key. A miner keeps a token 30 minutes and gives one
client at most 32 of them in that time.
"""

from __future__ import annotations

import base64
import functools
import hashlib
import json
import re
import time
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from cryptography.hazmat.primitives.ciphers import Cipher, algorithms, modes

from fleetd.transport.errors import (
    AccessDeniedError,
    AuthError,
    CommandRejectedError,
    InvalidCommandError,
    MalformedReplyError,
)
from fleetd.transport.jsonfix import loads_tolerant
from fleetd.transport.md5crypt import md5_crypt_hash
from fleetd.transport.tcp import tcp_exchange

if TYPE_CHECKING:
    from fleetd.transport.timeouts import Timeouts

__all__ = [
    "DEFAULT_PASSWORD",
    "TOKEN_TTL_S",
    "BtminerV2",
    "TokenLimitError",
    "TokenRefusedError",
    "WrongPasswordError",
    "aes_key",
    "check_status",
    "decrypt",
    "derive_token",
    "encrypt",
    "envelope",
    "forget_tokens",
    "password_key",
]

DEFAULT_PASSWORD = "admin"
TOKEN_TTL_S = 30 * 60
# Renew a little before the miner's own expiry so a token never dies between check and use.
_REUSE_S = TOKEN_TTL_S - 60

CODE_INVALID_COMMAND = 14
CODE_INVALID_JSON = 23
CODE_PERMISSION_DENIED = 45
CODE_OK = 131
CODE_ERROR = 132
CODE_TOKEN_OK = 134
CODE_TOKEN_ERROR = 135
CODE_TOKEN_LIMIT = 136
CODE_BASE64_ERROR = 137

WRITE_DISABLED_HINT = (
    "API write access is disabled on this miner; enable it in WhatsMinerTool (change the default admin "
    "password, then turn on the API for this miner) or in the miner's web UI, then retry"
)
PASSWORD_HINT = (
    "give fleetd the miner's admin password (--password or FLEETD_MINER_PASSWORD; the daemon: the "
    "miner's [credentials] in the config); Whatsminer's factory default is 'admin'"
)


class WrongPasswordError(AuthError):
    """The miner could not use what we derived from the configured admin password."""


class TokenLimitError(AuthError):
    """The miner has issued this client its maximum number of live tokens."""


class TokenRefusedError(AuthError):
    """The miner rejected a token (expired or unknown)."""


# --- pure crypto ---------------------------------------------------------------------------------
@functools.lru_cache(maxsize=65536)
def password_key(password: str, salt: str) -> str:
    """md5crypt(password, salt): the salt is the miner's stored password hash's, fixed per miner,
    so the result is remembered."""
    return md5_crypt_hash(password, salt)


def derive_token(password: str, salt: str, newsalt: str, when: str) -> tuple[str, str]:
    """(key, sign) from a get_token reply: md5crypt(password, salt), md5crypt(key + time, newsalt)."""
    key = password_key(password, salt)
    sign = md5_crypt_hash(key + when, newsalt)
    return key, sign


def aes_key(key: str) -> bytes:
    """The AES-256 key: SHA-256 of the derived password hash."""
    return hashlib.sha256(key.encode()).digest()


def encrypt(plaintext: bytes, key: bytes) -> str:
    """AES-256-ECB over `plaintext` NUL-padded to 16 bytes, base64 without line breaks."""
    padded = plaintext + b"\0" * (-len(plaintext) % 16)
    enc = Cipher(algorithms.AES(key), modes.ECB()).encryptor()
    return base64.b64encode(enc.update(padded) + enc.finalize()).decode()


def decrypt(data: str, key: bytes) -> bytes:
    """Inverse of `encrypt`; trailing NULs stripped. ValueError on bad base64 or block size."""
    raw = base64.b64decode(data, validate=False)
    if not raw or len(raw) % 16:
        raise ValueError("ciphertext is not a whole number of AES blocks")
    dec = Cipher(algorithms.AES(key), modes.ECB()).decryptor()
    return (dec.update(raw) + dec.finalize()).rstrip(b"\0")


def envelope(command: dict[str, Any], key: bytes) -> bytes:
    """The request bytes for a privileged command (which already carries its "token")."""
    body = json.dumps(command, separators=(",", ":")).encode()
    return json.dumps({"enc": 1, "data": encrypt(body, key)}).encode()


def status_of(reply: Any) -> tuple[str, int | None, Any]:
    """(STATUS letter, Code, Msg) of a btminer reply in either the flat or the CGMiner shape."""
    if not isinstance(reply, dict):
        return "", None, None
    st = reply.get("STATUS")
    if isinstance(st, list) and st and isinstance(st[0], dict):
        head = st[0]
        return str(head.get("STATUS", "")), _int(head.get("Code")), head.get("Msg")
    return str(st or ""), _int(reply.get("Code")), reply.get("Msg")


def _int(v: Any) -> int | None:
    try:
        return int(v)
    except (TypeError, ValueError):
        return None


def check_status(reply: Any, *, host: str, command: str) -> Any:
    """Return `reply` when its STATUS is a success; otherwise raise the matching DeviceError."""
    if not isinstance(reply, dict):
        raise MalformedReplyError(
            f"expected a JSON object, got {type(reply).__name__}", host=host, command=command
        )
    letter, code, msg = status_of(reply)
    if letter not in ("E", "F") and code not in (
        CODE_INVALID_COMMAND,
        CODE_PERMISSION_DENIED,
        CODE_TOKEN_ERROR,
        CODE_TOKEN_LIMIT,
        CODE_BASE64_ERROR,
    ):
        return reply
    text = msg if isinstance(msg, str) else json.dumps(msg)
    if code == CODE_PERMISSION_DENIED or "can't access write cmd" in text.lower():
        raise AccessDeniedError(f"{text}: {WRITE_DISABLED_HINT}", host=host, command=command, code=code)
    if code == CODE_TOKEN_ERROR:
        raise TokenRefusedError(f"token refused ({text})", host=host, command=command)
    if code == CODE_TOKEN_LIMIT:
        raise TokenLimitError(
            f"too many tokens ({text}): the miner gives one client at most 32 per 30 minutes; stop other "
            "tools using this miner's API from this host, or retry when older tokens expire (30 minutes)",
            host=host,
            command=command,
        )
    if code == CODE_INVALID_COMMAND or ("invalid" in text.lower() and "command" in text.lower()):
        raise InvalidCommandError(
            f"command not supported by this firmware ({text})", host=host, command=command, code=code
        )
    raise CommandRejectedError(f"miner answered error {code}: {text}", host=host, command=command, code=code)


# A firmware (API 2.0.4) bug: get_error_code sends `"error_code":["110":"<time>"]`, a list holding pairs.
_ERROR_CODE_LIST = re.compile(rb'"error_code":\[(\s*"[^"\]]*"\s*:)')


def fix_error_code_list(raw: bytes) -> bytes:
    m = _ERROR_CODE_LIST.search(raw)
    if not m:
        return raw
    end = raw.find(b"]", m.end())
    if end < 0:
        return raw
    return raw[: m.start()] + b'"error_code":{' + raw[m.start(1) : end] + b"}" + raw[end + 1 :]


# --- client --------------------------------------------------------------------------------------
@dataclass(frozen=True, slots=True)
class _Token:
    sign: str
    key: bytes
    issued_at: float


# Tokens are scarce (32 per client per 30 min), so they outlive driver instances: one cache per
# process, keyed by where the miner is and which password the token was derived from.
_TOKENS: dict[tuple[str, int, str], _Token] = {}


def _cache_key(host: str, port: int, password: str) -> tuple[str, int, str]:
    return host, port, hashlib.sha256(password.encode()).hexdigest()[:16]


class BtminerV2:
    """One miner's btminer v2 API: plain reads, joined reads, privileged commands."""

    __slots__ = ("host", "password", "port", "timeouts")

    def __init__(self, host: str, port: int, timeouts: Timeouts, password: str | None = None) -> None:
        self.host = host
        self.port = port
        self.timeouts = timeouts
        self.password = password or DEFAULT_PASSWORD

    async def exchange(self, payload: bytes, *, command: str) -> Any:
        """Send raw bytes, return the decoded (not status-checked) reply."""
        raw = await tcp_exchange(self.host, self.port, payload, command=command, timeouts=self.timeouts)
        if command == "get_error_code":
            raw = fix_error_code_list(raw)
        return loads_tolerant(raw, host=self.host, command=command)

    async def raw(self, command: str, **params: Any) -> Any:
        """A plain read, decoded but unchecked."""
        payload = json.dumps({"cmd" if command.startswith("get_") else "command": command, **params})
        return await self.exchange(payload.encode(), command=command)

    async def command(self, command: str, **params: Any) -> Any:
        """A plain read, status-checked."""
        return check_status(await self.raw(command, **params), host=self.host, command=command)

    async def joined(self, *commands: str) -> dict[str, Any]:
        """Several CGMiner-style reads in one request ("summary+devs+pools"); per-command replies."""
        name = "+".join(commands)
        reply = await self.exchange(json.dumps({"command": name}).encode(), command=name)
        if not isinstance(reply, dict):
            raise MalformedReplyError("joined reply is not an object", host=self.host, command=name)
        out: dict[str, Any] = {}
        for c in commands:
            part = reply.get(c)
            if isinstance(part, list) and part:
                part = part[0]
            if not isinstance(part, dict):
                check_status(reply, host=self.host, command=name)  # the whole request was refused
                raise MalformedReplyError(f"joined reply lacks {c!r}", host=self.host, command=name)
            out[c] = part
        return out

    # --- privileged ------------------------------------------------------------------------------
    async def _new_token(self, command: str) -> _Token:
        reply = await self.command("get_token")
        _, code, msg = status_of(reply)
        if not isinstance(msg, dict) or not all(k in msg for k in ("time", "salt", "newsalt")):
            raise MalformedReplyError(
                f"get_token reply lacks time/salt/newsalt (code {code})", host=self.host, command=command
            )
        key, sign = derive_token(self.password, str(msg["salt"]), str(msg["newsalt"]), str(msg["time"]))
        token = _Token(sign=sign, key=aes_key(key), issued_at=time.monotonic())
        _TOKENS[_cache_key(self.host, self.port, self.password)] = token
        return token

    async def privileged(self, command: str, **params: Any) -> dict[str, Any]:
        """Send an encrypted command; reuse the cached token, renew it once if the miner refuses it."""
        ck = _cache_key(self.host, self.port, self.password)
        token = _TOKENS.get(ck)
        fresh = token is None or time.monotonic() - token.issued_at > _REUSE_S
        if fresh:
            token = await self._new_token(command)
        assert token is not None
        try:
            return await self._send_encrypted(command, params, token)
        except TokenRefusedError:
            _TOKENS.pop(ck, None)
            if fresh:
                raise self._wrong_password(command) from None
        token = await self._new_token(command)
        try:
            return await self._send_encrypted(command, params, token)
        except TokenRefusedError:
            _TOKENS.pop(ck, None)
            raise self._wrong_password(command) from None

    def _wrong_password(self, command: str) -> WrongPasswordError:
        return WrongPasswordError(
            f"the miner refused a freshly issued token, so the admin password is wrong: {PASSWORD_HINT}",
            host=self.host,
            command=command,
        )

    async def _send_encrypted(self, command: str, params: dict[str, Any], token: _Token) -> dict[str, Any]:
        body = {"cmd": command, **{k: str(v) for k, v in params.items()}, "token": token.sign}
        reply = await self.exchange(envelope(body, token.key), command=command)
        if isinstance(reply, dict) and isinstance(reply.get("enc"), str):
            try:
                plain = decrypt(reply["enc"], token.key)
                reply = loads_tolerant(plain, host=self.host, command=command)
            except (ValueError, MalformedReplyError):
                raise self._wrong_password(command) from None
        try:
            return check_status(reply, host=self.host, command=command)
        except CommandRejectedError as exc:
            if exc.code in (CODE_INVALID_JSON, CODE_BASE64_ERROR):
                # Our JSON and base64 are well formed: the miner decrypted them with another key.
                raise self._wrong_password(command) from None
            raise


def forget_tokens(host: str | None = None) -> None:
    """Drop cached tokens (all, or one host's); tests and password changes use it."""
    for k in [k for k in _TOKENS if host is None or k[0] == host]:
        del _TOKENS[k]
