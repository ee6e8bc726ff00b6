"""What every price source shares: one error type, aiohttp GETs with timeouts, and field paths."""

from __future__ import annotations

import json
import time
from abc import ABC, abstractmethod
from collections.abc import Mapping
from datetime import UTC, datetime
from email.utils import parsedate_to_datetime
from typing import Any
from urllib.parse import urlsplit

import aiohttp

from fleetd.economics.values import HashpriceValue, PricePoint


class SourceError(Exception):
    """A fetch that failed: HTTP error, timeout, unreachable host, or a payload of the wrong shape."""

    def __init__(self, source: str, message: str) -> None:
        super().__init__(f"{source}: {message}")
        self.source = source


def shown_url(url: str) -> str:
    """`url` as errors and logs may show it: no user, password or query (they may hold API keys)."""
    try:
        u = urlsplit(url)
        host = f"[{u.hostname}]" if u.hostname and ":" in u.hostname else u.hostname or ""
        port = f":{u.port}" if u.port else ""
    except ValueError:
        return "<unparsable url>"
    return f"{u.scheme}://{host}{port}{u.path}" if u.scheme else u.path


class RateLimited(SourceError):
    """The server asked us to wait (HTTP 429); `retry_at` is the unix time we may ask again."""

    def __init__(self, source: str, retry_at: float) -> None:
        wait = max(0.0, retry_at - time.time())
        super().__init__(source, f"rate limited; next request allowed in {wait:.0f}s")
        self.retry_at = retry_at


def retry_after_s(value: str | None, default: float = 60.0) -> float:
    """Seconds to wait from a Retry-After header (delta-seconds or an HTTP date)."""
    if not value:
        return default
    try:
        return max(0.0, float(value))
    except ValueError:
        pass
    try:
        return max(0.0, parsedate_to_datetime(value).timestamp() - time.time())
    except (TypeError, ValueError):
        return default


class HttpSource:
    """A source that polls over HTTP with a per-request timeout; the session may be shared."""

    name = "http"
    max_bytes = 32 * 1024 * 1024  # a price document is kilobytes; refuse runaway replies

    def __init__(self, *, timeout_s: float = 10.0, session: aiohttp.ClientSession | None = None) -> None:
        self.timeout = aiohttp.ClientTimeout(total=timeout_s)
        self._session = session
        self._own_session = session is None

    def session(self) -> aiohttp.ClientSession:
        if self._session is None or self._session.closed:
            self._session = aiohttp.ClientSession(timeout=self.timeout)
            self._own_session = True
        return self._session

    async def close(self) -> None:
        if self._own_session and self._session is not None and not self._session.closed:
            await self._session.close()

    async def get_bytes(
        self, url: str, *, params: Mapping[str, str] | None = None, headers: Mapping[str, str] | None = None
    ) -> bytes:
        where = shown_url(url)
        try:
            async with self.session().get(url, params=params, headers=headers, timeout=self.timeout) as resp:
                if resp.status == 429:
                    raise RateLimited(self.name, time.time() + retry_after_s(resp.headers.get("Retry-After")))
                if resp.status >= 400:
                    reason = f" {resp.reason}" if resp.reason else ""
                    raise SourceError(self.name, f"HTTP {resp.status}{reason} from {where}")
                body = bytearray()
                async for chunk in resp.content.iter_chunked(65536):
                    body += chunk
                    if len(body) > self.max_bytes:
                        raise SourceError(self.name, f"reply from {where} exceeds {self.max_bytes} bytes")
                return bytes(body)
        except TimeoutError:
            raise SourceError(self.name, f"timed out after {self.timeout.total:g}s: {where}") from None
        except aiohttp.ClientResponseError as exc:  # its str() holds the full URL, query (API key) included
            status = f" HTTP {exc.status}" if exc.status else ""
            what = f"{type(exc).__name__}{status}{f': {exc.message}' if exc.message else ''}"
            raise SourceError(self.name, f"{what} from {where}") from None
        except aiohttp.ClientError as exc:  # some (InvalidURL, NonHttpUrlClientError) quote the whole URL
            detail = str(exc).replace(url, where) or where
            raise SourceError(self.name, f"{type(exc).__name__}: {detail}") from None

    async def get_json(self, url: str, **kwargs: Any) -> Any:
        body = await self.get_bytes(url, **kwargs)
        if not body.strip():
            raise SourceError(self.name, f"empty reply from {shown_url(url)}")
        try:
            return json.loads(body)
        except (UnicodeDecodeError, json.JSONDecodeError) as exc:
            raise SourceError(self.name, f"reply from {shown_url(url)} is not JSON ({exc})") from None

    async def get_text(self, url: str, **kwargs: Any) -> str:
        body = await self.get_bytes(url, **kwargs)
        try:
            return body.decode("utf-8-sig")
        except UnicodeDecodeError:
            raise SourceError(self.name, f"reply from {shown_url(url)} is not UTF-8 text") from None


class HashpriceSource(ABC):
    name: str

    @abstractmethod
    async def fetch(self) -> HashpriceValue:
        """The current gross hashprice, or SourceError."""

    async def close(self) -> None:
        return None


class PriceSource(ABC):
    name: str

    @abstractmethod
    async def fetch(self) -> list[PricePoint]:
        """Recent interval prices (sorted by start), or SourceError."""

    async def close(self) -> None:
        return None


def dig(data: Any, path: str) -> Any:
    """Follow a dotted path through dicts and lists ("data.0.price", "-1" for the last item)."""
    node = data
    if not path:
        return node
    for part in path.split("."):
        if isinstance(node, Mapping):
            if part not in node:
                raise KeyError(path)
            node = node[part]
        elif isinstance(node, list):
            try:
                node = node[int(part)]
            except (ValueError, IndexError):
                raise KeyError(path) from None
        else:
            raise KeyError(path)
    return node


def parse_time(value: Any) -> float:
    """Unix seconds from epoch seconds, epoch milliseconds, or an ISO 8601 string (UTC unless it says)."""
    if isinstance(value, bool):
        raise ValueError(f"not a time: {value!r}")
    if isinstance(value, int | float):
        return float(value) / 1000.0 if value > 1e11 else float(value)
    if isinstance(value, str):
        text = value.strip()
        try:
            return parse_time(float(text))
        except ValueError:
            pass
        dt = datetime.fromisoformat(text.replace("Z", "+00:00"))
        if dt.tzinfo is None:
            dt = dt.replace(tzinfo=UTC)
        return dt.timestamp()
    raise ValueError(f"not a time: {value!r}")


MAX_FUTURE_S = 300.0  # clock skew tolerated on a timestamp that should be in the past
GENESIS = 1_231_006_505.0  # 2009-01-03: no bitcoin or mining price is older


def check_time(ts: float, now: float, what: str = "timestamp", future_s: float = MAX_FUTURE_S) -> float:
    """`ts` if it is plausible: not before 2009 and at most `future_s` ahead of `now`; else ValueError."""
    if ts < GENESIS:
        raise ValueError(f"{what} {ts:.0f} ({_iso(ts)}) is before 2009: not a real date (seconds vs ms?)")
    if ts > now + future_s:
        ahead = ts - now
        raise ValueError(f"{what} {_iso(ts)} is {_duration(ahead)} in the future (feed or clock error)")
    return ts


def _iso(ts: float) -> str:
    try:
        return datetime.fromtimestamp(ts, UTC).isoformat(timespec="seconds").replace("+00:00", "Z")
    except (OverflowError, OSError, ValueError):
        return f"{ts:g}"


def _duration(s: float) -> str:
    return f"{s / 86400:.1f} days" if s >= 86400 else f"{s / 3600:.1f} h" if s >= 3600 else f"{s:.0f} s"


def as_number(value: Any, what: str) -> float:
    if isinstance(value, bool) or value is None:
        raise ValueError(f"{what} is {value!r}, not a number")
    try:
        number = float(value)
    except (TypeError, ValueError):
        raise ValueError(f"{what} is {value!r}, not a number") from None
    if number != number or number in (float("inf"), float("-inf")):
        raise ValueError(f"{what} is not finite")
    return number
