"""Hashprice sources: static, a mempool.space-compatible API, the Luxor Hashrate Index, a fallback chain."""

from __future__ import annotations

import asyncio
import logging
import time
from collections.abc import Mapping, Sequence
from typing import Any

import aiohttp

from fleetd.economics.hashprice import block_subsidy_btc, hashprice_per_ph_day
from fleetd.economics.sources.base import (
    HashpriceSource,
    HttpSource,
    RateLimited,
    SourceError,
    as_number,
    check_time,
    parse_time,
)
from fleetd.economics.units import SATS_PER_BTC, check_hashprice
from fleetd.economics.values import HashpriceValue, LastGood, Reading

log = logging.getLogger(__name__)
MAX_BTC_PRICE = 1e9  # in any currency mempool.space quotes; beyond it the feed is broken


class StaticHashprice(HashpriceSource):
    """A configured value; always current."""

    def __init__(self, per_ph_day: float, currency: str = "USD") -> None:
        check_hashprice(per_ph_day, "a static hashprice")
        self.name = "static"
        self.value = per_ph_day
        self.currency = currency

    async def fetch(self) -> HashpriceValue:
        return HashpriceValue(self.value, self.currency, time.time(), self.name)


class MempoolHashprice(HttpSource, HashpriceSource):
    """Hashprice computed from a mempool.space-compatible API: difficulty, tip height, fees, BTC price."""

    name = "mempool"

    def __init__(
        self,
        base_url: str = "https://mempool.space",
        *,
        currency: str = "USD",
        fee_blocks: int = 144,
        timeout_s: float = 10.0,
        session: aiohttp.ClientSession | None = None,
    ) -> None:
        super().__init__(timeout_s=timeout_s, session=session)
        self.base = base_url.rstrip("/")
        self.currency = currency.upper()
        self.fee_blocks = fee_blocks

    async def fetch(self) -> HashpriceValue:
        b = self.base
        results = await asyncio.gather(
            self.get_text(f"{b}/api/blocks/tip/height"),
            self.get_json(f"{b}/api/v1/mining/hashrate/3d"),
            self.get_json(f"{b}/api/v1/mining/reward-stats/{self.fee_blocks}"),
            self.get_json(f"{b}/api/v1/prices"),
            self.get_json(f"{b}/api/v1/difficulty-adjustment"),
            return_exceptions=True,
        )
        for r in results[:4]:
            if isinstance(r, BaseException):
                raise r
        height_text, hashrate, rewards, prices, adjustment = results
        try:
            return self._compute(height_text, hashrate, rewards, prices, adjustment)
        except (KeyError, TypeError, ValueError, IndexError) as exc:
            raise SourceError(self.name, f"unexpected payload: {exc}") from None

    def _compute(
        self, height_text: Any, hashrate: Any, rewards: Any, prices: Any, adj: Any
    ) -> HashpriceValue:
        height = int(str(height_text).strip())
        difficulty = hashrate.get("currentDifficulty")
        if difficulty is None:
            difficulty = hashrate["difficulty"][-1]["difficulty"]
        difficulty = as_number(difficulty, "currentDifficulty")
        if difficulty <= 0:
            raise ValueError("difficulty must be > 0")
        total_fee_sats = as_number(rewards["totalFee"], "totalFee")
        if "startBlock" in rewards and "endBlock" in rewards:
            blocks = int(rewards["endBlock"]) - int(rewards["startBlock"]) + 1
        else:
            blocks = self.fee_blocks
        if blocks <= 0 or total_fee_sats < 0:
            raise ValueError("reward-stats block range or fees out of range")
        fees_btc = total_fee_sats / blocks / SATS_PER_BTC
        if self.currency not in prices:
            raise KeyError(f"prices has no {self.currency}")
        price = as_number(prices[self.currency], f"prices.{self.currency}")
        if not 0 < price <= MAX_BTC_PRICE:
            raise ValueError(f"prices.{self.currency} must be > 0 and <= {MAX_BTC_PRICE:g}, got {price:g}")
        now = time.time()
        stamp = check_time(parse_time(prices["time"]), now, "prices.time") if "time" in prices else now
        subsidy = block_subsidy_btc(height + 1)  # the block being mined now
        details = [
            ("difficulty", difficulty),
            ("height", float(height)),
            ("subsidy_btc", subsidy),
            ("fees_btc_per_block", fees_btc),
            ("btc_price", price),
        ]
        if isinstance(adj, Mapping) and "difficultyChange" in adj:
            details.append(("difficulty_change_pct", float(adj["difficultyChange"])))
        return HashpriceValue(
            check_hashprice(hashprice_per_ph_day(difficulty, subsidy, fees_btc, price), "computed hashprice"),
            self.currency,
            stamp,
            self.name,
            interval_s=blocks * 600.0,
            details=tuple(details),
        )


class LuxorHashprice(HttpSource, HashpriceSource):
    """The Luxor Hashrate Index REST API (API key header); throttled, and backs off on HTTP 429."""

    name = "luxor"

    def __init__(
        self,
        api_key: str,
        base_url: str = "https://api.hashrateindex.com",
        *,
        currency: str = "USD",
        min_interval_s: float = 300.0,
        timeout_s: float = 10.0,
        session: aiohttp.ClientSession | None = None,
    ) -> None:
        if not api_key:
            raise ValueError("the Luxor Hashrate Index needs an API key")
        super().__init__(timeout_s=timeout_s, session=session)
        self.api_key = api_key
        self.base = base_url.rstrip("/")
        self.currency = currency.upper()
        self.min_interval_s = min_interval_s
        self._retry_at = 0.0
        self._last: HashpriceValue | None = None
        self._last_request = 0.0

    async def fetch(self) -> HashpriceValue:
        now = time.time()
        if now < self._retry_at:
            raise RateLimited(self.name, self._retry_at)
        if self._last is not None and now - self._last_request < self.min_interval_s:
            return self._last  # within our own request budget: the value carries its own timestamp
        self._last_request = now
        try:
            payload = await self.get_json(
                f"{self.base}/v1/hashrateindex/hashprice",
                params={"currency": self.currency, "hashunit": "PHS", "bucket": "15m", "span": "1D"},
                headers={"X-Hi-Api-Key": self.api_key, "Accept": "application/json"},
            )
        except RateLimited as exc:
            self._retry_at = exc.retry_at
            raise
        try:
            self._last = self._parse(payload)
        except (KeyError, TypeError, ValueError) as exc:
            raise SourceError(self.name, f"unexpected payload: {exc}") from None
        return self._last

    def _parse(self, payload: Any) -> HashpriceValue:
        data = payload["data"]
        if isinstance(data, list):
            points = [p for p in data if isinstance(p, Mapping) and self._price(p) is not None]
            if not points:
                raise ValueError("no hashprice points in data")
            newest = max(points, key=lambda p: parse_time(p["timestamp"]))
        elif isinstance(data, Mapping):
            newest = data
        else:
            raise TypeError("data is neither a list nor an object")
        price = self._price(newest)
        if price is None:
            raise ValueError("no hashprice in data")
        check_hashprice(price)
        now = time.time()
        # the /current object may come without a timestamp: it is then as of this reply
        stamp = check_time(parse_time(newest["timestamp"]), now) if "timestamp" in newest else now
        return HashpriceValue(price, self.currency, stamp, self.name, interval_s=900.0)

    def _price(self, point: Mapping[str, Any]) -> float | None:
        for key in ("price", f"price{self.currency}", "hashprice"):
            if key in point and point[key] is not None:
                return as_number(point[key], key)
        return None


class HashpriceChain:
    """Sources in order of preference; the first fresh value wins, a stale one is served flagged."""

    def __init__(self, sources: Sequence[HashpriceSource], max_age_s: float = 3600.0) -> None:
        if not sources:
            raise ValueError("a hashprice chain needs at least one source")
        self.sources = list(sources)
        self.trackers = [LastGood[HashpriceValue](max_age_s) for _ in self.sources]

    async def refresh(self, now: float | None = None) -> Reading[HashpriceValue]:
        """Fetch from each source in turn until one gives a fresh value."""
        for source, tracker in zip(self.sources, self.trackers, strict=True):
            try:
                value = await source.fetch()
            except SourceError as exc:
                tracker.fail(str(exc))
                log.warning("hashprice %s", exc)
                continue
            except Exception as exc:
                tracker.fail(f"{source.name}: unexpected {type(exc).__name__}: {exc}")
                log.exception("hashprice source %s failed unexpectedly", source.name)
                continue
            tracker.ok(value, time.time())
            if tracker.reading(time.time() if now is None else now).usable:
                break
            tracker.fail(f"{source.name}: value is stale")
        return self.current(now)

    def current(self, now: float | None = None) -> Reading[HashpriceValue]:
        now = time.time() if now is None else now
        readings = [t.reading(now) for t in self.trackers]
        errors = "; ".join(r.error for r in readings if r.error)
        for i, r in enumerate(readings):
            if r.usable:  # report why the preferred sources before it were passed over
                passed = "; ".join(x.error for x in readings[:i] if x.error)
                return Reading(r.value, r.age_s, False, passed)
        present = [r for r in readings if r.value is not None]
        if present:
            best = min(present, key=lambda r: r.age_s or 0.0)
            return Reading(best.value, best.age_s, True, errors)
        return Reading(None, None, True, errors or "no value yet")

    async def close(self) -> None:
        for s in self.sources:
            await s.close()
