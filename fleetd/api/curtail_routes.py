"""The curtailment routes (state, pins, DR events, the enforce switch) and GET /api/events.

Reads come from a daemon-like object: `curtail_status` (published by the curtailment loop),
`curtail_controls` (a ControlsStore, None without [curtailment]), `events` (the recent event log) and
`config`, and `ha` (the HA coordinator, or None): on a standby they answer 503 naming the active instance.
Writes need `Authorization: Bearer <token>` matching [api] token; without a configured token
they are off (403). The token is compared in constant time and never logged or echoed.
"""

from __future__ import annotations

import asyncio
import hmac
import logging
import time
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import orjson
from aiohttp import web

from fleetd.api import curtail_views as cv
from fleetd.api.views import page, parse_int
from fleetd.daemon.curtail_controls import ControlsError, ControlsStore
from fleetd.daemon.state import FleetState
from fleetd.numbers import json_bytes

log = logging.getLogger("fleetd.api")

SOURCE_KEY = web.AppKey("fleetd_curtail_source", object)
STATE_OF_KEY = web.AppKey("fleetd_curtail_state_of", object)
TOKEN_KEY = web.AppKey("fleetd_api_token", object)
MAX_BODY = 64 * 1024

_NO_TOKEN = (
    'write endpoints are off: no API token is configured (set [api] token = { file = "..." }, '
    '{ env = "..." } or { credential = "..." } and restart)'
)


@dataclass(frozen=True, slots=True)
class Token:
    value: bytes | None  # None: write endpoints off
    problem: str = ""  # why a configured token could not be read


def load_token(ref: Any) -> Token:
    """The [api] token from its Secret reference; an unreadable one turns writes off (never the secret)."""
    if ref is None:
        return Token(None)
    try:
        value = ref.resolve().get_secret_value().strip()
    except ValueError as exc:
        log.error("API write endpoints off: api.token: %s", exc)
        return Token(None, f"api.token cannot be read ({exc})")
    if not value:
        log.error("API write endpoints off: api.token is empty")
        return Token(None, "api.token is empty")
    return Token(value.encode())


def _json(obj: Any, status: int = 200) -> web.Response:
    return web.Response(body=json_bytes(obj), status=status, content_type="application/json")


def _error(status: int, message: str, **headers: str) -> web.Response:
    return web.Response(
        body=orjson.dumps({"error": message}), status=status, content_type="application/json", headers=headers
    )


def _source(request: web.Request) -> Any:
    return request.app[SOURCE_KEY]


def _state(request: web.Request) -> FleetState:
    return request.app[STATE_OF_KEY]()  # type: ignore[operator]


def _config_enforce(src: Any) -> bool:
    cfg = getattr(src, "config", None)
    try:
        cc = cfg.curtailment_config() if cfg is not None else None
    except Exception:  # invalid sections are refused at load time; never fail a read over it
        cc = None
    return bool(cc.enforce) if cc is not None else False


def _controls(request: web.Request) -> ControlsStore | None:
    return getattr(_source(request), "curtail_controls", None)


def standby_refusal(request: web.Request) -> web.Response | None:
    """503 on the standby of an HA pair, naming the active instance: only the active one runs curtailment,
    so only its API shows it and takes controls (it stores them in the database the pair shares)."""
    ha = getattr(_source(request), "ha", None)
    if ha is None or ha.active:
        return None
    who = ha.active_instance or "not known yet (the standby has not seen the lock's holder)"
    return _error(
        503,
        f"this fleetd is the HA standby: curtailment is shown and controlled on the active instance, {who}",
        **{"Retry-After": str(max(1, round(ha.config.takeover_s)))},
    )


def _unauthorized(request: web.Request) -> web.Response | None:
    """None when the request carries the configured token; else the refusal (403 off, 401 wrong/missing)."""
    token: Token = request.app[TOKEN_KEY]  # type: ignore[assignment]
    if token.value is None:
        return _error(403, f"write endpoints are off: {token.problem}" if token.problem else _NO_TOKEN)
    scheme, _, given = request.headers.get("Authorization", "").strip().partition(" ")
    ok = scheme.lower() == "bearer" and hmac.compare_digest(given.strip().encode(), token.value)
    if not ok:
        log.warning(
            "API: refused %s %s from %s: bad or missing token", request.method, request.path, request.remote
        )
        return _error(
            401,
            "a valid bearer token is required (Authorization: Bearer ...)",
            **{"WWW-Authenticate": 'Bearer realm="fleetd"'},
        )
    return None


async def _write_guard(request: web.Request) -> tuple[web.Response | None, ControlsStore | None]:
    if (refused := _unauthorized(request) or standby_refusal(request)) is not None:
        return refused, None
    store = _controls(request)
    if store is None:
        return _error(409, "curtailment is not configured: add a [curtailment] section and restart"), None
    return None, store


async def _body(request: web.Request) -> Any:
    if request.content_length is not None and request.content_length > MAX_BODY:
        raise ValueError(f"the body is larger than {MAX_BODY} bytes")
    raw = await request.content.read(MAX_BODY + 1)
    if len(raw) > MAX_BODY:
        raise ValueError(f"the body is larger than {MAX_BODY} bytes")
    try:
        return orjson.loads(raw or b"{}")
    except orjson.JSONDecodeError as exc:
        raise ValueError(f"the body is not JSON: {exc}") from None


def _int(request: web.Request, name: str, default: int, low: int, high: int) -> int:
    return parse_int(name, request.query.get(name), default, low, high)  # type: ignore[return-value]


# --- reads -------------------------------------------------------------------------------------------------
def _fleet(request: web.Request) -> dict[str, Any]:
    src = _source(request)
    store = _controls(request)
    status = getattr(src, "curtail_status", None)
    now = time.time()
    configured = _config_enforce(src)
    return cv.fleet_doc(
        status,
        configured=store is not None or status is not None,
        enforce=store.enforce(configured)
        if store is not None
        else (status.enforce if status else configured),
        enforce_override=store.enforce_override if store is not None else None,
        enforce_configured=configured,
        pins=store.pins(now) if store is not None else (status.controls.pins if status else ()),
        dr_events=store.scheduled_events()
        if store is not None
        else (status.controls.events if status else ()),
        now=now,
    )


async def curtailment(request: web.Request) -> web.Response:
    if (refused := standby_refusal(request)) is not None:
        return refused
    q = request.query
    try:
        matched = cv.filter_statuses(
            getattr(_source(request), "curtail_status", None),
            _state(request),
            sites=q.getall("site", []),
            models=q.getall("model", []),
            states=q.getall("state", []),
            targets=q.getall("target", []),
        )
        limit = _int(request, "limit", len(matched), 0, 10**9) if q.get("limit") else None
        offset = _int(request, "offset", 0, 0, 10**9)
    except ValueError as exc:
        return _error(400, str(exc))
    shown = page(matched, limit=limit, offset=offset)
    return _json(
        {**_fleet(request), "total": len(matched), "offset": offset, "count": len(shown), "miners": shown}
    )


async def curtailment_miner(request: web.Request) -> web.Response:
    if (refused := standby_refusal(request)) is not None:
        return refused
    miner_id = request.match_info["id"]
    doc = cv.miner_doc(getattr(_source(request), "curtail_status", None), _state(request), miner_id)
    if doc is None:
        return _error(404, f"no curtailment status for miner {miner_id!r} (unknown, or no decision yet)")
    return _json(doc)


async def list_pins(request: web.Request) -> web.Response:
    if (refused := standby_refusal(request)) is not None:
        return refused
    return _json({"pins": _fleet(request)["pins"]})


async def list_dr(request: web.Request) -> web.Response:
    if (refused := standby_refusal(request)) is not None:
        return refused
    return _json({"dr_events": _fleet(request)["dr_events"]})


async def get_enforce(request: web.Request) -> web.Response:
    if (refused := standby_refusal(request)) is not None:
        return refused
    f = _fleet(request)
    return _json({k: f[k] for k in ("configured", "enforce", "enforce_override", "enforce_configured")})


async def events(request: web.Request) -> web.Response:
    q = request.query
    try:
        limit = _int(request, "limit", cv.EVENTS_LIMIT_DEFAULT, 1, cv.EVENTS_LIMIT_MAX)
        since = None
        if q.get("since", "").strip():
            try:
                since = cv.parse_time(float(q["since"]), "since")
            except ValueError:
                since = cv.parse_time(q["since"], "since")
        found = cv.filter_events(
            list(getattr(_source(request), "events", ())),
            kinds=q.getall("kind", []),
            miners=q.getall("miner", []),
            since=since,
            limit=limit,
        )
    except ValueError as exc:
        return _error(400, str(exc))
    return _json({"count": len(found), "events": found})


# --- writes ------------------------------------------------------------------------------------------------
async def add_pin(request: web.Request) -> web.Response:
    refused, store = await _write_guard(request)
    if refused is not None:
        return refused
    assert store is not None
    try:
        pin = await asyncio.to_thread(store.pin, **cv.parse_pin(await _body(request)), source="api")
    except ValueError as exc:  # ControlsError included
        return _error(400, str(exc))
    return _json(cv.pin_dict(pin), 201)


async def remove_pin(request: web.Request) -> web.Response:
    refused, store = await _write_guard(request)
    if refused is not None:
        return refused
    assert store is not None
    pin_id = request.match_info["pin_id"]
    pin = await asyncio.to_thread(store.unpin, pin_id, source="api")
    if pin is None:
        return _error(404, f"no pin {pin_id!r}")
    return _json(cv.pin_dict(pin))


async def start_dr(request: web.Request) -> web.Response:
    refused, store = await _write_guard(request)
    if refused is not None:
        return refused
    assert store is not None
    now = time.time()
    try:
        ev = await asyncio.to_thread(
            store.start_event, **cv.parse_dr(await _body(request), now), source="api"
        )
    except ValueError as exc:
        return _error(400, str(exc))
    return _json(cv.dr_dict(ev, max(now, ev.start)), 201)


async def stop_dr(request: web.Request) -> web.Response:
    refused, store = await _write_guard(request)
    if refused is not None:
        return refused
    assert store is not None
    event_id = request.match_info["event_id"]
    ev = await asyncio.to_thread(store.stop_event, event_id, source="api")
    if ev is None:
        return _error(404, f"no DR event {event_id!r}")
    return _json(cv.dr_dict(ev, time.time()))


async def set_enforce(request: web.Request) -> web.Response:
    refused, store = await _write_guard(request)
    if refused is not None:
        return refused
    assert store is not None
    try:
        value = None if request.method == "DELETE" else cv.parse_enforce(await _body(request))
        await asyncio.to_thread(store.set_enforce, value, source="api")
    except (ValueError, ControlsError) as exc:
        return _error(400, str(exc))
    return await get_enforce(request)


def install(app: web.Application, source: Any, state_of: Callable[[], FleetState], token: Token) -> None:
    """Add the routes to `app`; fixed paths before /api/curtailment/{id}."""
    app[SOURCE_KEY] = source
    app[STATE_OF_KEY] = state_of
    app[TOKEN_KEY] = token
    r = app.router
    r.add_get("/api/curtailment", curtailment)
    r.add_get("/api/curtailment/pins", list_pins)
    r.add_post("/api/curtailment/pins", add_pin)
    r.add_delete("/api/curtailment/pins/{pin_id}", remove_pin)
    r.add_get("/api/curtailment/dr", list_dr)
    r.add_post("/api/curtailment/dr", start_dr)
    r.add_delete("/api/curtailment/dr/{event_id}", stop_dr)
    r.add_get("/api/curtailment/enforce", get_enforce)
    r.add_post("/api/curtailment/enforce", set_enforce)
    r.add_delete("/api/curtailment/enforce", set_enforce)
    r.add_get("/api/curtailment/{id}", curtailment_miner)
    r.add_get("/api/events", events)
