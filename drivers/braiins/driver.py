"""Braiins OS driver: telemetry over BOSer's CGMiner-compatible API, control over the public REST API
(the gRPC `braiins.bos.v1` services' REST form, Braiins OS 23.03 and later).

A poll is one joined CGMiner request, `version+summary+devs+pools+tunerstatus+fans` (hashrate, boards,
pools, the tuner's approximated consumption and power limit, fan speeds). Miner details (model, serial, MAC,
hostname) come from `GET /api/v1/miner/details`, re-read every DETAILS_REFRESH_S. Reads after a
command add `GET /api/v1/miner/stats` (GetMinerStats) and `GET /api/v1/configuration/miner` (the
tuner's power target), so a command is verified by the same REST API that took it. REST calls carry
the token of `POST /api/v1/auth/login` in the `Authorization` header; the token lives `timeout_s`
after its last use, and a 401 logs in once more.

Commands: `PUT /api/v1/actions/pause` / `resume` (sleep/wake) and `PUT /api/v1/performance/power-target`
`{"watt": N}` (power limit), each verified by re-reading telemetry and configuration.
"""

from __future__ import annotations

import asyncio
import json
import time
from collections.abc import Callable, Mapping
from typing import Any

from fleetd.drivers import verify
from fleetd.drivers.base import Driver, Endpoint, LimitsInTwoPhases, Login, Sent, SleepsInTwoPhases
from fleetd.drivers.before_limit import BeforeLimit, restore_watts
from fleetd.drivers.braiins.parse import (
    CONSTRAINTS,
    DETAILS,
    MINER_CONFIG,
    MINER_STATS,
    is_braiins,
    parse_identity,
    parse_power_target,
    parse_power_target_bounds,
    parse_snapshot,
)
from fleetd.drivers.cgminer import VersionProbe, reply_content

from fleetd.model import Identity, Mode, Reading, Snapshot
from fleetd.transport.cgminer import CGMinerAPI
from fleetd.transport.errors import AuthError, CommandRejectedError, DeviceError, MalformedReplyError
from fleetd.transport.jsonfix import loads_tolerant
from fleetd.transport.keepalive import KeepAliveHTTP

__all__ = ["BraiinsDriver"]

DEFAULT_LOGIN = Login("root", "")  # Braiins OS ships with user root and no password
DETAILS_REFRESH_S = 600.0
LOGIN = "/api/v1/auth/login"
STATS = "/api/v1/miner/stats"
DETAILS_PATH = "/api/v1/miner/details"
CONFIG_PATH = "/api/v1/configuration/miner"
PAUSE = "/api/v1/actions/pause"
RESUME = "/api/v1/actions/resume"
POWER_TARGET = "/api/v1/performance/power-target"
CONSTRAINTS_PATH = "/api/v1/configuration/constraints"

# Per (host, web port): the REST token and when (time.monotonic) it lapses; the details and when to
# read them again. Module-level so that a driver rebuilt by the daemon keeps them.
_TOKENS: dict[tuple[str, int], tuple[str, float]] = {}
_SLOW: dict[tuple[str, int], tuple[dict[str, Any], float]] = {}


class BraiinsDriver(VersionProbe, Driver, SleepsInTwoPhases, LimitsInTwoPhases):
    """An Antminer on Braiins OS: CGMiner API for telemetry, REST API (token login) for the rest."""

    name = "braiins"
    vendor = "braiins"
    hardware = "Bitmain"
    firmware = "Braiins OS / BOS+ (BOSer CGMiner API on 4028 + public REST API on 80, token login)"
    models = ("Antminer S19 family", "Antminer S21 family", "Antminer T21")
    reads = (
        "one joined `version+summary+devs+pools+tunerstatus+fans` request per poll; REST details and"
        " constraints (cached)"
    )
    controls = (
        "sleep/wake: REST `actions/pause`/`resume`; power limit: REST `performance/power-target` (within the"
        " tuner constraints; wake restores the target)"
    )
    POLL = ("version", "summary", "devs", "pools", "tunerstatus", "fans")
    OPTIONAL = ("devs", "pools", "tunerstatus", "fans")

    def __init__(self, endpoint: Endpoint) -> None:
        super().__init__(endpoint)
        self.api = CGMinerAPI(endpoint.host, endpoint.api_port, timeouts=endpoint.timeouts)
        self._web: KeepAliveHTTP | None = None

    @property
    def _key(self) -> tuple[str, int]:
        return (self.host, self.endpoint.web_port)

    @property
    def web(self) -> KeepAliveHTTP:
        if self._web is None:
            self._web = KeepAliveHTTP(self.host, self.endpoint.web_port, timeouts=self.endpoint.timeouts)
        return self._web

    async def close(self) -> None:
        if self._web is not None:
            await self._web.close()
            self._web = None

    # --- REST ----------------------------------------------------------------------------------

    async def _login(self) -> str:
        login = self.endpoint.credentials.for_vendor(self.vendor, DEFAULT_LOGIN)
        body = {"username": login.username or "root", "password": login.password or ""}
        try:
            reply = await self.web.post_json(LOGIN, body)
        except AuthError:
            raise AuthError(
                f"Braiins OS refused the login of user {body['username']!r}", host=self.host, command=LOGIN
            ) from None
        token = str((reply or {}).get("token") or "") if isinstance(reply, Mapping) else ""
        if not token:
            raise MalformedReplyError("login returned no token", host=self.host, command=LOGIN)
        ttl = float((reply or {}).get("timeout_s") or 3600)
        _TOKENS[self._key] = (token, time.monotonic() + 0.9 * ttl)
        return token

    async def _token(self) -> str:
        cached = _TOKENS.get(self._key)
        if cached is not None and time.monotonic() < cached[1]:
            return cached[0]
        return await self._login()

    async def rest(self, method: str, path: str, payload: Any = None) -> Any:
        """One REST call with the session token (logging in, or in again after a 401, as needed)."""
        for attempt in (0, 1):
            token = await self._token()
            try:
                body = await self.web.request(
                    method, path, json_body=payload, headers={"Authorization": token}
                )
            except AuthError:
                _TOKENS.pop(self._key, None)
                if attempt:
                    raise
                continue
            cached = _TOKENS.get(self._key)
            if cached is not None:  # each request renews the token's lifetime
                _TOKENS[self._key] = (cached[0], max(cached[1], time.monotonic() + 60.0))
            return loads_tolerant(body, host=self.host, command=path) if body.strip() else None
        raise AssertionError("unreachable")

    async def _details(self, *, fresh: bool = False) -> dict[str, Any]:
        cached = _SLOW.get(self._key)
        if not fresh and cached is not None and time.monotonic() < cached[1]:
            return cached[0]
        details, constraints = await asyncio.gather(
            self.rest("GET", DETAILS_PATH), self.rest("GET", CONSTRAINTS_PATH), return_exceptions=True
        )
        if isinstance(details, BaseException):
            raise details
        if isinstance(constraints, BaseException) and not isinstance(constraints, DeviceError):
            raise constraints  # a bug, not a firmware without the endpoint
        out = {DETAILS: details or {}}
        # Optional (older firmware lacks it): without it the power-target range is unknown.
        out[CONSTRAINTS] = constraints if isinstance(constraints, Mapping) else {}
        _SLOW[self._key] = (out, time.monotonic() + DETAILS_REFRESH_S)
        return out

    # --- reading -------------------------------------------------------------------------------

    @classmethod
    def from_version(cls, reply: Mapping[str, Any], *, host: str = "") -> Identity | None:
        """Pure: the identity a `version` reply shows if it is Braiins OS's (BOSer), else None."""
        if not is_braiins(reply):
            return None
        return parse_identity({"rpc_version": reply}, host=host)

    async def _responses(self, *, fresh: bool = False) -> dict[str, Any]:
        """The poll's replies; `fresh` adds the REST stats and configuration and re-reads the details."""
        rpc_task = self.api.commands(*self.POLL, optional=self.OPTIONAL)
        if not fresh:
            rpc, details = await asyncio.gather(rpc_task, self._details())
            return {**{f"rpc_{cmd}": reply for cmd, reply in rpc.items()}, **details}
        rpc, details, stats, config = await asyncio.gather(
            rpc_task, self._details(fresh=True), self.rest("GET", STATS), self.rest("GET", CONFIG_PATH)
        )
        out: dict[str, Any] = {f"rpc_{cmd}": reply for cmd, reply in rpc.items()}
        out.update(details)
        out[MINER_STATS] = stats or {}
        out[MINER_CONFIG] = config or {}
        return out

    async def read(self) -> Reading:
        return self.parse_responses(await self._responses(), host=self.host, polled_at=time.time())

    async def _fresh_snapshot(self) -> Snapshot:
        responses = await self._responses(fresh=True)
        with reply_content(self.host):
            return parse_snapshot(responses, polled_at=time.time())

    async def snapshot(self) -> Snapshot:
        return (await self.read()).snapshot

    async def identity(self) -> Identity:
        version, details = await asyncio.gather(self.api.command("version"), self._details())
        with reply_content(self.host):
            return parse_identity({"rpc_version": version, **details}, host=self.host)

    async def raw_responses(self) -> dict[str, Any]:
        return await self._responses(fresh=True)

    @classmethod
    def parse_responses(
        cls, responses: Mapping[str, Any], *, host: str = "", polled_at: float = 0.0
    ) -> Reading:
        with reply_content(host):
            return Reading(
                parse_identity(responses, host=host), parse_snapshot(responses, polled_at=polled_at)
            )

    # --- power ---------------------------------------------------------------------------------

    async def send_sleep(self) -> Sent:
        deadline = verify.deadline_in(self.endpoint.timeouts.verify_s)
        await self.rest("PUT", PAUSE)
        return self._verify("pause", lambda s: s.mode is Mode.SLEEP and not s.is_mining, deadline)

    async def send_wake(self) -> Sent:
        deadline = verify.deadline_in(self.endpoint.timeouts.verify_s)
        await self.rest("PUT", RESUME)
        woke = self._verify("resume", lambda s: bool(s.hashrate_ths and s.hashrate_ths > 0), deadline)
        return Sent(lambda: restore_watts(woke, self._before_limit, self._send_target))

    def power_limit_range(self) -> tuple[int, int] | None:
        cached = _SLOW.get(self._key)
        return parse_power_target_bounds(cached[0].get(CONSTRAINTS)) if cached else None

    async def send_power_limit(self, watts: int) -> Sent:
        """Set the tuner's power target to `watts`; the first limit remembers the target for wake."""
        if self._before_limit.get() is None and watts > 0:
            own = (self.recent() or await self.snapshot()).power_limit_w
            if own is not None:
                self._before_limit.set(str(int(own)))
        return await self._send_target(watts)

    @property
    def _before_limit(self) -> BeforeLimit:
        """The power target from before fleetd's first power limit: wake restores it."""
        return BeforeLimit(f"braiins:{self.host}:{self.endpoint.web_port}", self.state_dir)

    async def _send_target(self, watts: int) -> Sent:
        """Set the tuner's power target to `watts` and verify the configuration and telemetry show it."""
        if watts <= 0:
            raise CommandRejectedError(f"power target must be positive, not {watts}", host=self.host)
        deadline = verify.deadline_in(self.endpoint.timeouts.verify_s)
        try:
            reply = await self.rest("PUT", POWER_TARGET, {"watt": int(watts)})
        except CommandRejectedError as exc:
            raise CommandRejectedError(
                f"Braiins OS refused power target {watts} W ({exc.message})",
                host=self.host,
                command=POWER_TARGET,
                code=exc.code,
            ) from None
        if isinstance(reply, Mapping) and reply.get("watt") not in (None, int(watts)):
            raise CommandRejectedError(
                f"Braiins OS set power target {json.dumps(reply)} instead of {watts} W",
                host=self.host,
                command=POWER_TARGET,
            )
        return self._verify(
            f"power target {watts} W",
            lambda s: s.power_limit_w == float(watts) and s.mode is not Mode.SLEEP,
            deadline,
        )

    async def current_power_target_w(self) -> float | None:
        """The tuner's power target, read now."""
        return parse_power_target(await self.rest("GET", CONFIG_PATH))

    def _verify(self, action: str, ok: Callable[[Snapshot], bool], deadline: float) -> Sent:
        def describe(s: Snapshot) -> str:
            return f"hashrate {verify.rate(s)}, power target {verify.watts(s.power_limit_w)}"

        return self.confirm_later(
            self._fresh_snapshot, ok, action=action, describe=describe, deadline=deadline
        )
