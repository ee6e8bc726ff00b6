"""The aiohttp application: read-only JSON views of FleetState, and a small server wrapper."""

from __future__ import annotations

import asyncio
import contextlib
import time
from collections.abc import Callable
from typing import Any

from aiohttp import web

from fleetd import __version__
from fleetd.api import curtail_routes, views
from fleetd.api.openapi import openapi_document
from fleetd.daemon.rollups import configured_power
from fleetd.daemon.state import FleetState
from fleetd.exporters import prometheus
from fleetd.numbers import json_bytes
from fleetd.view_errors import VIEW_ERRORS

StateSource = FleetState | Callable[[], FleetState]

STATE_KEY = web.AppKey("fleetd_state", object)
INTERVAL_KEY = web.AppKey("fleetd_poll_interval_s", float)
CLOCK_KEY = web.AppKey("fleetd_clock", object)
LAG_KEY = web.AppKey("fleetd_loop_lag", list)
PROGRESS_KEY = web.AppKey("fleetd_progressing", object)
POWER_KEY = web.AppKey("fleetd_power_of", object)
PRICES_KEY = web.AppKey("fleetd_prices", object)
HEALTH_KEY = web.AppKey("fleetd_health", object)
HA_KEY = web.AppKey("fleetd_ha", object)  # () -> the HA coordinator's status dict, or None without [ha]

_LAG_TICK_S = 1.0


def _json(obj: Any, status: int = 200) -> web.Response:
    return web.Response(body=json_bytes(obj), status=status, content_type="application/json")


def _error(status: int, message: str) -> web.Response:
    return _json({"error": message}, status)


def _state(request: web.Request) -> FleetState:
    source = request.app[STATE_KEY]
    return source() if callable(source) else source  # type: ignore[return-value]


def _state_of(source: StateSource) -> FleetState:
    return source() if callable(source) else source


def _now(request: web.Request) -> float:
    return request.app[CLOCK_KEY]()  # type: ignore[operator]


async def healthz(request: web.Request) -> web.Response:
    lag = request.app[LAG_KEY]
    ok, body = views.health(
        _state(request),
        now=_now(request),
        poll_interval_s=request.app[INTERVAL_KEY],
        loop_lag_s=lag[0] if lag else None,
        progressing=progressing() if (progressing := request.app[PROGRESS_KEY]) is not None else None,
        ha=request.app[HA_KEY](),  # type: ignore[operator]
    )
    wanted = request.query.get("role")  # ?role=active: 503 unless this instance is the active one
    if wanted is not None:
        if wanted not in ("active", "standby"):
            return _error(400, f"role must be active or standby, not {wanted!r}")
        role = body["ha"]["role"] if "ha" in body else "active"
        ok = ok and role == wanted
    return _json(body, 200 if ok else 503)


async def fleet(request: web.Request) -> web.Response:
    return _json(views.fleet_totals(_state(request), request.app[POWER_KEY]))  # type: ignore[arg-type]


async def prices(request: web.Request) -> web.Response:
    return _json(views.prices(request.app[PRICES_KEY](), _now(request)))  # type: ignore[operator]


async def miners(request: web.Request) -> web.Response:
    q = request.query
    try:
        matched = views.filter_miners(
            list(_state(request).miners.values()),
            sites=q.getall("site", []),
            models=q.getall("model", []),
            states=q.getall("state", []),
            profitable=views.parse_bool("profitable", q.get("profitable")),
        )
        limit = views.parse_int("limit", q.get("limit"), None)
        offset = views.parse_int("offset", q.get("offset"), 0) or 0
    except ValueError as exc:
        return _error(400, str(exc))
    power_of = request.app[POWER_KEY]
    rows = []
    skipped = 0
    for rec in views.page(matched, limit=limit, offset=offset):
        try:
            rows.append(views.miner_summary(rec, power_of))  # type: ignore[arg-type]
        except Exception as exc:  # one miner's broken record must not cost the others the list
            VIEW_ERRORS.record("api", rec.id, exc)
            skipped += 1
    return _json(
        {"total": len(matched), "offset": offset, "count": len(rows), "skipped": skipped, "miners": rows}
    )


async def miner(request: web.Request) -> web.Response:
    miner_id = request.match_info["id"]
    rec = _state(request).miners.get(miner_id)
    if rec is None:
        return _error(404, f"no miner with id {miner_id!r}")
    try:
        doc = views.miner_detail(rec, request.app[POWER_KEY])  # type: ignore[arg-type]
    except Exception as exc:
        VIEW_ERRORS.record("api", miner_id, exc)
        return _error(500, f"miner {miner_id!r} has figures that cannot be shown ({type(exc).__name__})")
    return _json(doc)


def _monitor(request: web.Request) -> Any:
    return request.app[HEALTH_KEY]()  # type: ignore[operator]


async def miner_health(request: web.Request) -> web.Response:
    from fleetd.health.monitor import MinerHealth

    miner_id = request.match_info["id"]
    if miner_id not in _state(request).miners:
        return _error(404, f"no miner with id {miner_id!r}")
    mon = _monitor(request)
    health = mon.miner(miner_id) if mon is not None else MinerHealth(miner_id, (), ())
    return _json(health.to_dict())


async def fleet_health(request: web.Request) -> web.Response:
    from fleetd.health.monitor import HealthMonitor

    try:
        worst = views.parse_int("worst", request.query.get("worst"), 20, 0, 10_000)
    except ValueError as exc:
        return _error(400, str(exc))
    mon = _monitor(request) or HealthMonitor(None)
    return _json(mon.summary(worst))


async def openapi(request: web.Request) -> web.Response:
    return _json(openapi_document(__version__))


@web.middleware
async def _json_errors(request: web.Request, handler: Callable[..., Any]) -> web.StreamResponse:
    """Unknown paths and wrong methods answer JSON like every other error."""
    try:
        return await handler(request)
    except web.HTTPException as exc:
        if exc.content_type == "application/json" or exc.status < 400:
            raise
        return _error(exc.status, exc.reason)


async def _lag_monitor(app: web.Application) -> Any:
    """Measures how late the loop runs a timer: a blocked loop shows as lag in /healthz."""
    lag = app[LAG_KEY]

    async def tick() -> None:
        loop = asyncio.get_running_loop()
        while True:
            expected = loop.time() + _LAG_TICK_S
            await asyncio.sleep(_LAG_TICK_S)
            lag[:] = [max(0.0, loop.time() - expected)]

    task = asyncio.create_task(tick(), name="fleetd-api-loop-lag")
    yield
    task.cancel()
    with contextlib.suppress(asyncio.CancelledError):
        await task


def create_app(
    state: StateSource,
    *,
    poll_interval_s: float = 60.0,
    progressing: Callable[[], bool] | None = None,
    clock: Callable[[], float] = time.time,
    power_of: views.PowerOf | None = None,
    economics: Callable[[], Any] | None = None,
    health: Callable[[], Any] | None = None,
    daemon: Any = None,
    token: curtail_routes.Token | None = None,
) -> web.Application:
    """The API over `state` (a FleetState, or a callable returning the current one).

    `progressing`, when given (e.g. `Daemon.progressing`), decides /healthz; otherwise the age of the
    last cycle does. `power_of` estimates the power of up miners (default: measured, else configured
    nominal while mining); `economics` returns the current EconomicsService (or None) for /api/prices;
    `health` the current fleetd.health HealthMonitor (or None) for /api/health.
    `daemon` (a Daemon, or any object with its curtail_status, curtail_controls, events and config)
    backs the curtailment routes and /api/events; `token` enables their write endpoints.
    """
    app = web.Application(middlewares=[_json_errors])
    app[STATE_KEY] = state
    app[PROGRESS_KEY] = progressing
    app[POWER_KEY] = power_of or configured_power
    app[PRICES_KEY] = economics or (lambda: None)
    app[HEALTH_KEY] = health or (lambda: None)
    app[HA_KEY] = lambda: None
    app[INTERVAL_KEY] = float(poll_interval_s)
    app[CLOCK_KEY] = clock
    app[LAG_KEY] = []
    app.cleanup_ctx.append(_lag_monitor)
    app.router.add_get("/healthz", healthz)
    app.router.add_get("/api/fleet", fleet)
    app.router.add_get("/api/miners", miners)
    app.router.add_get("/api/miners/{id}", miner)
    app.router.add_get("/api/miners/{id}/health", miner_health)
    app.router.add_get("/api/health", fleet_health)
    app.router.add_get("/api/prices", prices)
    app.router.add_get("/api/openapi.json", openapi)
    curtail_routes.install(
        app,
        daemon if daemon is not None else object(),
        lambda: _state_of(state),
        token or curtail_routes.Token(None),
    )
    prometheus.install(app, state)  # GET /metrics
    return app


def parse_listen(listen: str, default_port: int = 8787) -> tuple[str, int]:
    """'host:port', '[v6]:port', 'host' or ':port' -> (host, port); an empty host means 127.0.0.1."""
    text = listen.strip()
    host, port_s = text, ""
    if text.startswith("["):
        end = text.find("]")
        if end < 0:
            raise ValueError(f"bad listen address {listen!r}: missing ']'")
        host, rest = text[1:end], text[end + 1 :]
        if rest:
            if not rest.startswith(":"):
                raise ValueError(f"bad listen address {listen!r}")
            port_s = rest[1:]
    elif text.count(":") == 1:
        host, port_s = text.split(":")
    host = host or "127.0.0.1"
    if not port_s:
        return host, default_port
    try:
        port = int(port_s)
    except ValueError:
        raise ValueError(f"bad listen address {listen!r}: port {port_s!r} is not a number") from None
    if not 0 <= port <= 65535:
        raise ValueError(f"bad listen address {listen!r}: port {port} out of range")
    return host, port


def daemon_power_of(daemon: Any) -> views.PowerOf:
    """The daemon's own power estimate: measured, else the catalog's for model and mode, else configured."""
    estimate = getattr(daemon, "power_estimate", None)
    return estimate if callable(estimate) else configured_power


class ApiServer:
    """Serves the API on one address: `await start()` binds (port 0 picks a free one), `stop()` closes."""

    def __init__(
        self,
        state: StateSource,
        *,
        listen: str = "127.0.0.1:8787",
        poll_interval_s: float = 60.0,
        progressing: Callable[[], bool] | None = None,
        power_of: views.PowerOf | None = None,
        economics: Callable[[], Any] | None = None,
        health: Callable[[], Any] | None = None,
        daemon: Any = None,
        token: curtail_routes.Token | None = None,
    ) -> None:
        self.host, self.port = parse_listen(listen)
        self.app = create_app(
            state,
            poll_interval_s=poll_interval_s,
            progressing=progressing,
            power_of=power_of,
            economics=economics,
            health=health,
            daemon=daemon,
            token=token,
        )
        self._runner: web.AppRunner | None = None

    @classmethod
    def for_daemon(cls, daemon: Any, listen: str | None = None) -> ApiServer:
        """The API of a fleetd.daemon Daemon, on `listen` or the daemon's configured [api] listen."""
        server = cls(
            lambda: daemon.state,
            listen=listen or daemon.config.api.listen,
            poll_interval_s=daemon.config.polling.interval_s,
            progressing=daemon.progressing,
            power_of=daemon_power_of(daemon),
            economics=lambda: daemon.economics,
            health=lambda: getattr(daemon, "health", None),
            daemon=daemon,
            token=curtail_routes.load_token(daemon.config.api.token),
        )
        prometheus.bind_daemon(server.app, daemon)
        server.app[HA_KEY] = lambda: daemon.ha.status() if getattr(daemon, "ha", None) is not None else None
        return server

    @property
    def url(self) -> str:
        host = f"[{self.host}]" if ":" in self.host else self.host
        return f"http://{host}:{self.port}"

    async def start(self) -> None:
        runner = web.AppRunner(self.app, access_log=None, handle_signals=False)
        await runner.setup()
        site = web.TCPSite(runner, self.host, self.port, reuse_address=True)
        try:
            await site.start()
        except OSError as exc:
            await runner.cleanup()
            raise OSError(exc.errno, f"cannot listen on {self.host}:{self.port}: {exc.strerror}") from exc
        self._runner = runner
        if self.port == 0:
            self.port = runner.addresses[0][1]

    async def stop(self) -> None:
        if self._runner is not None:
            await self._runner.cleanup()
            self._runner = None
