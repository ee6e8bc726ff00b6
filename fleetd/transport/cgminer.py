"""The CGMiner TCP API (port 4028) spoken by cgminer, bmminer and their descendants.

One request per connection: JSON `{"command": .., "parameter": ..}` or the text form
`cmd|param`. Joined reads (`summary+stats+pools`) come back as one object keyed by command, each
value a one-element list; firmwares that refuse joined commands are remembered per host and
asked one command at a time. STATUS blocks map to the typed errors of `fleetd.transport.errors`.
"""

from __future__ import annotations

import json
import re
from collections.abc import Iterable, Mapping
from typing import TYPE_CHECKING, Any

from fleetd.transport.errors import (
    AccessDeniedError,
    CommandRejectedError,
    InvalidCommandError,
    MalformedReplyError,
)
from fleetd.transport.jsonfix import loads_tolerant
from fleetd.transport.tcp import tcp_exchange

if TYPE_CHECKING:
    from fleetd.transport.timeouts import Timeouts

__all__ = [
    "CGMinerAPI",
    "check_status",
    "json_value_complete",
    "parse_text_reply",
    "split_joined",
]

# cgminer's message codes (api.c) for the two refusals that need their own error type.
CODE_INVALID_COMMAND = 14
CODE_ACCESS_DENIED = 45

_OK_STATUS = frozenset({"S", "I", "W"})

# (host, port) of firmwares that answered a joined command with a refusal.
_REFUSES_JOIN: set[tuple[str, int]] = set()

_STRUCT = re.compile(rb'"(?:[^"\\]|\\.)*(?:"|\Z)|[{}\[\]]', re.S)


def json_value_complete(buf: bytes | bytearray) -> bool:
    """True once `buf` holds one whole JSON object or array (for firmwares that keep the socket open)."""
    end = len(buf) - 1
    while end >= 0 and buf[end] in b" \t\r\n\0":  # no copy of the buffer, unlike rstrip()
        end -= 1
    if end < 0 or buf[end] not in b"}]":
        return False
    depth = 0
    opened = False
    for m in _STRUCT.finditer(buf):
        c = m.group(0)
        if c in (b"{", b"["):
            depth += 1
            opened = True
        elif c in (b"}", b"]"):
            depth -= 1
            if opened and depth == 0:
                return True
    return False


def _first_status(reply: Mapping[str, Any]) -> Mapping[str, Any] | None:
    status = reply.get("STATUS")
    if isinstance(status, list):
        return status[0] if status and isinstance(status[0], Mapping) else None
    if isinstance(status, Mapping):  # Antminer web CGI style
        return status
    if isinstance(status, str):  # Whatsminer style: fields at the top level
        return reply
    return None


def check_status(reply: Any, *, host: str = "", command: str = "") -> Mapping[str, Any]:
    """Return `reply` if its STATUS is a success, else raise the matching typed error."""
    if not isinstance(reply, Mapping):
        raise MalformedReplyError(
            f"expected a JSON object, got {type(reply).__name__}", host=host, command=command
        )
    status = _first_status(reply)
    if status is None:
        return reply
    flag = str(status.get("STATUS", "S")).upper()
    if flag in _OK_STATUS:
        return reply
    code = status.get("Code", status.get("code"))
    try:
        code = int(code) if code is not None else None
    except (TypeError, ValueError):
        code = None
    msg = str(status.get("Msg", status.get("msg", "")) or "error").strip()
    low = msg.lower()
    text = f"{msg} (STATUS {flag}, code {code})" if code is not None else f"{msg} (STATUS {flag})"
    if code == CODE_INVALID_COMMAND or "invalid command" in low or "invalid cmd" in low:
        raise InvalidCommandError(text, host=host, command=command, code=code)
    if code == CODE_ACCESS_DENIED or "access denied" in low or "privilege" in low:
        raise AccessDeniedError(text, host=host, command=command, code=code)
    raise CommandRejectedError(text, host=host, command=command, code=code)


def split_joined(reply: Any, commands: Iterable[str], *, host: str = "") -> dict[str, Any] | None:
    """Split a joined reply into one reply per command; None if the firmware refused to join."""
    if not isinstance(reply, Mapping):
        return None
    out: dict[str, Any] = {}
    for cmd in commands:
        part = reply.get(cmd)
        if part is None:
            return None
        if isinstance(part, list):
            if len(part) != 1:
                raise MalformedReplyError(
                    f"joined reply for {cmd!r} has {len(part)} elements", host=host, command=cmd
                )
            part = part[0]
        out[cmd] = part
    return out


def _unescape_text(value: str) -> str:
    return re.sub(r"\\(.)", r"\1", value)


_TEXT_SECTIONS = re.compile(r"(?:[^|\\]|\\.)+", re.S)
_TEXT_FIELDS = re.compile(r"(?:[^,\\]|\\.)+", re.S)


def _text_value(value: str) -> Any:
    try:
        return int(value)
    except ValueError:
        pass
    try:
        return float(value)
    except ValueError:
        return value


def parse_text_reply(text: str) -> dict[str, Any]:
    """Parse cgminer's text-form reply (`STATUS=S,...|SUMMARY,Elapsed=5,...|`) into the JSON shape."""
    out: dict[str, Any] = {}
    for sec in _TEXT_SECTIONS.findall(text.strip("\0\r\n ")):
        fields = _TEXT_FIELDS.findall(sec)
        if not fields:
            continue
        head, _, head_value = fields[0].partition("=")
        name = _unescape_text(head.strip())
        entry: dict[str, Any] = {}
        if name == "STATUS":
            entry["STATUS"] = _unescape_text(head_value)
        elif head_value:
            entry[name] = _text_value(_unescape_text(head_value))
        for f in fields[1:]:
            key, sep, value = f.partition("=")
            if sep:
                entry[_unescape_text(key)] = _text_value(_unescape_text(value))
        if name in ("STATUS",):
            out["STATUS"] = [entry]
        else:
            # Item sections (POOL=0, ASC=0, ...) collect under the plural name, like the JSON form.
            key = name + "S" if name in ("POOL", "ASC", "PGA", "DEV") else name
            out.setdefault(key, []).append(entry)
    if not out:
        raise ValueError("empty text reply")
    return out


class CGMinerAPI:
    """Client for one miner's CGMiner API. Each call opens one connection."""

    __slots__ = ("host", "max_bytes", "port", "text", "timeouts")

    def __init__(
        self, host: str, port: int = 4028, *, timeouts: Timeouts, text: bool = False, max_bytes: int = 1 << 20
    ) -> None:
        self.host = host
        self.port = port
        self.timeouts = timeouts
        self.text = text
        self.max_bytes = max_bytes

    def encode(self, command: str, parameter: str | None = None) -> bytes:
        if self.text:
            return f"{command}|{parameter}".encode() if parameter is not None else command.encode()
        body: dict[str, str] = {"command": command}
        if parameter is not None:
            body["parameter"] = parameter
        return json.dumps(body, separators=(",", ":")).encode()

    async def request(self, command: str, parameter: str | None = None) -> Any:
        """Send one command and return the decoded reply without checking its STATUS."""
        raw = await tcp_exchange(
            self.host,
            self.port,
            self.encode(command, parameter),
            command=command,
            timeouts=self.timeouts,
            max_bytes=self.max_bytes,
            complete=json_value_complete,
        )
        stripped = raw.lstrip()
        if self.text and stripped[:1] not in (b"{", b"["):
            try:
                return parse_text_reply(raw.decode("utf-8", errors="replace"))
            except ValueError:
                raise MalformedReplyError("undecodable text reply", host=self.host, command=command) from None
        return loads_tolerant(raw, host=self.host, command=command)

    async def command(self, command: str, parameter: str | None = None) -> dict[str, Any]:
        """Send one command; return its reply, raising the typed error for a failure STATUS."""
        reply = await self.request(command, parameter)
        return dict(check_status(reply, host=self.host, command=command))

    @property
    def joins(self) -> bool:
        """Whether this firmware is (still) believed to accept joined commands."""
        return (self.host, self.port) not in _REFUSES_JOIN

    async def commands(self, *commands: str, optional: Iterable[str] = ()) -> dict[str, dict[str, Any]]:
        """Read several commands, joined into one request where the firmware allows.

        Commands listed in `optional` may be refused (invalid command, access denied, rejected);
        they are then left out of the result. Any other failure raises.
        """
        optional = frozenset(optional)
        if len(commands) > 1 and self.joins:
            joined = "+".join(commands)
            reply = await self.request(joined)
            parts = split_joined(reply, commands, host=self.host)
            if parts is not None:
                return self._checked(parts, optional)
            # A refusal (or an answer to something else): fall back, and remember for this host.
            _REFUSES_JOIN.add((self.host, self.port))
        out: dict[str, dict[str, Any]] = {}
        for cmd in commands:
            try:
                out[cmd] = await self.command(cmd)
            except CommandRejectedError:
                if cmd not in optional:
                    raise
        return out

    def _checked(self, parts: Mapping[str, Any], optional: frozenset[str]) -> dict[str, dict[str, Any]]:
        out: dict[str, dict[str, Any]] = {}
        for cmd, part in parts.items():
            try:
                out[cmd] = dict(check_status(part, host=self.host, command=cmd))
            except CommandRejectedError:
                if cmd not in optional:
                    raise
        return out
