"""The curtailment routes and /api/events over real loopback HTTP: reads, token-guarded writes, OpenAPI."""

from __future__ import annotations

import time
from pathlib import Path

import aiohttp
import pytest
from openapi_schema_validator import OAS31Validator

from fleetd import __version__
from fleetd.api import ApiServer
from fleetd.api.curtail_routes import Token, load_token
from fleetd.api.openapi import openapi_document
from fleetd.config import SecretRef, parse_config
from fleetd.daemon.core import Daemon
from fleetd.daemon.events import Event, EventKind
from tests.conftest import loopback_host

from .helpers import API_BLOCK, TOKEN, FakeDaemon, fake_daemon

BLOCK = API_BLOCK
AUTH = {"Authorization": f"Bearer {TOKEN}"}
DOC = openapi_document(__version__)


def _check(schema_name: str, body: object) -> None:
    OAS31Validator({**DOC["components"]["schemas"][schema_name], "components": DOC["components"]}).validate(
        body
    )


async def _serve(d: FakeDaemon, token: Token | None):
    server = ApiServer(lambda: d.state, listen=f"{loopback_host(BLOCK)}:0", daemon=d, token=token)
    await server.start()
    return server


@pytest.fixture
async def api(tmp_path: Path):
    d = fake_daemon(tmp_path)
    server = await _serve(d, Token(TOKEN.encode()))
    async with aiohttp.ClientSession(server.url) as session:
        yield d, session
    await server.stop()


async def _call(s: aiohttp.ClientSession, method: str, path: str, status: int, **kw: object) -> dict:
    async with s.request(method, path, **kw) as r:
        assert r.status == status, (r.status, await r.text())
        assert r.content_type == "application/json"
        return await r.json()


async def test_fleet_and_miner_status_match_the_openapi_document(api) -> None:
    _, s = api
    body = await _call(s, "GET", "/api/curtailment", 200)
    _check("Curtailment", body)
    assert body["configured"] and body["enforce"] is False  # config default: dry run; status says enforce
    assert body["active_rules"] == ["economic", "strike"]
    assert (body["load_kw"], body["target_kw"], body["headroom_kw"], body["shed_kw"]) == (
        12.5,
        15.0,
        2.5,
        6.75,
    )
    assert body["commands"]["failed"] == {"sleep": 3}
    assert body["by_target"] == {"run": 2, "sleep": 3, "limit": 1}
    assert body["by_actual"]["unresponsive"] == 1 and body["not_controllable"] == 1
    assert body["total"] == 6 and body["count"] == 6
    first = body["miners"][0]
    assert (first["target"], first["actual"], first["reason"]["kind"]) == ("sleep", "sleeping", "economic")
    assert first["site"] == "north" and first["model"] == "Antminer S19 Pro"
    one = await _call(s, "GET", "/api/curtailment/10.9.0.3", 200)
    _check("MinerCurtailment", one)
    assert one["target"] == "limit 2500 W" and one["power_limit_w"] == 2500
    four = await _call(s, "GET", "/api/curtailment/10.9.0.4", 200)
    assert four["verified_at"] is None and four["error"] == "not complied" and four["failures"] == 3
    await _call(s, "GET", "/api/curtailment/10.9.9.9", 404)
    for path, schema in (
        ("/api/curtailment/pins", "PinList"),
        ("/api/curtailment/dr", "DemandEventList"),
        ("/api/curtailment/enforce", "Enforce"),
        ("/api/events", "EventList"),
    ):
        _check(schema, await _call(s, "GET", path, 200))


@pytest.mark.parametrize(
    ("query", "ids"),
    [
        ({"site": "south"}, ["10.9.0.4", "10.9.0.5", "10.9.0.6"]),
        ({"model": "antminer s21"}, ["10.9.0.2", "10.9.0.4", "10.9.0.6"]),
        ({"state": "sleeping,limited"}, ["10.9.0.1", "10.9.0.3"]),
        ({"target": "sleep", "site": "north"}, ["10.9.0.1", "10.9.0.2"]),
        ({"limit": "2", "offset": "1"}, ["10.9.0.2", "10.9.0.3"]),
    ],
)
async def test_filters(api, query: dict, ids: list[str]) -> None:
    _, s = api
    body = await _call(s, "GET", "/api/curtailment", 200, params=query)
    assert [m["id"] for m in body["miners"]] == ids


@pytest.mark.parametrize(
    "query",
    [{"state": "asleep"}, {"target": "off"}, {"limit": "-1"}, {"offset": "x"}, {"limit": "1e3"}],
)
async def test_bad_filters_are_400(api, query: dict) -> None:
    _, s = api
    body = await _call(s, "GET", "/api/curtailment", 400, params=query)
    _check("Error", body)


async def test_pin_dr_and_enforce_writes_with_the_token(api) -> None:
    d, s = api
    until = "2099-01-01T00:00:00Z"
    pin = await _call(
        s,
        "POST",
        "/api/curtailment/pins",
        201,
        headers=AUTH,
        json={"action": "sleep", "sites": ["north"], "until": until},
    )
    _check("Pin", pin)
    assert pin["until"] == 4070908800.0 and pin["source"] == "api"
    assert [p.id for p in d.curtail_controls.controls().pins] == [pin["id"]]
    ev = await _call(
        s, "POST", "/api/curtailment/dr", 201, headers=AUTH, json={"target_kw": 500, "duration_s": 3600}
    )
    _check("DemandEvent", ev)
    assert ev["active"] and ev["end"] - ev["start"] == pytest.approx(3600)
    fleet = await _call(s, "GET", "/api/curtailment", 200)
    assert [p["id"] for p in fleet["pins"]] == [pin["id"]] and [e["id"] for e in fleet["dr_events"]] == [
        ev["id"]
    ]
    sw = await _call(s, "POST", "/api/curtailment/enforce", 200, headers=AUTH, json={"enforce": True})
    assert sw == {"configured": True, "enforce": True, "enforce_override": True, "enforce_configured": False}
    sw = await _call(s, "DELETE", "/api/curtailment/enforce", 200, headers=AUTH)
    assert sw["enforce"] is False and sw["enforce_override"] is None
    await _call(s, "DELETE", f"/api/curtailment/pins/{pin['id']}", 200, headers=AUTH)
    await _call(s, "DELETE", f"/api/curtailment/pins/{pin['id']}", 404, headers=AUTH)
    await _call(s, "DELETE", f"/api/curtailment/dr/{ev['id']}", 200, headers=AUTH)
    assert d.curtail_controls.controls().pins == () and d.curtail_controls.scheduled_events() == ()
    kinds = [
        e["kind"]
        for e in (
            await _call(s, "GET", "/api/events", 200, params={"kind": "curtail_pin_set,curtail_dr_started"})
        )["events"]
    ]
    assert kinds == ["curtail_pin_set", "curtail_dr_started"]


@pytest.mark.parametrize(
    ("path", "body"),
    [
        ("/api/curtailment/pins", {"action": "sleep", "miners": ["10.9.0.1"]}),
        ("/api/curtailment/dr", {"target_kw": 100, "duration_s": 60}),
        ("/api/curtailment/enforce", {"enforce": True}),
    ],
)
@pytest.mark.parametrize(
    "headers",
    [{}, {"Authorization": "Bearer wrong"}, {"Authorization": TOKEN}, {"Authorization": f"Basic {TOKEN}"}],
)
async def test_writes_without_the_right_token_are_401_and_change_nothing(api, path, body, headers) -> None:
    d, s = api
    async with s.post(path, json=body, headers=headers) as r:
        assert r.status == 401 and r.headers["WWW-Authenticate"].startswith("Bearer")
        text = await r.text()
    assert TOKEN not in text
    c = d.curtail_controls
    assert c.controls().pins == () and c.scheduled_events() == () and c.enforce_override is None
    assert not (c.path).exists()


async def test_without_a_configured_token_writes_are_off(tmp_path: Path) -> None:
    d = fake_daemon(tmp_path)
    server = await _serve(d, None)
    try:
        async with aiohttp.ClientSession(server.url) as s:
            body = await _call(
                s, "POST", "/api/curtailment/enforce", 403, headers=AUTH, json={"enforce": True}
            )
            assert "no API token is configured" in body["error"]
            assert d.curtail_controls.enforce_override is None
            await _call(s, "GET", "/api/curtailment", 200)  # reads stay on
    finally:
        await server.stop()


def test_an_unreadable_token_turns_writes_off_without_showing_it(tmp_path: Path) -> None:
    assert load_token(None).value is None
    t = load_token(SecretRef(file=str(tmp_path / "missing")))
    assert t.value is None and "cannot read" in t.problem
    (tmp_path / "tok").write_text(f"{TOKEN}\n")
    assert load_token(SecretRef(file=str(tmp_path / "tok"))).value == TOKEN.encode()
    (tmp_path / "empty").write_text("\n")
    assert load_token(SecretRef(file=str(tmp_path / "empty"))).problem == "api.token is empty"


def test_the_token_from_the_environment_or_a_systemd_credential(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, caplog: pytest.LogCaptureFixture
) -> None:
    monkeypatch.setenv("FLEETD_TEST_API_TOKEN", TOKEN)
    assert load_token(SecretRef(env="FLEETD_TEST_API_TOKEN")).value == TOKEN.encode()
    (tmp_path / "creds").mkdir()
    (tmp_path / "creds" / "api-token").write_text(TOKEN + "\n")
    monkeypatch.setenv("CREDENTIALS_DIRECTORY", str(tmp_path / "creds"))
    assert load_token(SecretRef(credential="api-token")).value == TOKEN.encode()
    cfg = parse_config({"api": {"token": {"credential": "api-token"}}})
    assert load_token(cfg.api.token).value == TOKEN.encode()
    assert TOKEN not in repr(cfg) and TOKEN not in caplog.text
    monkeypatch.delenv("CREDENTIALS_DIRECTORY")
    t = load_token(SecretRef(credential="api-token"))
    assert t.value is None and "CREDENTIALS_DIRECTORY" in t.problem and TOKEN not in caplog.text


@pytest.mark.parametrize(
    ("path", "body", "message"),
    [
        ("/api/curtailment/pins", {"action": "nap", "miners": ["a"]}, "action must be one of"),
        ("/api/curtailment/pins", {"action": "sleep"}, 'or "all": true'),
        ("/api/curtailment/pins", {"action": "sleep", "miners": "a", "until": "tomorrow"}, "ISO 8601"),
        (
            "/api/curtailment/pins",
            {"action": "sleep", "miners": ["a"], "until": "2099-01-01T00:00:00"},
            "offset",
        ),
        ("/api/curtailment/pins", {"action": "sleep", "miners": ["a"], "color": 1}, "unknown field"),
        ("/api/curtailment/pins", [1, 2], "JSON object"),
        ("/api/curtailment/dr", {"target_kw": 100}, "exactly one of end"),
        ("/api/curtailment/dr", {"target_kw": -5, "duration_s": 60}, "0 or more"),
        ("/api/curtailment/dr", {"target_kw": 5, "end": 1000}, "in the past"),
        ("/api/curtailment/dr", {"target_kw": 5, "duration_s": 0}, "positive"),
        ("/api/curtailment/enforce", {"enforce": "yes"}, "enforce must be"),
        ("/api/curtailment/enforce", {}, "enforce must be"),
    ],
)
async def test_bad_write_bodies_are_400_and_change_nothing(api, path, body, message) -> None:
    d, s = api
    err = await _call(s, "POST", path, 400, headers=AUTH, json=body)
    assert message in err["error"], err
    c = d.curtail_controls
    assert c.controls().pins == () and c.scheduled_events() == () and c.enforce_override is None


async def test_body_that_is_not_json_is_400(api) -> None:
    _, s = api
    err = await _call(s, "POST", "/api/curtailment/dr", 400, headers=AUTH, data=b"{nope")
    assert "not JSON" in err["error"]


async def test_without_curtailment_reads_say_so_and_writes_are_409(tmp_path: Path) -> None:
    d = fake_daemon(tmp_path, curtailment=False)
    d.curtail_status = None
    server = await _serve(d, Token(TOKEN.encode()))
    try:
        async with aiohttp.ClientSession(server.url) as s:
            body = await _call(s, "GET", "/api/curtailment", 200)
            _check("Curtailment", body)
            assert body["configured"] is False and body["miners"] == [] and body["decided_at"] is None
            await _call(
                s, "POST", "/api/curtailment/dr", 409, headers=AUTH, json={"target_kw": 1, "duration_s": 9}
            )
    finally:
        await server.stop()


async def test_events_filters_and_validation(api) -> None:
    d, s = api
    t0 = time.time() - 100
    for i in range(5):
        d.events.append(Event(EventKind.MINER_DOWN, f"down {i}", miner_id=f"10.9.0.{i % 2 + 1}", at=t0 + i))
    d.events.append(Event(EventKind.STARTED, "started", at=t0 + 10))
    body = await _call(s, "GET", "/api/events", 200, params={"miner": "10.9.0.1", "limit": "2"})
    assert [e["message"] for e in body["events"]] == ["down 2", "down 4"]
    body = await _call(s, "GET", "/api/events", 200, params={"since": str(t0 + 3.5)})
    assert [e["message"] for e in body["events"]] == ["down 4", "started"]
    iso = time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime(t0 + 9))
    body = await _call(s, "GET", "/api/events", 200, params={"since": iso, "kind": "started"})
    assert body["count"] == 1
    for bad in (
        {"limit": "0"},
        {"limit": "5000"},
        {"limit": "ten"},
        {"since": "nan"},
        {"since": "inf"},
        {"since": "yesterday"},
        {"kind": "explosion"},
        {"since": "-5"},
    ):
        err = await _call(s, "GET", "/api/events", 400, params=bad)
        assert err["error"], bad


async def test_real_daemon_wires_the_store_and_keeps_controls_across_restarts(tmp_path: Path) -> None:
    (tmp_path / "token").write_text(TOKEN)
    config = parse_config(
        {"api": {"token": {"file": str(tmp_path / "token")}}, "curtailment": {"enforce": False}}
    )
    for attempt in range(2):
        d = Daemon(config, state_dir=tmp_path / "state", storage=False)
        server = ApiServer.for_daemon(d, listen=f"{loopback_host(BLOCK)}:0")
        await server.start()
        await d.start()
        try:
            assert d.curtail_controls is not None
            async with aiohttp.ClientSession(server.url) as s:
                if attempt == 0:
                    await _call(
                        s,
                        "POST",
                        "/api/curtailment/pins",
                        201,
                        headers=AUTH,
                        json={"action": "exclude", "all": True},
                    )
                    await _call(
                        s, "POST", "/api/curtailment/enforce", 200, headers=AUTH, json={"enforce": True}
                    )
                body = await _call(s, "GET", "/api/curtailment", 200)
                assert body["enforce"] is True and [p["action"] for p in body["pins"]] == ["exclude"]
                ev = await _call(s, "GET", "/api/events", 200, params={"kind": "curtail_pin_set"})
                assert ev["count"] == (1 if attempt == 0 else 0)
        finally:
            await server.stop()
            await d.stop()


def test_the_openapi_document_gives_the_standby_refusal_of_every_curtailment_route() -> None:
    doc = openapi_document(__version__)
    ops = [
        (p, m, op)
        for p, item in doc["paths"].items()
        if p.startswith("/api/curtailment")
        for m, op in item.items()
    ]
    assert len(ops) >= 10
    for path, method, op in ops:
        assert "503" in op["responses"], (method, path)
    assert "active_instance" in doc["components"]["schemas"]["HaStatus"]["properties"]
