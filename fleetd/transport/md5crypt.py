"""MD5-crypt ("$1$", Poul-Henning Kamp's FreeBSD scheme), written from its published description.

The btminer v2 privileged API derives its AES key and token from it. Python's `crypt` module is
gone from 3.13, so it is implemented here; it is a legacy scheme and is used only for that protocol.
Where the C library's crypt(3) is still reachable (`crypt`, CPython <= 3.12 on glibc) it computes the
same string about ten times faster (~0.1 ms instead of ~1 ms: a fleet-wide command derives one per
miner), and its answer is used only when it has the expected shape.
"""

from __future__ import annotations

import hashlib
import warnings
from collections.abc import Callable

try:
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", DeprecationWarning)
        from crypt import crypt as _libc_crypt
except ImportError:  # Python 3.13+, or a platform without crypt(3)
    _libc_crypt = None
_LIBC: Callable[[str, str], str | None] | None = _libc_crypt

MAGIC = b"$1$"
_ITOA64 = "./0123456789ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz"
# Byte triples of the final digest in the order the scheme encodes them.
_GROUPS = ((0, 6, 12), (1, 7, 13), (2, 8, 14), (3, 9, 15), (4, 10, 5))


def _to64(value: int, n: int) -> str:
    out = []
    for _ in range(n):
        out.append(_ITOA64[value & 0x3F])
        value >>= 6
    return "".join(out)


def md5_crypt(password: str | bytes, salt: str) -> str:
    """The full "$1$salt$hash" string for `password`; `salt` may carry the "$1$" prefix and a tail."""
    pw = password.encode() if isinstance(password, str) else password
    if salt.startswith("$1$"):
        salt = salt[3:]
    salt_b = salt.split("$", 1)[0].encode()[:8]
    if _LIBC is not None and isinstance(password, str) and "\0" not in password and _plain(salt_b):
        head = f"$1${salt_b.decode()}$"
        out = _LIBC(password, head)
        if out is not None and out.startswith(head) and len(out) == len(head) + 22:
            return out
    return _md5_crypt(pw, salt_b)


def _plain(salt: bytes) -> bool:
    return all(chr(b) in _ITOA64 for b in salt)


def _md5_crypt(pw: bytes, salt_b: bytes) -> str:
    """The scheme itself, in Python."""

    alt = hashlib.md5(pw + salt_b + pw).digest()
    ctx = hashlib.md5(pw + MAGIC + salt_b)
    n = len(pw)
    while n > 0:
        ctx.update(alt[: min(16, n)])
        n -= 16
    i = len(pw)
    while i:
        ctx.update(b"\0" if i & 1 else pw[:1])
        i >>= 1
    final = ctx.digest()

    for r in range(1000):
        c = hashlib.md5()
        c.update(pw if r & 1 else final)
        if r % 3:
            c.update(salt_b)
        if r % 7:
            c.update(pw)
        c.update(final if r & 1 else pw)
        final = c.digest()

    encoded = "".join(_to64((final[a] << 16) | (final[b] << 8) | final[c], 4) for a, b, c in _GROUPS)
    encoded += _to64(final[11], 2)
    return f"$1${salt_b.decode()}${encoded}"


def md5_crypt_hash(password: str | bytes, salt: str) -> str:
    """Only the hash part (after the third "$"), as btminer uses it."""
    return md5_crypt(password, salt).rsplit("$", 1)[1]
