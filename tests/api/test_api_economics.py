"""Economics, power estimates and prices in the API of a real daemon polling emulated miners."""

from __future__ import annotations

import asyncio
import time
from typing import Any

import aiohttp
import pytest
from openapi_schema_validator import OAS31Validator

from fleetd import __version__
from fleetd.api import ApiServer
from fleetd.api.openapi import openapi_document
from fleetd.config import parse_config
from fleetd.daemon.core import Daemon
from fleetd.economics.unit import economics, fleet_economics
from fleetd.sim.fleet import Fleet, Group

HASHPRICE = 35.0  # USD/PH/day, static: the S19 Pro lose money at it, the M50S earn
PER_KWH = 0.05  # flat tariff
POOL_FEE = 0.02
S19 = "127.26.0.1"  # 127.26.0.1-2: S19 Pro (stock firmware reports no power: the catalog stands in)
M50 = "127.26.0.11"  # 127.26.0.11-12: Whatsminer M50S (measures its power)


async def _until(cond, within: float = 10.0) -> None:
    deadline = time.monotonic() + within
    while not cond():
        assert time.monotonic() < deadline, "timed out"
        await asyncio.sleep(0.05)


def _check(doc: dict[str, Any], name: str, body: Any) -> None:
    OAS31Validator({**doc["components"]["schemas"][name], "components": doc["components"]}).validate(body)


def _expected(eco: dict[str, Any]) -> Any:
    """The pure function's result for the hashrate and power the API says it used."""
    return economics(eco["hashrate_ths"], eco["power_w"], HASHPRICE, PER_KWH * 1000, pool_fee=POOL_FEE)


@pytest.fixture
async def served():
    groups = [
        Group("Antminer S19 Pro", 2, S19, {"web": 8080}, ramp_s=0, jitter=0),
        Group("Whatsminer M50S_VH50", 2, M50, ramp_s=0, jitter=0),
    ]
    async with Fleet(groups) as miners:
        config = parse_config(
            {
                # one cycle, then nothing moves while the test reads (the interval is long)
                "polling": {"interval_s": 60, "jitter_s": 0, "timeout_s": 1.0, "connect_timeout_s": 1.0},
                "miners": [
                    {"host": m.host, "web_port": 8080, "site": "north", "nominal_power_w": 3000}
                    for m in miners
                ],
                "economics": {
                    "pool_fee": POOL_FEE,
                    "hashprice": [{"kind": "static", "per_ph_day": HASHPRICE}],
                    "tariff": {"kind": "flat", "price_per_kwh": PER_KWH},
                },
            }
        )
        daemon = Daemon(config, storage=False)
        api = ApiServer.for_daemon(daemon, "127.26.0.100:0")
        await api.start()
        await daemon.start()
        try:
            await _until(lambda: daemon.state.up() == 4 and daemon.state.economics is not None)
            async with aiohttp.ClientSession(api.url) as session:
                yield daemon, session
        finally:
            await daemon.stop()
            await api.stop()


async def _get(session: aiohttp.ClientSession, path: str, status: int = 200) -> Any:
    async with session.get(path) as resp:
        assert resp.status == status, await resp.text()
        return await resp.json()


async def test_miner_economics_match_the_pure_functions(served):
    _, session = served
    doc = openapi_document(__version__)
    body = await _get(session, "/api/miners")
    _check(doc, "MinerList", body)
    by_id = {m["id"]: m for m in body["miners"]}
    assert len(by_id) == 4
    for m in by_id.values():
        eco = m["economics"]
        assert eco is not None and eco["currency"] == "USD" and not eco["stale_inputs"]
        assert eco["hashprice_per_ph_day"] == HASHPRICE
        assert eco["electricity_per_mwh"] == pytest.approx(PER_KWH * 1000)
        want = _expected(eco)
        assert eco["revenue_per_day"] == pytest.approx(want.revenue_per_day, abs=1e-4)
        assert eco["power_cost_per_day"] == pytest.approx(want.power_cost_per_day, abs=1e-4)
        assert eco["profit_per_day"] == pytest.approx(want.profit_per_day, abs=1e-4)
        assert eco["power_cost_share"] == pytest.approx(want.power_cost_share, abs=1e-4)
        assert eco["efficiency_j_per_th"] == pytest.approx(want.efficiency_j_per_th, abs=0.01)
        assert eco["breakeven_per_mwh"] == pytest.approx(want.breakeven_per_mwh, abs=0.01)
        assert eco["breakeven_hashprice_per_ph_day"] == pytest.approx(
            want.breakeven_hashprice_per_ph_day, abs=1e-4
        )
        assert eco["profitable"] is (want.profit_per_day > 0)
    s19, m50 = by_id[S19], by_id[M50]
    # no power reported: the catalog's S19 Pro normal-mode figure, not the configured 3000 W
    assert s19["power_w"] is None
    assert (s19["power_est_w"], s19["power_source"]) == (3250.0, "catalog")
    assert (s19["economics"]["power_w"], s19["economics"]["power_source"]) == (3250.0, "catalog")
    assert m50["power_w"] > 0 and m50["power_source"] == "measured"
    assert m50["power_est_w"] == pytest.approx(m50["power_w"], abs=0.1)
    assert m50["economics"]["power_source"] == "measured"

    detail = await _get(session, f"/api/miners/{M50}")
    _check(doc, "MinerDetail", detail)
    assert detail["economics"] == m50["economics"]


async def test_fleet_economics_and_power_by_source(served):
    daemon, session = served
    doc = openapi_document(__version__)
    miners = (await _get(session, "/api/miners"))["miners"]
    fleet = await _get(session, "/api/fleet")
    _check(doc, "Fleet", fleet)
    measured = sum(m["power_w"] for m in miners if m["power_w"] is not None)
    assert fleet["power_w"] == pytest.approx(measured, abs=0.5)
    assert fleet["power_est_w"] == pytest.approx(measured + 2 * 3250.0, abs=0.5)
    assert fleet["power_by_source"]["catalog"] == {"miners": 2, "power_w": 6500.0}
    assert fleet["power_by_source"]["measured"]["miners"] == 2
    assert fleet["power_unreported"] == 2

    eco = fleet["economics"]
    want = fleet_economics(r.economics for r in daemon.state.miners.values() if r.economics)
    assert eco["currency"] == "USD" and eco["miners"] == 4
    assert eco["profit_per_day"] == pytest.approx(want.profit_per_day, abs=0.01)
    assert eco["revenue_per_day"] == pytest.approx(want.total.revenue_per_day, abs=0.01)
    assert eco["power_cost_per_day"] == pytest.approx(want.total.power_cost_per_day, abs=0.01)
    assert eco["fixed_cost_per_day"] == 0
    by_model = {m["model"]: m for m in eco["by_model"]}
    assert set(by_model) == {"Antminer S19 Pro", "Whatsminer M50S"}  # catalog names
    s19 = [m["economics"] for m in miners if m["model"] == "Antminer S19 Pro"]
    assert by_model["Antminer S19 Pro"]["profit_per_day"] == pytest.approx(
        sum(e["profit_per_day"] for e in s19), abs=0.01
    )
    assert eco["unprofitable"] == 2  # the S19 Pro
    assert by_model["Antminer S19 Pro"]["unprofitable"] == 2
    # the totals by firmware model carry the same profit
    totals = {m["model"]: m for m in fleet["by_model"]}
    assert totals["Whatsminer M50S_VH50"]["profit_per_day"] == pytest.approx(
        by_model["Whatsminer M50S"]["profit_per_day"], abs=0.02
    )
    assert totals["Antminer S19 Pro"]["unprofitable"] == 2 and fleet["unprofitable"] == 2


async def test_prices_endpoint(served):
    _, session = served
    doc = openapi_document(__version__)
    body = await _get(session, "/api/prices")
    _check(doc, "Prices", body)
    assert body["configured"] is True and body["currency"] == "USD" and body["pool_fee"] == POOL_FEE
    hp, el = body["hashprice"], body["electricity"]
    assert (hp["value"], hp["unit"], hp["source"], hp["stale"], hp["error"]) == (
        HASHPRICE,
        "USD/PH/day",
        "static",
        False,
        "",
    )
    assert 0 <= hp["age_s"] < 60 and hp["timestamp"] <= time.time()
    assert el["value"] == pytest.approx(PER_KWH * 1000) and el["unit"] == "USD/MWh"
    assert el["source"] and el["stale"] is False and el["age_s"] == 0


async def test_profitable_filter(served):
    _, session = served
    every = (await _get(session, "/api/miners"))["miners"]
    gaining = await _get(session, "/api/miners?profitable=true")
    losing = await _get(session, "/api/miners?profitable=false")
    assert gaining["total"] + losing["total"] == len(every) == 4
    assert {m["model"] for m in losing["miners"]} == {"Antminer S19 Pro"}
    assert all(m["economics"]["profit_per_day"] > 0 for m in gaining["miners"])
    assert all(m["economics"]["profit_per_day"] <= 0 for m in losing["miners"])
    err = await _get(session, "/api/miners?profitable=maybe", 400)
    assert "profitable must be true or false" in err["error"]


async def test_without_economics_prices_say_so():
    config = parse_config({"polling": {"interval_s": 60}})
    daemon = Daemon(config, storage=False)
    api = ApiServer.for_daemon(daemon, "127.26.0.101:0")
    await api.start()
    try:
        async with aiohttp.ClientSession(api.url) as s:
            body = await _get(s, "/api/prices")
            _check(openapi_document(__version__), "Prices", body)
            assert body["configured"] is False and body["hashprice"]["value"] is None
            assert body["hashprice"]["stale"] is True and body["electricity"]["error"]
            assert (await _get(s, "/api/fleet"))["economics"] is None
    finally:
        await api.stop()
