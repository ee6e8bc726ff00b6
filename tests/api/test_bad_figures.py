"""Over HTTP: one miner's impossible figures never cost the others their rows, nor the fleet its totals;
query values out of range (10**23, negative, NaN, text) are a 400 with a clear error, never a 500."""

from __future__ import annotations

import aiohttp
import pytest

from fleetd.api import ApiServer
from fleetd.api.views import fleet_totals, miner_summary
from tests.conftest import loopback_host
from tests.exporters.synthetic import fleet, with_bad_miners

BLOCK = 16
TOTALS = ("hashrate_ths", "expected_hashrate_ths", "power_w", "power_est_w", "profit_per_day")


@pytest.fixture
async def bad_api():
    state = fleet(30)
    good = {mid: miner_summary(rec) for mid, rec in state.miners.items()}
    clean = fleet_totals(state)
    bad = with_bad_miners(state)
    server = ApiServer(state, listen=f"{loopback_host(BLOCK)}:0", poll_interval_s=10)
    await server.start()
    async with aiohttp.ClientSession(server.url) as session:
        yield session, good, clean, bad
    await server.stop()


async def _get(session: aiohttp.ClientSession, path: str, status: int = 200) -> dict:
    async with session.get(path) as resp:
        assert resp.status == status, (path, await resp.text())
        assert resp.content_type == "application/json"
        return await resp.json()


async def test_miner_list_keeps_every_good_miner_and_skips_only_the_unreadable(bad_api) -> None:
    session, good, _clean, bad = bad_api
    doc = await _get(session, "/api/miners")
    rows = {m["id"]: m for m in doc["miners"]}
    assert doc["total"] == len(good) + len(bad)
    assert doc["skipped"] == 1 and doc["count"] == doc["total"] - 1 and "bad-raising" not in rows
    for mid, summary in good.items():
        assert rows[mid] == summary, mid  # exactly as without the bad miners
    for mid in bad[:-1]:  # shown, with their impossible figures as null
        assert rows[mid]["state"] == "up"
        assert rows[mid]["hashrate_ths"] is rows[mid]["power_w"] is rows[mid]["uptime_s"] is None, mid
    # pages and filters over a list with bad miners in it
    seen: list[str] = []
    for offset in range(0, doc["total"], 7):
        page = await _get(session, f"/api/miners?limit=7&offset={offset}")
        assert page["total"] == doc["total"] and page["count"] + page["skipped"] <= 7
        seen += [m["id"] for m in page["miners"]]
    assert seen == [m["id"] for m in doc["miners"]]
    site0 = await _get(session, "/api/miners?site=site-0&state=up")
    assert {m["id"] for m in site0["miners"]} >= set(bad[:-1])
    assert (await _get(session, "/api/miners?profitable=true"))["count"] >= 1


async def test_fleet_totals_exclude_impossible_figures(bad_api) -> None:
    session, _good, clean, bad = bad_api
    doc = await _get(session, "/api/fleet")
    for key in TOTALS:
        assert doc[key] == pytest.approx(clean[key]), key
    assert doc["up"] == clean["up"] + len(bad) - 1  # the unreadable one is skipped
    site0 = next(s for s in doc["by_site"] if s["site"] == "site-0")
    clean0 = next(s for s in clean["by_site"] if s["site"] == "site-0")
    assert site0["hashrate_ths"] == pytest.approx(clean0["hashrate_ths"])


async def test_miner_detail_of_bad_miners(bad_api) -> None:
    session, good, _clean, bad = bad_api
    some = next(iter(good))
    assert (await _get(session, f"/api/miners/{some}"))["id"] == some
    for mid in bad[:-1]:  # 10**30 integers (orjson refuses them) are null, NaN and inf too
        doc = await _get(session, f"/api/miners/{mid}")
        assert doc["id"] == mid and doc["snapshot"] is not None
    big = await _get(session, "/api/miners/bad-big-int")
    assert big["snapshot"]["uptime_s"] is None and big["snapshot"]["hw_errors"] is None
    err = await _get(session, "/api/miners/bad-raising", 500)  # only its own page fails, clearly
    assert "bad-raising" in err["error"]


@pytest.mark.parametrize(
    "query",
    [
        "offset=" + str(10**23),
        "limit=" + str(10**23),
        "offset=-1",
        "limit=-5",
        "offset=nan",
        "limit=inf",
        "offset=1e3",
        "offset=abc",
        "offset=" + "9" * 5000,
        "offset=%D9%A1",  # an Arabic-Indic digit one
        "offset=1_0",
        "offset=--1",
    ],
)
async def test_bad_query_values_are_a_400(bad_api, query: str) -> None:
    session = bad_api[0]
    doc = await _get(session, f"/api/miners?{query}", 400)
    name = query.split("=")[0]
    assert name in doc["error"]


@pytest.mark.parametrize(
    "path",
    [
        "/api/health?worst=" + str(10**23),
        "/api/health?worst=-1",
        "/api/health?worst=%C2%B2",  # a superscript two: a digit to str.isdigit, not to int()
        "/api/curtailment?offset=" + str(10**23),
        "/api/curtailment?limit=nan",
        "/api/events?limit=" + str(10**23),
        "/api/events?since=nan",
        "/api/events?since=1e400",
    ],
)
async def test_other_views_refuse_bad_query_values(bad_api, path: str) -> None:
    session = bad_api[0]
    async with session.get(path) as resp:
        assert resp.status == 400, (path, await resp.text())
        assert "error" in await resp.json()
