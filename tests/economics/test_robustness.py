"""Sources under hostile conditions: hung servers, implausible timestamps, negative and huge prices."""

from __future__ import annotations

import asyncio
import time
from collections.abc import AsyncIterator, Callable
from datetime import UTC, datetime, timedelta

import pytest

from fleetd.economics.ercot import ErcotFormatError, parse_spp_csv
from fleetd.economics.service import MarketPrices
from fleetd.economics.sources.base import SourceError, check_time
from fleetd.economics.sources.ercot import ErcotRealtime
from fleetd.economics.sources.feed import FeedFormat, HttpFeed
from fleetd.economics.sources.hashprice import (
    HashpriceChain,
    LuxorHashprice,
    MempoolHashprice,
    StaticHashprice,
)
from fleetd.economics.unit import economics
from tests.conftest import loopback_host

from .conftest import BLOCK, Server, json_reply
from .test_sources import ercot_csv, ercot_doc, ercot_routes, luxor_handler, luxor_series, mempool_routes
from .test_sources import zipped as zip_csv

# -- servers that hang ----------------------------------------------------------------------------------

Behaviour = Callable[[asyncio.StreamReader, asyncio.StreamWriter], object]


async def _silent(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
    await reader.read(65536)  # takes the request, never answers
    await asyncio.sleep(30)


async def _stalls_mid_body(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
    await reader.read(65536)
    writer.write(b'HTTP/1.1 200 OK\r\nContent-Type: application/json\r\nContent-Length: 5000\r\n\r\n{"da')
    await writer.drain()
    await asyncio.sleep(30)  # headers and a few bytes, then nothing


@pytest.fixture
async def hung() -> AsyncIterator[Callable[[Behaviour], object]]:
    servers: list[asyncio.Server] = []

    async def start(behaviour: Behaviour) -> str:
        host = loopback_host(BLOCK)
        server = await asyncio.start_server(behaviour, host, 0)  # type: ignore[arg-type]
        servers.append(server)
        return f"http://{host}:{server.sockets[0].getsockname()[1]}"

    yield start
    for s in servers:
        s.close()


@pytest.mark.parametrize("behaviour", [_silent, _stalls_mid_body], ids=["no-reply", "stalled-body"])
async def test_a_hung_server_times_out_within_the_configured_timeout(hung, behaviour) -> None:
    base = await hung(behaviour)
    sources = [
        MempoolHashprice(base, timeout_s=0.3),
        LuxorHashprice("k", base, timeout_s=0.3),
        ErcotRealtime("HB_WEST", base, timeout_s=0.3),
        HttpFeed(f"{base}/p", FeedFormat(), timeout_s=0.3),
    ]
    for src in sources:
        t0 = time.monotonic()
        try:
            with pytest.raises(SourceError, match=r"timed out after 0\.3s"):
                await src.fetch()
        finally:
            await src.close()
        assert time.monotonic() - t0 < 1.0, src.name


async def test_chain_with_a_hung_preferred_source_falls_back_in_time(hung) -> None:
    base = await hung(_silent)
    chain = HashpriceChain([MempoolHashprice(base, timeout_s=0.3), StaticHashprice(40.0)])
    try:
        t0 = time.monotonic()
        r = await chain.refresh()
        assert time.monotonic() - t0 < 1.0
        assert r.usable and r.value.source == "static" and "timed out" in r.error
    finally:
        await chain.close()


# -- timestamps in the future or long past ---------------------------------------------------------------


def test_check_time_bounds() -> None:
    now = 1_763_700_000.0
    assert check_time(now + 299, now) == now + 299  # clock skew is tolerated
    with pytest.raises(ValueError, match=r"2\.0 h in the future"):
        check_time(now + 7200, now)
    with pytest.raises(ValueError, match="before 2009"):
        check_time(86_400.0, now)


async def test_mempool_price_dated_in_the_future_is_refused(server: Server) -> None:
    mempool_routes(server, price_time=time.time() + 3 * 86400)
    src = MempoolHashprice(await server.start())
    try:
        with pytest.raises(SourceError, match=r"prices\.time .* is 3\.0 days in the future"):
            await src.fetch()
    finally:
        await src.close()


@pytest.mark.parametrize(
    ("stamp", "message"),
    [
        (datetime.now(UTC) + timedelta(hours=3), "in the future"),
        (datetime(2001, 1, 1, tzinfo=UTC), "before 2009"),
    ],
)
async def test_luxor_implausible_timestamps_are_refused(
    server: Server, stamp: datetime, message: str
) -> None:
    series = luxor_series([(stamp.isoformat().replace("+00:00", "Z"), 50.0)])
    server.route("/v1/hashrateindex/hashprice", luxor_handler(series))
    src = LuxorHashprice("hi.test-key", await server.start(), min_interval_s=0)
    try:
        with pytest.raises(SourceError, match=message):
            await src.fetch()
    finally:
        await src.close()


async def test_a_value_from_long_ago_is_kept_flagged_stale_with_its_age(server: Server) -> None:
    long_ago = time.time() - 30 * 86400
    mempool_routes(server, price_time=long_ago)
    chain = HashpriceChain([MempoolHashprice(await server.start())], max_age_s=3600)
    try:
        r = await chain.refresh()
        assert r.stale and not r.usable and r.value is not None  # served, but flagged; never zero
        assert r.age_s == pytest.approx(30 * 86400, abs=10) and "stale" in r.error
    finally:
        await chain.close()


async def test_ercot_prices_from_an_old_document_are_stale(server: Server) -> None:
    docs = [ercot_doc("7", "2024-07-01T10:00:02-05:00", "SPPHLZNP6905_20240701_1000_csv")]
    ercot_routes(server, docs, {"7": zip_csv("a.csv", ercot_csv(["07/01/2024,10,4,HB_WEST,HU,31.00,N"]))})
    prices = MarketPrices(ErcotRealtime("HB_WEST", await server.start()), max_age_s=1800)
    try:
        await prices.refresh()
        r = prices.reading(time.time())
        assert r.stale and r.value is not None and r.value.per_mwh == 31.0
        assert r.age_s > 365 * 86400
    finally:
        await prices.source.close()


async def test_ercot_interval_in_the_future_is_refused(server: Server) -> None:
    tomorrow = datetime.now(UTC) + timedelta(days=1)
    row = f"{tomorrow:%m/%d/%Y},12,1,HB_WEST,HU,31.00,N"
    ercot_routes(
        server,
        [ercot_doc("8", "2024-07-01T10:00:02-05:00", "x_csv")],
        {"8": zip_csv("a.csv", ercot_csv([row]))},
    )
    src = ErcotRealtime("HB_WEST", await server.start())
    try:
        with pytest.raises(SourceError, match=r"newest interval start .* in the future"):
            await src.fetch()
    finally:
        await src.close()


async def test_http_feed_accepts_day_ahead_prices_but_not_next_week(server: Server) -> None:
    now = time.time()
    server.route("/da", json_reply({"data": [{"t": now + 20 * 3600, "p": 40.0}]}))
    server.route("/bad", json_reply({"data": [{"t": now + 7 * 86400, "p": 40.0}]}))
    base = await server.start()
    fmt = FeedFormat(items_path="data", value_path="p", time_path="t", interval_s=3600)
    ok, bad = HttpFeed(f"{base}/da", fmt), HttpFeed(f"{base}/bad", fmt)
    try:
        assert (await ok.fetch())[0].per_mwh == 40.0
        with pytest.raises(SourceError, match=r"7\.0 days in the future"):
            await bad.fetch()
    finally:
        await ok.close()
        await bad.close()


# -- negative and huge prices -----------------------------------------------------------------------------


async def test_negative_ercot_prices_are_kept_and_mean_profit_to_run(server: Server) -> None:
    rows = ["11/03/2024,2,3,HB_WEST,HU,-12.50,Y", "11/03/2024,2,4,HB_WEST,HU,-251.00,Y"]  # -251: the floor
    ercot_routes(
        server,
        [ercot_doc("9", "2024-11-03T02:00:02-06:00", "x_csv")],
        {"9": zip_csv("a.csv", ercot_csv(rows))},
    )
    src = ErcotRealtime("HB_WEST", await server.start())
    try:
        points = await src.fetch()
    finally:
        await src.close()
    assert [p.per_mwh for p in points] == [-12.5, -251.0]
    r = economics(140, 3010, 34.0, points[-1].per_mwh)
    assert r.power_cost_per_day == pytest.approx(0.07224 * -251.0) and r.profit_per_day > r.revenue_per_day


def test_huge_ercot_price_is_a_clear_error() -> None:
    text = ercot_csv(["11/03/2024,2,4,HB_WEST,HU,9e15,N"])
    with pytest.raises(
        ErcotFormatError, match=r"line 2: SettlementPointPrice 9e\+15 per MWh is out of range"
    ):
        parse_spp_csv(text, "HB_WEST")
    assert parse_spp_csv(ercot_csv(["11/03/2024,2,4,HB_WEST,HU,5000.00,N"]), "HB_WEST")[0].per_mwh == 5000.0


@pytest.mark.parametrize(
    ("body", "unit", "message"),
    [
        ({"p": 1e9}, "per_mwh", "out of range"),
        ({"p": 5e6}, "cents_per_kwh", "out of range"),  # 50,000,000 $/MWh
        ({"p": float("inf")}, "per_mwh", "not finite"),
    ],
)
async def test_huge_feed_values_are_refused(server: Server, body: dict, unit: str, message: str) -> None:
    server.route("/p", json_reply(body))
    src = HttpFeed(f"{await server.start()}/p", FeedFormat(value_path="p", unit=unit))
    try:
        with pytest.raises(SourceError, match=message):
            await src.fetch()
    finally:
        await src.close()


async def test_huge_hashprice_inputs_are_refused(server: Server) -> None:
    mempool_routes(server, **{"/api/v1/prices": json_reply({"time": int(time.time()), "USD": 1e15})})
    server.route("/v1/hashrateindex/hashprice", luxor_handler({"data": {"priceUSD": 5e7}}))
    base = await server.start()
    mempool, luxor = MempoolHashprice(base), LuxorHashprice("hi.test-key", base)
    try:
        with pytest.raises(SourceError, match=r"prices\.USD must be > 0 and <= 1e\+09"):
            await mempool.fetch()
        with pytest.raises(SourceError, match="hashprice 5e\\+07 per PH/s per day is out of range"):
            await luxor.fetch()
    finally:
        await mempool.close()
        await luxor.close()
    with pytest.raises(ValueError, match="out of range"):
        StaticHashprice(1e12)
