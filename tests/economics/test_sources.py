"""Every source against a local server serving the real response format, plus the bad cases."""

from __future__ import annotations

import asyncio
import json
import time
from datetime import UTC, datetime, timedelta

import pytest
from aiohttp import web

from fleetd.economics.ercot import CENTRAL
from fleetd.economics.hashprice import hashprice_per_ph_day
from fleetd.economics.sources.base import RateLimited, SourceError, retry_after_s
from fleetd.economics.sources.ercot import ErcotRealtime
from fleetd.economics.sources.feed import FeedFormat, HttpFeed
from fleetd.economics.sources.hashprice import (
    HashpriceChain,
    LuxorHashprice,
    MempoolHashprice,
    StaticHashprice,
)

from .conftest import Server, json_reply, text_reply, zipped

DIFFICULTY = 149_301_205_959_699.9

# -- mempool.space ------------------------------------------------------------------------------------


def mempool_routes(server: Server, *, price_time: float | None = None, **override) -> None:
    now = time.time() if price_time is None else price_time
    routes = {
        "/api/blocks/tip/height": text_reply("925000"),
        "/api/v1/mining/hashrate/3d": json_reply(
            {
                "hashrates": [{"timestamp": 1763510400, "avgHashrate": 1.07e21}],
                "difficulty": [
                    {"time": 1763400000, "height": 923328, "difficulty": DIFFICULTY, "adjustment": 1.02}
                ],
                "currentHashrate": 1.0712e21,
                "currentDifficulty": DIFFICULTY,
            }
        ),
        "/api/v1/mining/reward-stats/144": json_reply(
            {
                "startBlock": 924857,
                "endBlock": 925000,
                "totalReward": "45432000000",
                "totalFee": "432000000",
                "totalTx": "612345",
            }
        ),
        "/api/v1/prices": json_reply(
            {
                "time": int(now),
                "USD": 90000,
                "EUR": 83000,
                "GBP": 70000,
                "CAD": 125000,
                "CHF": 75000,
                "AUD": 140000,
                "JPY": 14000000,
            }
        ),
        "/api/v1/difficulty-adjustment": json_reply(
            {
                "progressPercent": 80.1,
                "difficultyChange": 1.53,
                "estimatedRetargetDate": 1764000000000,
                "remainingBlocks": 401,
                "remainingTime": 240000000,
                "previousRetarget": 1.02,
                "nextRetargetHeight": 925344,
                "timeAvg": 598000,
                "adjustedTimeAvg": 598000,
                "timeOffset": 0,
                "expectedBlocks": 1610.4,
            }
        ),
    }
    routes.update(override)
    for path, handler in routes.items():
        server.route(path, handler)


async def test_mempool_computes_hashprice_from_network_data(server: Server) -> None:
    mempool_routes(server, price_time=1_763_600_000)
    src = MempoolHashprice(await server.start())
    try:
        v = await src.fetch()
    finally:
        await src.close()
    expected = hashprice_per_ph_day(DIFFICULTY, 3.125, 4.32 / 144, 90000)
    assert v.per_ph_day == pytest.approx(expected)
    assert 30 < v.per_ph_day < 80
    assert v.unit == "USD/PH/day" and v.source == "mempool" and v.timestamp == 1_763_600_000
    details = dict(v.details)
    assert details["fees_btc_per_block"] == pytest.approx(0.03)
    assert details["subsidy_btc"] == 3.125 and details["difficulty_change_pct"] == 1.53


async def test_mempool_other_currency_and_optional_adjustment(server: Server) -> None:
    mempool_routes(server, **{"/api/v1/difficulty-adjustment": text_reply("down", status=502)})
    src = MempoolHashprice(await server.start(), currency="eur")
    try:
        v = await src.fetch()
    finally:
        await src.close()
    assert v.currency == "EUR"
    assert v.per_ph_day == pytest.approx(hashprice_per_ph_day(DIFFICULTY, 3.125, 0.03, 83000))


@pytest.mark.parametrize(
    ("override", "message"),
    [
        ({"/api/v1/prices": text_reply("oops", status=500)}, "HTTP 500"),
        ({"/api/v1/prices": json_reply({"time": 1, "EUR": 1})}, "no USD"),
        ({"/api/v1/prices": json_reply({"time": 1, "USD": 0})}, "must be > 0"),
        ({"/api/v1/mining/reward-stats/144": json_reply({"totalReward": "1"})}, "totalFee"),
        ({"/api/v1/mining/hashrate/3d": text_reply("")}, "empty reply"),
        ({"/api/v1/mining/hashrate/3d": text_reply("<html>")}, "not JSON"),
        ({"/api/blocks/tip/height": text_reply("tip")}, "unexpected payload"),
    ],
)
async def test_mempool_bad_replies(server: Server, override: dict, message: str) -> None:
    mempool_routes(server, **override)
    src = MempoolHashprice(await server.start())
    try:
        with pytest.raises(SourceError, match=message):
            await src.fetch()
    finally:
        await src.close()


async def test_mempool_timeout(server: Server) -> None:
    async def slow(request: web.Request) -> web.Response:
        await asyncio.sleep(0.8)
        return web.Response(text="925000")

    mempool_routes(server, **{"/api/blocks/tip/height": slow})
    src = MempoolHashprice(await server.start(), timeout_s=0.2)
    try:
        t0 = time.monotonic()
        with pytest.raises(SourceError, match="timed out"):
            await src.fetch()
        assert time.monotonic() - t0 < 1.5
    finally:
        await src.close()


async def test_unreachable_host_is_a_clear_error() -> None:
    src = MempoolHashprice("http://127.19.255.254:9", timeout_s=1)
    try:
        with pytest.raises(SourceError, match="mempool: "):
            await src.fetch()
    finally:
        await src.close()


# -- Luxor Hashrate Index -----------------------------------------------------------------------------


def luxor_series(prices: list[tuple[str, float]]) -> dict:
    return {"data": [{"timestamp": ts, "price": p} for ts, p in prices]}


def luxor_handler(payload: dict, key: str = "hi.test-key"):
    async def handler(request: web.Request) -> web.Response:
        if request.headers.get("X-Hi-Api-Key") != key:
            return web.json_response({"error": "Unauthorized"}, status=401)
        assert request.query["hashunit"] == "PHS" and request.query["currency"] == "USD"
        return web.json_response(payload)

    return handler


async def test_luxor_newest_point_with_api_key_and_throttle(server: Server) -> None:
    now = datetime.now(UTC).replace(microsecond=0)
    series = [
        ((now - timedelta(minutes=m)).isoformat().replace("+00:00", "Z"), 50.0 + m) for m in (30, 0, 15)
    ]
    server.route("/v1/hashrateindex/hashprice", luxor_handler(luxor_series(series)))
    src = LuxorHashprice("hi.test-key", await server.start(), min_interval_s=300)
    try:
        v = await src.fetch()
        assert v.per_ph_day == 50.0 and v.timestamp == now.timestamp() and v.source == "luxor"
        again = await src.fetch()  # within min_interval_s: served from the last reply, no request
        assert again is v and server.hits("/v1/hashrateindex/hashprice") == 1
    finally:
        await src.close()


async def test_luxor_current_shape_and_bad_key(server: Server) -> None:
    # the /hashprice/current object ({data: {priceBTC, priceUSD}}); without a timestamp it is as of the reply
    payload = {"data": {"priceBTC": 0.00052, "priceUSD": 47.1}}
    server.route("/v1/hashrateindex/hashprice", luxor_handler(payload))
    base = await server.start()
    good, bad = LuxorHashprice("hi.test-key", base), LuxorHashprice("wrong", base)
    try:
        v = await good.fetch()
        assert v.per_ph_day == 47.1 and v.timestamp == pytest.approx(time.time(), abs=5)
        with pytest.raises(SourceError, match="HTTP 401"):
            await bad.fetch()
    finally:
        await good.close()
        await bad.close()


async def test_luxor_backs_off_on_429(server: Server) -> None:
    async def limited(request: web.Request) -> web.Response:
        return web.json_response({"error": "Too Many Requests"}, status=429, headers={"Retry-After": "120"})

    server.route("/v1/hashrateindex/hashprice", limited)
    src = LuxorHashprice("hi.test-key", await server.start(), min_interval_s=0)
    try:
        with pytest.raises(RateLimited) as info:
            await src.fetch()
        assert info.value.retry_at == pytest.approx(time.time() + 120, abs=5)
        with pytest.raises(RateLimited):
            await src.fetch()  # still inside Retry-After: no request made
        assert server.hits("/v1/hashrateindex/hashprice") == 1
    finally:
        await src.close()


@pytest.mark.parametrize(
    "payload", [{"data": []}, {"data": [{"timestamp": "x"}]}, {"error": "x"}, {"data": 5}]
)
async def test_luxor_malformed(server: Server, payload: dict) -> None:
    server.route("/v1/hashrateindex/hashprice", luxor_handler(payload))
    src = LuxorHashprice("hi.test-key", await server.start())
    try:
        with pytest.raises(SourceError, match="unexpected payload"):
            await src.fetch()
    finally:
        await src.close()


def test_retry_after_forms() -> None:
    assert retry_after_s("30") == 30
    assert retry_after_s(None) == 60
    assert retry_after_s("garbage", default=5) == 5
    assert retry_after_s("Wed, 21 Oct 2015 07:28:00 GMT") == 0


# -- the fallback chain ------------------------------------------------------------------------------


async def test_chain_falls_back_and_flags_staleness(server: Server) -> None:
    server.route("/v1/hashrateindex/hashprice", text_reply("maintenance", status=503))
    mempool_routes(server)
    base = await server.start()
    luxor = LuxorHashprice("hi.test-key", base, min_interval_s=0)
    mempool = MempoolHashprice(base)
    chain = HashpriceChain([luxor, mempool, StaticHashprice(40.0)], max_age_s=3600)
    try:
        r = await chain.refresh()
        assert r.usable and r.value.source == "mempool"
        assert "luxor: HTTP 503" in r.error
        assert server.hits("/api/v1/prices") == 1
        # an hour and a half later nobody has refreshed: the value is kept, flagged stale, with its age
        later = chain.current(time.time() + 5400)
        assert later.stale and later.value is r.value and later.age_s == pytest.approx(5400, abs=5)
    finally:
        await chain.close()


async def test_chain_skips_a_feed_that_stopped_updating(server: Server) -> None:
    mempool_routes(server, price_time=time.time() - 7200)  # the price feed behind it froze 2 h ago
    chain = HashpriceChain([MempoolHashprice(await server.start()), StaticHashprice(40.0)], max_age_s=3600)
    try:
        r = await chain.refresh()
        assert r.usable and r.value.source == "static"
        assert "mempool: value is stale" in r.error
        assert chain.trackers[0].reading(time.time()).age_s == pytest.approx(7200, abs=5)
    finally:
        await chain.close()


async def test_chain_with_nothing_gives_missing_not_zero(server: Server) -> None:
    server.route("/v1/hashrateindex/hashprice", text_reply("", status=500))
    chain = HashpriceChain([LuxorHashprice("k", await server.start())], max_age_s=60)
    try:
        r = await chain.refresh()
        assert r.missing and r.value is None and r.stale and "HTTP 500" in r.error
    finally:
        await chain.close()


# -- ERCOT --------------------------------------------------------------------------------------------

HEADER = (
    "DeliveryDate,DeliveryHour,DeliveryInterval,SettlementPointName,SettlementPointType,"
    "SettlementPointPrice,DSTFlag"
)


def ercot_csv(rows: list[str]) -> str:
    return HEADER + "\r\n" + "\r\n".join(rows) + "\r\n"


def ercot_routes(server: Server, docs: list[dict], files: dict[str, bytes]) -> None:
    server.route(
        "/misapp/servlets/IceDocListJsonWS",
        json_reply({"ListDocsByRptTypeRes": {"DocumentList": [{"Document": d} for d in docs]}}),
    )

    async def download(request: web.Request) -> web.Response:
        body = files.get(request.query.get("doclookupId", ""))
        if body is None:
            return web.Response(status=404, text="not found")
        return web.Response(body=body, content_type="application/x-zip-compressed")

    server.route("/misdownload/servlets/mirDownload", download)


def ercot_doc(doc_id: str, published: str, stem: str) -> dict:
    return {
        "ExpiredDate": "2024-11-10T23:59:59-06:00",
        "ILMStatus": "EXT",
        "SecurityStatus": "P",
        "ContentSize": "123456",
        "Extension": "zip",
        "ReportTypeID": "12301",
        "FriendlyName": stem,
        # the real naming: cdr.<report type>.<16 zeros>.<publish date>.<publish time>.<friendly name>.zip
        "ConstructedName": f"cdr.00012301.0000000000000000.20241103.020002.{stem}.zip",
        "DocID": doc_id,
        "PublishDate": published,
        "ReportName": "Settlement Point Prices at Resource Nodes, Hubs and Load Zones",
    }


async def test_ercot_newest_csv_document(server: Server) -> None:
    new_rows = ercot_csv(
        [
            "11/03/2024,2,4,HB_WEST,HU,41.20,Y",
            "11/03/2024,2,4,HB_HOUSTON,HU,22.10,Y",
            "11/03/2024,2,4,LZ_WEST,LZ,45.00,Y",
        ]
    )
    old_rows = ercot_csv(["11/03/2024,2,3,HB_WEST,HU,39.00,Y"])
    docs = [
        ercot_doc("1001", "2024-11-03T01:45:03-06:00", "SPPHLZNP6905_20241103_0145_csv"),
        ercot_doc("1003", "2024-11-03T02:00:02-06:00", "SPPHLZNP6905_20241103_0200_xml"),
        ercot_doc("1002", "2024-11-03T02:00:02-06:00", "SPPHLZNP6905_20241103_0200_csv"),
    ]
    files = {
        "1001": zipped(
            "cdr.00012301.0000000000000000.20241103.014503.SPPHLZNP6905_20241103_0145.csv", old_rows
        ),
        "1002": zipped(
            "cdr.00012301.0000000000000000.20241103.020002.SPPHLZNP6905_20241103_0200.csv", new_rows
        ),
    }
    ercot_routes(server, docs, files)
    src = ErcotRealtime("hb_west", await server.start())
    try:
        points = await src.fetch()
        assert len(points) == 1
        p = points[0]
        assert p.per_mwh == 41.20 and p.location == "HB_WEST" and p.source == "ercot"
        start = datetime(2024, 11, 3, 1, 45, tzinfo=CENTRAL, fold=1)  # the repeated 01:45, in CST
        assert p.start == start.timestamp() and p.end - p.start == 900
        assert await src.fetch() == points  # same document: not downloaded again
        assert server.hits("/misdownload/servlets/mirDownload") == 1
        assert server.requests[0].query["reportTypeId"] == "12301"
    finally:
        await src.close()


@pytest.mark.parametrize(
    ("docs", "files", "message"),
    [
        ([], {}, "no CSV document"),
        ([ercot_doc("9", "2024-11-03T02:00:02-06:00", "x_csv")], {}, "HTTP 404"),
        ([ercot_doc("9", "2024-11-03T02:00:02-06:00", "x_csv")], {"9": b"<html>busy</html>"}, "not a zip"),
        (
            [ercot_doc("9", "2024-11-03T02:00:02-06:00", "x_csv")],
            {"9": zipped("a.csv", ercot_csv(["11/03/2024,2,4,HB_NORTH,HU,1.0,N"]))},
            "no prices for HB_WEST",
        ),
        (
            [ercot_doc("9", "2024-11-03T02:00:02-06:00", "x_csv")],
            {"9": zipped("a.csv", "garbage\n1\n")},
            "lacks columns",
        ),
    ],
)
async def test_ercot_bad_cases(server: Server, docs: list, files: dict, message: str) -> None:
    ercot_routes(server, docs, files)
    src = ErcotRealtime("HB_WEST", await server.start())
    try:
        with pytest.raises(SourceError, match=message):
            await src.fetch()
    finally:
        await src.close()


async def test_ercot_doc_list_error_and_garbage(server: Server) -> None:
    server.route("/misapp/servlets/IceDocListJsonWS", json_reply({"unexpected": True}))
    src = ErcotRealtime("HB_WEST", await server.start())
    try:
        with pytest.raises(SourceError, match="ListDocsByRptTypeRes"):
            await src.fetch()
    finally:
        await src.close()


# -- generic HTTP feed --------------------------------------------------------------------------------


async def test_http_feed_json_with_paths(server: Server) -> None:
    payload = {
        "site": "west",
        "data": [
            {"start": "2026-11-21T12:05:00Z", "end": "2026-11-21T12:10:00Z", "price": {"value": 31.5}},
            {"start": "2026-11-21T12:00:00Z", "end": "2026-11-21T12:05:00Z", "price": {"value": 29.0}},
        ],
    }
    server.route("/prices", json_reply(payload))
    fmt = FeedFormat(items_path="data", value_path="price.value", time_path="start", end_path="end")
    src = HttpFeed(f"{await server.start()}/prices", fmt, headers={"Authorization": "Bearer t"})
    try:
        points = await src.fetch()
    finally:
        await src.close()
    assert [p.per_mwh for p in points] == [29.0, 31.5]
    assert points[1].start == datetime(2026, 11, 21, 12, 5, tzinfo=UTC).timestamp()
    assert points[1].end - points[1].start == 300
    assert server.requests[0].headers["Authorization"] == "Bearer t"


async def test_http_feed_csv_in_cents_per_kwh(server: Server) -> None:
    server.route("/p.csv", text_reply("ts,cents\n1763726400,3.2\n1763727300,4.1\n", content_type="text/csv"))
    fmt = FeedFormat(kind="csv", value_path="cents", time_path="ts", unit="cents_per_kwh", interval_s=900)
    src = HttpFeed(f"{await server.start()}/p.csv", fmt)
    try:
        points = await src.fetch()
    finally:
        await src.close()
    assert [p.per_mwh for p in points] == pytest.approx([32.0, 41.0])
    assert points[0].start == 1763726400 and points[0].end == 1763726400 + 900


@pytest.mark.parametrize(
    ("body", "status", "message"),
    [
        ("", 200, "empty payload"),
        ("{not json", 200, "malformed payload"),
        (json.dumps({"data": []}), 200, "no records"),
        (json.dumps({"data": [{"price": {"value": "n/a"}, "start": 1}]}), 200, "not a number"),
        (json.dumps({"data": [{"price": {}, "start": 1}]}), 200, "malformed payload"),
        (json.dumps({"data": [{"price": {"value": 1}, "start": "yesterday"}]}), 200, "malformed payload"),
        ("bad gateway", 502, "HTTP 502"),
    ],
)
async def test_http_feed_bad_cases(server: Server, body: str, status: int, message: str) -> None:
    server.route("/prices", text_reply(body, status=status))
    fmt = FeedFormat(items_path="data", value_path="price.value", time_path="start")
    src = HttpFeed(f"{await server.start()}/prices", fmt)
    try:
        with pytest.raises(SourceError, match=message):
            await src.fetch()
    finally:
        await src.close()


async def test_runaway_reply_is_refused(server: Server) -> None:
    server.route("/big", text_reply("x" * 100_000))
    src = HttpFeed(f"{await server.start()}/big", FeedFormat())
    src.max_bytes = 1000
    try:
        with pytest.raises(SourceError, match="exceeds 1000 bytes"):
            await src.fetch()
    finally:
        await src.close()


async def test_ercot_and_feed_time_out(server: Server) -> None:
    async def slow(request: web.Request) -> web.Response:
        await asyncio.sleep(0.8)
        return web.json_response({})

    server.route("/misapp/servlets/IceDocListJsonWS", slow)
    server.route("/feed", slow)
    base = await server.start()
    for src in (
        ErcotRealtime("HB_WEST", base, timeout_s=0.2),
        HttpFeed(f"{base}/feed", FeedFormat(), timeout_s=0.2),
    ):
        try:
            with pytest.raises(SourceError, match=r"timed out after 0\.2s"):
                await src.fetch()
        finally:
            await src.close()
