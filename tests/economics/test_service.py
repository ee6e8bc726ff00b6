"""EconomicsConfig validation and the service the daemon schedules and reads."""

from __future__ import annotations

import asyncio
import json
import time
import tomllib
from pathlib import Path

import pytest
from aiohttp import web
from apscheduler.schedulers.asyncio import AsyncIOScheduler
from pydantic import ValidationError

from fleetd.daemon.state import FleetState, MinerRecord
from fleetd.economics.config import EconomicsConfig
from fleetd.economics.service import (
    EconomicsConfigError,
    EconomicsService,
    MarketPrices,
    TariffPrices,
    UrdbPrices,
)
from fleetd.model import Identity, Mode, Snapshot

from .conftest import Server, json_reply
from .test_sources import mempool_routes
from .test_tariffs import urdb_record

EXAMPLE = Path(__file__).resolve().parents[2] / "config" / "economics.example.toml"


def cfg(**kw) -> EconomicsConfig:
    return EconomicsConfig.model_validate(kw)


def test_example_config_parses() -> None:
    c = EconomicsConfig.model_validate(tomllib.loads(EXAMPLE.read_text())["economics"])
    assert [h.kind for h in c.hashprice] == ["luxor", "mempool", "static"]
    assert c.tariff.kind == "flat" and c.adders_total_per_mwh == pytest.approx(6.0)


@pytest.mark.parametrize(
    ("data", "message"),
    [
        ({"currency": "dollars"}, "3-letter"),
        ({"pool_fee": 1.5}, "less than 1"),
        ({"tariff": {"kind": "tou", "periods": {"a": 0.1}, "default": "b"}}, "unknown TOU periods"),
        (
            {"tariff": {"kind": "tou", "periods": {"a": 0.1}, "default": "a", "timezone": "Mars/Olympus"}},
            "time zone",
        ),
        ({"tariff": {"kind": "http", "url": "http://x", "unit": "per_gallon"}}, "unit must be"),
        ({"tariff": {"kind": "solar"}}, "kind"),
        ({"hashprice": [{"kind": "static", "per_ph_day": 0}]}, "greater than 0"),
        ({"tarif": {"kind": "flat", "price_per_kwh": 0.05}}, "Extra inputs"),
        ({"tariff": {"kind": "flat", "price_per_kwh": 5e6}}, "less than or equal to 100"),
        ({"tariff": {"kind": "tou", "periods": {"a": -1e6}, "default": "a"}}, "than or equal to -100"),
        ({"adders_per_mwh": {"retail": float("inf")}}, "finite number"),
        ({"hashprice": [{"kind": "static", "per_ph_day": 1e12}]}, "less than or equal to 1000000"),
    ],
)
def test_config_errors(data: dict, message: str) -> None:
    with pytest.raises(ValidationError, match=message):
        EconomicsConfig.model_validate(data)


def test_negative_flat_price_is_valid() -> None:
    cfg = EconomicsConfig.model_validate({"tariff": {"kind": "flat", "price_per_kwh": -0.015}})
    assert EconomicsService(cfg).energy_price(0).value.per_mwh == pytest.approx(-15.0)


async def test_static_and_flat_with_adders() -> None:
    svc = EconomicsService(
        cfg(
            hashprice=[{"kind": "static", "per_ph_day": 34.0}],
            tariff={"kind": "flat", "price_per_kwh": 0.05},
            adders_per_mwh={"transmission": 7.0, "retail": 3.0},
            pool_fee=0.0,
        )
    )
    assert [j.name for j in svc.jobs()] == ["economics.hashprice"]
    await svc.refresh_all()
    el = svc.electricity_price()
    assert el.usable and el.value.per_mwh == pytest.approx(60.0) and el.value.source == "flat+adders"
    assert svc.energy_price().value.per_mwh == pytest.approx(50.0)
    snap = Snapshot(hashrate_avg_ths=140.0, is_mining=True, mode=Mode.NORMAL)
    r = svc.evaluate(snap, Identity("antminer", "Antminer S19 XP"))
    assert r.power_source == "catalog" and r.power_cost_share == pytest.approx(0.91, abs=0.01)
    assert not r.stale_inputs
    await svc.close()


async def test_nothing_configured_is_missing_not_zero() -> None:
    svc = EconomicsService(cfg())
    assert svc.hashprice().missing and svc.electricity_price().missing
    r = svc.evaluate(Snapshot(hashrate_ths=100.0, power_w=3000.0, is_mining=True), None)
    assert r.revenue_per_day is None and r.power_cost_per_day is None and r.stale_inputs
    assert svc.jobs() == []


async def test_http_feed_that_stops_updating(server: Server) -> None:
    now = time.time()
    state = {"fail": False}

    async def feed(request: web.Request) -> web.Response:
        if state["fail"]:
            return web.Response(status=503, text="down")
        return web.json_response({"price_usd_mwh": 42.0, "interval_start": now - 300, "interval_end": now})

    server.route("/rt", feed)
    mempool_routes(server)
    base = await server.start()
    svc = EconomicsService(
        cfg(
            hashprice=[{"kind": "mempool", "base_url": base}],
            tariff={
                "kind": "http",
                "url": f"{base}/rt",
                "value_path": "price_usd_mwh",
                "time_path": "interval_start",
                "end_path": "interval_end",
                "max_age_s": 900,
            },
        )
    )
    try:
        assert isinstance(svc.prices, MarketPrices)
        assert {j.name for j in svc.jobs()} == {"economics.hashprice", "economics.electricity"}
        await svc.refresh_all()
        assert svc.hashprice().usable and svc.hashprice().value.source == "mempool"
        r = svc.electricity_price(now + 60)
        assert r.usable and r.value.per_mwh == 42.0 and r.age_s == pytest.approx(60)

        state["fail"] = True
        await svc.refresh_all()
        r = svc.electricity_price(now + 60)
        assert r.value.per_mwh == 42.0 and not r.stale and "HTTP 503" in r.error
        r = svc.electricity_price(now + 1000)
        assert r.stale and r.value.per_mwh == 42.0 and r.age_s == pytest.approx(1000)
        e = svc.evaluate(Snapshot(hashrate_ths=100.0, power_w=3000.0, is_mining=True), None, now=now + 1000)
        assert e.stale_inputs and e.power_cost_per_day == pytest.approx(3.0 * 24 * 42.0 / 1000)
        # the history replays what applied at a past instant
        assert svc.prices.history.at(now - 100).per_mwh == 42.0
    finally:
        await svc.close()


async def test_ercot_config_builds_market_prices() -> None:
    svc = EconomicsService(cfg(tariff={"kind": "ercot", "settlement_point": "lz_west"}))
    assert isinstance(svc.prices, MarketPrices) and svc.prices.source.settlement_point == "LZ_WEST"
    await svc.close()


def test_urdb_file_and_errors(tmp_path: Path) -> None:
    f = tmp_path / "rate.json"
    f.write_text(json.dumps(urdb_record()))
    svc = EconomicsService(cfg(tariff={"kind": "urdb", "file": str(f), "timezone": "America/Chicago"}))
    assert isinstance(svc.prices, TariffPrices) and svc.prices.fixed_per_day > 0
    f.write_text("{")
    with pytest.raises(EconomicsConfigError, match="URDB file"):
        EconomicsService(cfg(tariff={"kind": "urdb", "file": str(f), "timezone": "UTC"}))
    with pytest.raises(EconomicsConfigError, match="cannot read"):
        EconomicsService(cfg(tariff={"kind": "urdb", "file": str(tmp_path / "no.json"), "timezone": "UTC"}))


def test_luxor_needs_a_key(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("FLEETD_TEST_LUXOR", raising=False)
    with pytest.raises(EconomicsConfigError, match="FLEETD_TEST_LUXOR"):
        EconomicsService(cfg(hashprice=[{"kind": "luxor", "api_key_env": "FLEETD_TEST_LUXOR"}]))
    monkeypatch.setenv("FLEETD_TEST_LUXOR", "hi.k")
    assert EconomicsService(cfg(hashprice=[{"kind": "luxor", "api_key_env": "FLEETD_TEST_LUXOR"}])).jobs()


async def test_scheduled_with_apscheduler_and_fleet_evaluation(server: Server) -> None:
    server.route("/p", json_reply({"price": 0.05}))
    base = await server.start()
    svc = EconomicsService(
        cfg(
            hashprice=[{"kind": "static", "per_ph_day": 50.0}],
            tariff={"kind": "http", "url": f"{base}/p", "unit": "per_kwh", "refresh_s": 60},
            default_power_w=3000,
        )
    )
    scheduler = AsyncIOScheduler()
    svc.schedule(scheduler)
    scheduler.start()
    try:
        for _ in range(100):
            if svc.electricity_price().usable and svc.hashprice().usable:
                break
            await asyncio.sleep(0.02)
        assert svc.electricity_price().value.per_mwh == pytest.approx(50.0)
        fleet = FleetState()
        fleet.miners["a"] = MinerRecord("a", "127.19.9.1", identity=Identity("antminer", "Antminer S21"))
        fleet.miners["a"].snapshot = Snapshot(hashrate_avg_ths=200.0, is_mining=True, mode=Mode.NORMAL)
        fleet.miners["b"] = MinerRecord("b", "127.19.9.2", nominal_power_w=3400.0)
        fleet.miners["b"].snapshot = Snapshot(hashrate_ths=100.0, is_mining=True)
        fleet.miners["c"] = MinerRecord("c", "127.19.9.3")  # never polled
        per_unit, totals = svc.evaluate_fleet(fleet.miners.values())
        assert set(per_unit) == {"a", "b"}
        assert per_unit["a"].power_source == "catalog" and per_unit["b"].power_source == "configured"
        assert per_unit["b"].power_w == 3400.0
        assert totals.total.units == 2 and totals.total.revenue_per_day == pytest.approx(0.3 * 50.0)
    finally:
        scheduler.shutdown(wait=False)
        await svc.close()


async def test_urdb_rate_fetched_from_openei_by_label(
    server: Server, monkeypatch: pytest.MonkeyPatch
) -> None:
    label = "5f1a2b3c4d5e6f7a8b9c0d1e"
    replies = [urdb_record(), {"items": [{"label": label, "energyratestructure": []}]}]  # v8 reply, then junk

    async def utility_rates(request: web.Request) -> web.Response:
        q = request.query
        if q.get("api_key") != "openei-test-key":  # what api.data.gov answers to a bad key
            body = {"error": {"code": "API_KEY_INVALID", "message": "An invalid api_key was supplied."}}
            return web.json_response(body, status=403)
        assert (q["version"], q["format"], q["detail"], q["getpage"]) == ("8", "json", "full", label)
        return web.json_response(replies.pop(0) if replies else {"items": []})

    server.route("/utility_rates", utility_rates)
    base = await server.start()
    monkeypatch.setenv("OPENEI_API_KEY", "openei-test-key")
    tariff = {"kind": "urdb", "label": label, "base_url": base, "timezone": "America/Chicago"}
    svc = EconomicsService(cfg(tariff=tariff))
    try:
        assert isinstance(svc.prices, UrdbPrices)
        assert svc.energy_price(0).missing and "not fetched yet" in svc.energy_price(0).error
        assert [j.interval_s for j in svc.jobs()] == [86400.0]
        await svc.refresh_all()
        july_peak = 1_720_040_400.0  # 2024-07-03 16:00 CDT, a Wednesday
        r = svc.energy_price(july_peak)
        assert r.usable and r.value.per_mwh == pytest.approx(125.0) and svc.prices.fixed_per_day > 0
        await svc.refresh_all()  # a malformed record: the last good tariff stays, the error is shown
        r = svc.energy_price(july_peak)
        assert r.usable and r.value.per_mwh == pytest.approx(125.0) and "energyratestructure" in r.error
        await svc.refresh_all()
        assert "no rate with label" in svc.energy_price(july_peak).error
    finally:
        await svc.close()
    monkeypatch.setenv("OPENEI_API_KEY", "wrong")
    svc = EconomicsService(cfg(tariff=tariff))
    try:
        await svc.refresh_all()
        r = svc.energy_price(july_peak)
        assert r.missing and "HTTP 403" in r.error
    finally:
        await svc.close()
    monkeypatch.delenv("OPENEI_API_KEY")
    with pytest.raises(EconomicsConfigError, match="OPENEI_API_KEY is unset"):
        EconomicsService(cfg(tariff=tariff))
    with pytest.raises(ValidationError, match="exactly one of file"):
        cfg(tariff={"kind": "urdb", "timezone": "UTC"})
