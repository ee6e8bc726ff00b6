"""A small client of the daemon's HTTP API for the CLI (`fleetd curtail`, `fleetd events`)."""

from __future__ import annotations

import argparse
import json
import math
import os
import re
import time
import urllib.error
import urllib.parse
import urllib.request
from datetime import datetime
from pathlib import Path
from typing import Any

from fleetd.cli import CLIError
from fleetd.config import DEFAULT_LISTEN

TOKEN_ENV = "FLEETD_API_TOKEN"
URL_ENV = "FLEETD_API_URL"
TIMEOUT_S = 10.0
EXIT_API = 1  # the API answered with an error (refused, not found, bad request)


def add_api_args(p: argparse.ArgumentParser, *, token: bool = False) -> None:
    default = os.environ.get(URL_ENV) or f"http://{DEFAULT_LISTEN}"
    p.add_argument(
        "--api", metavar="URL", default=default, help=f"the daemon's API (default ${URL_ENV} or {default})"
    )
    if token:
        p.add_argument(
            "--token-file",
            metavar="FILE",
            help=f"file holding the API token ([api] token); default ${TOKEN_ENV}",
        )
    p.add_argument("--json", action="store_true", help="print the API's JSON instead of a table")


def _token(args: argparse.Namespace) -> str | None:
    path = getattr(args, "token_file", None)
    if path:
        try:
            return Path(path).read_text().strip()
        except OSError as exc:
            raise CLIError(f"cannot read token file {path}: {exc.strerror or exc}") from None
    return os.environ.get(TOKEN_ENV, "").strip() or None


def call(
    args: argparse.Namespace,
    method: str,
    path: str,
    *,
    body: Any = None,
    params: dict[str, Any] | None = None,
    write: bool = False,
) -> Any:
    """The decoded JSON answer; CLIError (one line: the API's own message) on any failure."""
    base = args.api.rstrip("/")
    if not re.match(r"^https?://", base):
        raise CLIError(f"--api must be an http:// or https:// URL, got {args.api!r}")
    query = urllib.parse.urlencode(
        {k: v for k, v in (params or {}).items() if v not in (None, "", [])}, doseq=True
    )
    url = f"{base}{path}" + (f"?{query}" if query else "")
    headers = {"Accept": "application/json"}
    data = None
    if body is not None:
        data = json.dumps(body).encode()
        headers["Content-Type"] = "application/json"
    if write:
        token = _token(args)
        if token:
            headers["Authorization"] = f"Bearer {token}"
    req = urllib.request.Request(url, data=data, method=method, headers=headers)
    try:
        with urllib.request.urlopen(req, timeout=TIMEOUT_S) as resp:
            return json.loads(resp.read() or b"null")
    except urllib.error.HTTPError as exc:
        try:
            message = json.loads(exc.read()).get("error") or exc.reason
        except (ValueError, AttributeError):
            message = exc.reason
        hint = ""
        if exc.code == 401:
            hint = f" (give the [api] token with --token-file or ${TOKEN_ENV})" if write else ""
        raise CLIError(f"{message}{hint} [HTTP {exc.code}]", EXIT_API) from None
    except (urllib.error.URLError, OSError) as exc:
        reason = getattr(exc, "reason", exc)
        raise CLIError(
            f"cannot reach the fleetd API at {base}: {reason} (is `fleetd run` running? see --api)", EXIT_API
        ) from None
    except ValueError:
        raise CLIError(f"the API at {base} did not answer JSON", EXIT_API) from None


_DURATION = re.compile(r"^\s*(\d+(?:\.\d+)?)\s*(s|m|min|h|d)?\s*$")
_UNIT_S = {None: 1.0, "s": 1.0, "m": 60.0, "min": 60.0, "h": 3600.0, "d": 86400.0}


def duration(text: str) -> float:
    """'90m', '2h', '3600' (seconds), '1d' -> seconds (more than 0)."""
    m = _DURATION.match(text)
    if not m:
        raise argparse.ArgumentTypeError(f"not a duration (e.g. 90m, 2h, 3600s): {text!r}")
    s = float(m.group(1)) * _UNIT_S[m.group(2)]
    if not 0 < s <= 366 * 86400:
        raise argparse.ArgumentTypeError(f"duration {text!r} must be more than 0 and at most a year")
    return s


def when(text: str) -> float:
    """An ISO 8601 time with an offset (or 'Z'), or a unix time -> unix seconds."""
    try:
        value = float(text)
    except ValueError:
        pass
    else:
        if not math.isfinite(value) or value <= 0:
            raise argparse.ArgumentTypeError(f"not a time: {text!r}")
        return value
    try:
        dt = datetime.fromisoformat(text.strip().replace("Z", "+00:00"))
    except ValueError:
        raise argparse.ArgumentTypeError(
            f"not an ISO 8601 time (e.g. 2026-07-01T18:00-05:00): {text!r}"
        ) from None
    if dt.tzinfo is None:
        raise argparse.ArgumentTypeError(
            f"give the time with its UTC offset (e.g. ...-05:00 or ...Z): {text!r}"
        )
    return dt.timestamp()


def ts(t: float | None) -> str:
    """A unix time as local 'YYYY-MM-DD HH:MM:SS', '-' when missing."""
    if not t:
        return "-"
    return time.strftime("%Y-%m-%d %H:%M:%S", time.localtime(t))


def ago(t: float | None, now: float) -> str:
    if not t:
        return "-"
    s = max(0.0, now - t)
    if s < 120:
        return f"{s:.0f}s ago"
    if s < 7200:
        return f"{s / 60:.0f}m ago"
    if s < 172800:
        return f"{s / 3600:.0f}h ago"
    return f"{s / 86400:.0f}d ago"


def table(rows: list[list[str]], header: list[str]) -> str:
    widths = [max(len(str(c)) for c in col) for col in zip(header, *rows, strict=False)]
    lines = [
        "  ".join(str(c).ljust(w) for c, w in zip(r, widths, strict=False)).rstrip() for r in [header, *rows]
    ]
    return "\n".join(lines)
