"""The HTTP API over real loopback HTTP, on a hand-made FleetState."""

from __future__ import annotations

import time

import aiohttp
import pytest
from openapi_schema_validator import OAS31Validator
from openapi_spec_validator import validate

from fleetd.api import ApiServer, parse_listen
from fleetd.daemon.state import CycleStats, FleetState, Health, Labels, MinerRecord
from fleetd.model import Fault, Hashboard, Identity, Mode, Snapshot
from tests.conftest import loopback_host

BLOCK = 16


def _rec(
    host: str, model: str, site: str, health: Health, ths: float = 100.0, power: float | None = 3000.0
) -> MinerRecord:
    ident = Identity(
        vendor=model.split()[0].lower(), model=model, firmware="fw1", serial=f"SN{host}", host=host
    )
    snap = Snapshot(
        hashrate_ths=ths,
        expected_hashrate_ths=110.0,
        power_w=power,
        is_mining=ths > 0,
        mode=Mode.NORMAL,
        hashboards=(Hashboard(index=0, hashrate_ths=ths, chip_temp_c=70.0),),
        errors=(Fault(code="E1", message="fan slow"),) if power is None else (),
        uptime_s=600,
        polled_at=time.time(),
        temp_c=70.0 if power else float("inf"),  # inf as a broken firmware reports it
    )
    return MinerRecord(
        id=host,
        host=host,
        labels=Labels(site=site, rack="R1"),
        driver=ident.vendor,
        identity=ident,
        snapshot=snap,
        health=health,
        last_ok_at=time.time(),
        nominal_power_w=3400.0,
    )


def _state() -> FleetState:
    st = FleetState()
    recs = [
        _rec("127.16.0.1", "Antminer S19 Pro", "north", Health.UP, 110.0, 3250.0),
        _rec("127.16.0.2", "Antminer S19 Pro", "north", Health.UP, 100.0, 3000.0),
        _rec("127.16.0.3", "Antminer S21", "south", Health.DOWN, 200.0, 3500.0),
        _rec("127.16.0.4", "Whatsminer M50S_VH50", "south", Health.UP, 120.0, None),
        MinerRecord(id="127.16.0.5", host="127.16.0.5", labels=Labels(site="south")),
    ]
    st.miners = {r.id: r for r in recs}
    now = time.time()
    st.last_cycle = CycleStats(started_at=now - 2, ended_at=now - 1, polled=5, ok=3, failed=2, overran=False)
    return st


@pytest.fixture
async def api():
    state = _state()
    server = ApiServer(state, listen=f"{loopback_host(BLOCK)}:0", poll_interval_s=10)
    await server.start()
    async with aiohttp.ClientSession(server.url) as session:
        yield state, session
    await server.stop()


async def _get(session: aiohttp.ClientSession, path: str, status: int = 200) -> dict:
    async with session.get(path) as resp:
        assert resp.status == status, await resp.text()
        assert resp.content_type == "application/json"
        return await resp.json()


async def test_openapi_document_is_valid_and_matches_routes(api):
    _, session = api
    doc = await _get(session, "/api/openapi.json")
    validate(doc)
    # every documented path answers 200 with its documented content type and schema
    for path, item in doc["paths"].items():
        if "get" not in item or path.startswith(("/api/curtailment", "/api/events")):
            continue  # curtailment and events: tests/api/test_api_curtailment.py
        concrete = path.replace("{id}", "127.16.0.1")
        ((ctype, media),) = item["get"]["responses"]["200"]["content"].items()
        async with session.get(concrete) as resp:
            assert resp.status == 200, (path, await resp.text())
            assert resp.content_type == ctype, path
            if ctype != "application/json":
                continue
            body = await resp.json()
        OAS31Validator({**media["schema"], "components": doc["components"]}).validate(body)
    assert {"/healthz", "/api/fleet", "/api/miners", "/api/miners/{id}", "/api/openapi.json"} <= set(
        doc["paths"]
    )


async def test_app_routes_are_all_documented():
    state = _state()
    server = ApiServer(state, listen="127.0.0.1:0")
    from fleetd import __version__
    from fleetd.api.openapi import openapi_document

    documented = set(openapi_document(__version__)["paths"])
    served = {r.resource.canonical for r in server.app.router.routes() if r.method != "HEAD"}
    assert served == documented
    doc = openapi_document(__version__)["paths"]
    for r in server.app.router.routes():
        if r.method != "HEAD":
            assert r.method.lower() in doc[r.resource.canonical], (r.method, r.resource.canonical)


async def test_fleet_totals_count_only_up_miners(api):
    _, session = api
    body = await _get(session, "/api/fleet")
    assert (body["miners"], body["up"], body["down"], body["unknown"]) == (5, 3, 1, 1)
    assert body["hashrate_ths"] == pytest.approx(330.0)
    assert body["power_w"] == pytest.approx(6250.0)
    assert body["power_unreported"] == 1
    assert body["power_est_w"] == pytest.approx(6250.0 + 3400.0)  # nominal stands in for the unreported
    assert body["last_cycle"]["polled"] == 5
    models = {m["model"]: m for m in body["by_model"]}
    assert models["Antminer S19 Pro"]["up"] == 2
    assert models["Antminer S21"]["hashrate_ths"] == 0  # down: its stale figures do not count
    sites = {s["site"]: s for s in body["by_site"]}
    assert sites["south"]["miners"] == 3


async def test_power_estimate_and_economics_only_for_up_miners(api):
    from fleetd.economics.unit import economics

    state, session = api
    eco = economics(200.0, 3500.0, 50.0, 60.0, model="Antminer S21")
    state.miners["127.16.0.3"].economics = eco  # left over from before it went down
    state.miners["127.16.0.1"].economics = economics(110.0, 3250.0, 50.0, 60.0, power_source="measured")
    down = await _get(session, "/api/miners/127.16.0.3")
    assert down["economics"] is None and down["power_est_w"] is None and down["power_source"] == "unknown"
    up = await _get(session, "/api/miners/127.16.0.1")
    assert up["economics"]["profit_per_day"] == pytest.approx(0.11 * 50 - 3.25 * 24 * 0.06, abs=1e-4)
    assert (up["power_est_w"], up["power_source"]) == (3250.0, "measured")
    unreported = await _get(session, "/api/miners/127.16.0.4")
    assert (unreported["power_est_w"], unreported["power_source"]) == (3400.0, "configured")
    fleet = await _get(session, "/api/fleet")
    assert fleet["power_by_source"] == {
        "configured": {"miners": 1, "power_w": 3400.0},
        "measured": {"miners": 2, "power_w": 6250.0},
    }
    assert fleet["economics"] is None  # no fleet economics computed
    body = await _get(session, "/api/miners?profitable=false")
    assert body["total"] == 0  # the down miner's stale economics do not count
    body = await _get(session, "/api/miners?profitable=true")
    assert [m["id"] for m in body["miners"]] == ["127.16.0.1"]


async def test_miners_filters(api):
    _, session = api
    assert (await _get(session, "/api/miners"))["total"] == 5
    body = await _get(session, "/api/miners?site=north")
    assert [m["id"] for m in body["miners"]] == ["127.16.0.1", "127.16.0.2"]
    body = await _get(session, "/api/miners?model=antminer%20s21&model=Whatsminer%20M50S_VH50")
    assert {m["id"] for m in body["miners"]} == {"127.16.0.3", "127.16.0.4"}
    body = await _get(session, "/api/miners?state=down,unknown")
    assert {m["id"] for m in body["miners"]} == {"127.16.0.3", "127.16.0.5"}
    body = await _get(session, "/api/miners?site=south&state=up")
    assert [m["id"] for m in body["miners"]] == ["127.16.0.4"]
    assert body["miners"][0]["power_w"] is None and body["miners"][0]["faults"] == 1


async def test_miners_pagination_and_bad_params(api):
    _, session = api
    body = await _get(session, "/api/miners?limit=2&offset=1")
    assert (body["total"], body["count"], body["offset"]) == (5, 2, 1)
    assert [m["id"] for m in body["miners"]] == ["127.16.0.2", "127.16.0.3"]
    err = await _get(session, "/api/miners?state=sleeping", 400)
    assert "state must be one of" in err["error"]
    err = await _get(session, "/api/miners?limit=ten", 400)
    assert "limit" in err["error"]


async def test_miner_detail_and_404(api):
    _, session = api
    body = await _get(session, "/api/miners/127.16.0.1")
    assert body["identity"]["serial"] == "SN127.16.0.1"
    assert body["snapshot"]["hashboards"][0]["chip_temp_c"] == 70.0
    assert body["snapshot"]["mode"] == "normal"
    broken = await _get(session, "/api/miners/127.16.0.4")
    assert broken["temp_c"] is None and broken["snapshot"]["temp_c"] is None  # inf -> null, still valid JSON
    never = await _get(session, "/api/miners/127.16.0.5")
    assert never["snapshot"] is None and never["state"] == "unknown"
    err = await _get(session, "/api/miners/10.0.0.9", 404)
    assert "10.0.0.9" in err["error"]
    err = await _get(session, "/nope", 404)
    assert err["error"]


async def test_miner_ids_with_ports(api):
    state, session = api
    rec = _rec("127.16.0.9", "Antminer S21", "north", Health.UP)
    rec.id = "127.16.0.9:4029"  # a second API port on one address gets an id with the port
    state.miners[rec.id] = rec
    body = await _get(session, "/api/miners/127.16.0.9:4029")
    assert body["id"] == "127.16.0.9:4029"
    body = await _get(session, "/api/miners/127.16.0.9%3A4029")
    assert body["host"] == "127.16.0.9"


async def test_healthz_ok_then_stalled(api):
    state, session = api
    body = await _get(session, "/healthz")
    assert body["status"] == "ok" and body["up"] == 3
    old = time.time() - 3600
    state.last_cycle = CycleStats(started_at=old - 1, ended_at=old, polled=5, ok=5, failed=0, overran=False)
    body = await _get(session, "/healthz", 503)
    assert body["status"] == "stalled"


async def test_healthz_starting_before_first_cycle():
    state = FleetState()
    server = ApiServer(lambda: state, listen="127.0.0.1:0", poll_interval_s=10)
    await server.start()
    try:
        async with aiohttp.ClientSession(server.url) as session:
            body = await _get(session, "/healthz")
            assert body["status"] == "starting" and body["last_cycle_ended_at"] is None
    finally:
        await server.stop()


def test_parse_listen():
    assert parse_listen("127.0.0.1:8787") == ("127.0.0.1", 8787)
    assert parse_listen(":9000") == ("127.0.0.1", 9000)
    assert parse_listen("0.0.0.0") == ("0.0.0.0", 8787)
    assert parse_listen("[::1]:8080") == ("::1", 8080)
    with pytest.raises(ValueError, match="port"):
        parse_listen("127.0.0.1:http")
    with pytest.raises(ValueError, match="range"):
        parse_listen("127.0.0.1:70000")


async def test_default_bind_is_localhost():
    assert ApiServer(FleetState()).host == "127.0.0.1"
