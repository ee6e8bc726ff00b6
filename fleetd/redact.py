"""Redaction of device replies for shareable fixtures: MACs, serials, IPs, pool users/passwords, host names.

Placeholders are consistent across every reply of one device (the same MAC becomes the same placeholder
everywhere) and keep the original's type and shape: strings stay strings of the same format (a MAC stays
a MAC, an IP a documentation-range IP, a serial keeps its length), numbers stay numbers, lists and
objects keep their structure. Pure: no I/O.
"""

from __future__ import annotations

import ipaddress
import re
from typing import Any

# Keys are compared lower-cased with everything but letters and digits removed.
_MAC_KEYS = {"mac", "macaddr", "macaddress", "ethaddr", "hwaddr", "wifimac"}
_SERIAL_KEYS = {"sn", "serinum", "serial", "serialno", "serialnumber", "minerid", "dna", "chipid", "hwid"}
_HOST_KEYS = {"hostname", "host", "minername", "devicename", "nodename"}
_USER_KEYS = {"user", "username", "worker", "workername", "account", "login"}
_SECRET_PARTS = ("pass", "pwd", "secret", "token", "apikey", "privatekey")
_IP_KEYS = {"ip", "ipaddr", "ipaddress", "gateway", "dns", "dnsservers", "dnsserver", "netmask", "broadcast"}
# Values under these keys are versions, not addresses, even when they look like 1.2.3.4.
_VERSION_PARTS = (
    "version",
    "ver",
    "firmware",
    "compile",
    "bmminer",
    "cgminer",
    "btminer",
    "api",
    "miner",
    "type",
    "model",
)

_MAC_RE = re.compile(r"\b[0-9A-Fa-f]{2}([:-])(?:[0-9A-Fa-f]{2}\1){4}[0-9A-Fa-f]{2}\b")
_IPV4_RE = re.compile(r"(?<![\d.])(?:\d{1,3}\.){3}\d{1,3}(?![\d.])")


def _norm(key: str) -> str:
    return re.sub(r"[^a-z0-9]", "", key.lower())


def _is_serial_key(key: str) -> bool:
    return key in _SERIAL_KEYS or "serial" in key or key.endswith("sn")


def _is_secret_key(key: str) -> bool:
    return any(part in key for part in _SECRET_PARTS)


class Redactor:
    """Replaces identifying values; one instance per device so placeholders stay consistent."""

    def __init__(self) -> None:
        kinds = ("mac", "serial", "host", "user", "secret", "ip")
        self._maps: dict[str, dict[Any, Any]] = {kind: {} for kind in kinds}
        self._known: dict[str, str] = {}  # identifying strings seen under keys -> placeholder, for free text

    # --- placeholders ----------------------------------------------------------------------
    def _placeholder(self, kind: str, value: Any) -> Any:
        table = self._maps[kind]
        if value in table:
            return table[value]
        if kind == "secret" and value in ("x", "X", "123", ""):
            return value  # the conventional "no password" says nothing and stays recognisable
        n = len(table) + 1
        if isinstance(value, bool) or value is None:
            return value
        if isinstance(value, int):
            new: Any = n
        elif isinstance(value, float):
            new = float(n)
        elif not isinstance(value, str) or not value:
            return value
        elif kind == "mac":
            new = self._mac(value, n)
        elif kind == "ip":
            new = self._ip(value, n)
        elif kind == "serial":
            new = f"SN{n:0{max(1, len(value) - 2)}d}"  # same length as the original where it fits
        elif kind == "host":
            new = f"miner-{n}"
        elif kind == "user":
            # keep the account.worker shape pools use
            new = f"user{n}" + (f".worker{n}" if "." in value else "")
        else:
            new = f"secret{n}"
        table[value] = new
        # Scrub free text only of identifier-like values: a default host name such as "Antminer" is
        # also the vendor's name in every model string.
        identifier_like = isinstance(value, str) and len(value) >= 6 and any(c.isdigit() for c in value)
        if kind in ("serial", "host", "user") and identifier_like:
            self._known[value] = new
        return new

    @staticmethod
    def _mac(value: str, n: int) -> str:
        sep = ":" if ":" in value else "-" if "-" in value else ""
        octets = ["02", "00", "00", "00", f"{(n >> 8) & 0xFF:02x}", f"{n & 0xFF:02x}"]  # locally administered
        text = sep.join(octets)
        return text.upper() if value.isupper() else text

    @staticmethod
    def _ip(value: str, n: int) -> str:
        try:
            addr = ipaddress.ip_address(value)
        except ValueError:
            return value
        if addr.version == 6:
            return str(ipaddress.IPv6Address(int(ipaddress.IPv6Address("2001:db8::")) + n))
        if value.startswith("255.") or value in ("0.0.0.0", "127.0.0.1"):
            return value  # netmasks and wildcard/loopback say nothing about the site
        return f"192.0.2.{n % 254 or 254}" if n <= 254 else f"198.51.100.{(n - 254) % 254 or 254}"

    # --- walking ---------------------------------------------------------------------------
    def collect(self, data: Any, key: str = "") -> None:
        """First pass: learn identifying values under known keys, so free text can be scrubbed too."""
        if isinstance(data, dict):
            for k, v in data.items():
                self.collect(v, _norm(str(k)))
        elif isinstance(data, list):
            for item in data:
                self.collect(item, key)
        elif isinstance(data, str | int) and not isinstance(data, bool):
            kind = self._kind(key, data)
            if kind is not None:
                self._placeholder(kind, data)

    def _kind(self, key: str, value: Any) -> str | None:
        if not key:
            return None
        if key in _MAC_KEYS:
            return "mac"
        if _is_secret_key(key):
            return "secret"
        if _is_serial_key(key):
            return "serial"
        if key in _HOST_KEYS and isinstance(value, str) and not _is_ip(value):
            return "host"
        if key in _USER_KEYS:
            return "user"
        if key in _IP_KEYS and isinstance(value, str):
            return "ip" if _is_ip(value) else None
        return None

    def redact(self, data: Any, key: str = "") -> Any:
        """Second pass: a copy of `data` with every identifying value replaced."""
        if isinstance(data, dict):
            return {k: self.redact(v, _norm(str(k))) for k, v in data.items()}
        if isinstance(data, list):
            return [self.redact(item, key) for item in data]
        if isinstance(data, bool) or data is None or isinstance(data, float):
            return data
        kind = self._kind(key, data)
        if kind is not None:
            return self._placeholder(kind, data)
        if isinstance(data, str):
            return self._scrub(data, key)
        return data

    def _scrub(self, text: str, key: str) -> str:
        text = _MAC_RE.sub(lambda m: self._placeholder("mac", m.group(0)), text)
        if any(part in key for part in _VERSION_PARTS):
            return text
        for original in sorted(self._known, key=len, reverse=True):
            if original in text:
                text = text.replace(original, self._known[original])
        return _IPV4_RE.sub(lambda m: self._sub_ip(m.group(0)), text)

    def _sub_ip(self, text: str) -> str:
        return self._placeholder("ip", text) if _is_ip(text) else text


def _is_ip(text: str) -> bool:
    try:
        ipaddress.ip_address(text)
    except ValueError:
        return False
    return True


def redact_responses(responses: dict[str, Any]) -> dict[str, Any]:
    """Redact every reply of one device with one consistent set of placeholders."""
    redactor = Redactor()
    for value in responses.values():
        redactor.collect(value)
    return {name: redactor.redact(value) for name, value in responses.items()}
