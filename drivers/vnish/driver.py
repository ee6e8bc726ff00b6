"""VNish driver: everything over the VNish web API (port 80), unlocked with the web password.

`POST /api/v1/unlock {"pw": ...}` returns a bearer token for the protected calls. A poll is one
`GET /api/v1/summary`; `/api/v1/info` (identity, hashrate unit), `/api/v1/perf-summary` (current
preset) and `/api/v1/autotune/presets` change rarely and are re-read every SLOW_REFRESH_S and right
after a command. Sleep and wake are `POST /api/v1/mining/pause` / `resume`; presets are the power-limit
capability (`POST /api/v1/settings {"miner": {"overclock": {"preset": NAME}}}`, the preset with the most
watts within the limit). Every command is verified by re-reading the summary and the perf-summary.
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import Callable, Mapping
from typing import Any, ClassVar

from fleetd.drivers import verify
from fleetd.drivers.base import Driver, Endpoint, LimitsInTwoPhases, Login, Sent, SleepsInTwoPhases
from fleetd.drivers.before_limit import BeforeLimit
from fleetd.drivers.cgminer import reply_content
from fleetd.drivers.vnish.parse import (
    INFO,
    PERF,
    PRESETS,
    SUMMARY,
    Preset,
    current_preset,
    is_vnish,
    parse_identity,
    parse_presets,
    parse_snapshot,
    pick_preset,
)

from fleetd.model import Identity, Mode, Reading, Snapshot
from fleetd.transport.errors import (
    AuthError,
    CommandRejectedError,
    DeviceError,
    MalformedReplyError,
    NotCompliedError,
)
from fleetd.transport.jsonfix import loads_tolerant
from fleetd.transport.keepalive import KeepAliveHTTP

__all__ = ["VNishDriver"]

DEFAULT_LOGIN = Login(None, "admin")  # VNish's factory web password
SLOW_REFRESH_S = 600.0
TOKEN_TTL_S = 1800.0  # VNish documents none; re-unlocked earlier on any 401
UNLOCK = "/api/v1/unlock"
INFO_PATH = "/api/v1/info"
SUMMARY_PATH = "/api/v1/summary"
PERF_PATH = "/api/v1/perf-summary"
PRESETS_PATH = "/api/v1/autotune/presets"
SETTINGS = "/api/v1/settings"
PAUSE = "/api/v1/mining/pause"
RESUME = "/api/v1/mining/resume"

_TOKENS: dict[tuple[str, int], tuple[str, float]] = {}
_SLOW: dict[tuple[str, int], tuple[dict[str, Any], float]] = {}


class VNishDriver(Driver, SleepsInTwoPhases, LimitsInTwoPhases):
    """An Antminer on VNish, spoken to over its web API only."""

    name = "vnish"
    vendor = "vnish"
    hardware = "Bitmain"
    firmware = "VNish (web API on 80, unlocked with the web password)"
    models = ("Antminer S19 family", "Antminer S21 family", "Antminer T21")
    controls = (
        "sleep/wake: `mining/pause`/`resume`; power limit: autotune presets (`settings`; wake restores the"
        " preset)"
    )
    web_probe: ClassVar[bool] = True  # detection must check the web port: there is no CGMiner API to ask
    reads = "web API `summary` per poll; `info`, `perf-summary`, `autotune/presets` cached"

    def __init__(self, endpoint: Endpoint) -> None:
        super().__init__(endpoint)
        self._web: KeepAliveHTTP | None = None

    @property
    def _key(self) -> tuple[str, int]:
        return (self.host, self.endpoint.web_port)

    @property
    def web(self) -> KeepAliveHTTP:
        if self._web is None:
            self._web = _client(self.endpoint)
        return self._web

    async def close(self) -> None:
        if self._web is not None:
            await self._web.close()
            self._web = None

    # --- detection -----------------------------------------------------------------------------

    @classmethod
    async def probe(cls, endpoint: Endpoint) -> Identity | None:
        web = _client(endpoint)
        try:
            info = await web.get_json(INFO_PATH)
        except DeviceError:
            return None
        finally:
            await web.close()
        if not is_vnish(info):
            return None
        return parse_identity({INFO: info}, host=endpoint.host)

    # --- web API -------------------------------------------------------------------------------

    async def _unlock(self) -> str:
        login = self.endpoint.credentials.for_vendor(self.vendor, DEFAULT_LOGIN)
        try:
            reply = await self.web.post_json(UNLOCK, {"pw": login.password or "admin"})
        except AuthError:
            raise AuthError("VNish refused the web password", host=self.host, command=UNLOCK) from None
        token = str(reply.get("token") or "") if isinstance(reply, Mapping) else ""
        if not token:
            raise MalformedReplyError("unlock returned no token", host=self.host, command=UNLOCK)
        _TOKENS[self._key] = (token, time.monotonic() + TOKEN_TTL_S)
        return token

    async def call(self, method: str, path: str, payload: Any = None) -> Any:
        """One protected call with the bearer token (unlocking, or again after a 401, as needed)."""
        for attempt in (0, 1):
            cached = _TOKENS.get(self._key)
            token = cached[0] if cached and time.monotonic() < cached[1] else await self._unlock()
            try:
                body = await self.web.request(
                    method, path, json_body=payload, headers={"Authorization": f"Bearer {token}"}
                )
            except AuthError:
                _TOKENS.pop(self._key, None)
                if attempt:
                    raise
                continue
            if not body.strip():
                return None
            reply = loads_tolerant(body, host=self.host, command=path)
            if isinstance(reply, Mapping) and reply.get("err"):
                raise CommandRejectedError(f"VNish: {reply['err']}", host=self.host, command=path)
            return reply
        raise AssertionError("unreachable")

    async def _slow(self, *, fresh: bool = False) -> dict[str, Any]:
        cached = _SLOW.get(self._key)
        if not fresh and cached is not None and time.monotonic() < cached[1]:
            return cached[0]
        info, perf, presets = await asyncio.gather(
            self.web.get_json(INFO_PATH), self.web.get_json(PERF_PATH), self.call("GET", PRESETS_PATH)
        )
        out = {INFO: info or {}, PERF: perf or {}, PRESETS: presets or []}
        _SLOW[self._key] = (out, time.monotonic() + SLOW_REFRESH_S)
        return out

    async def _responses(self, *, fresh: bool = False) -> dict[str, Any]:
        summary, slow = await asyncio.gather(self.call("GET", SUMMARY_PATH), self._slow(fresh=fresh))
        return {SUMMARY: summary or {}, **slow}

    # --- reading -------------------------------------------------------------------------------

    async def read(self) -> Reading:
        return self.parse_responses(await self._responses(), host=self.host, polled_at=time.time())

    async def snapshot(self) -> Snapshot:
        return (await self.read()).snapshot

    async def _fresh_snapshot(self) -> Snapshot:
        responses = await self._responses(fresh=True)
        with reply_content(self.host):
            return parse_snapshot(responses, polled_at=time.time())

    async def identity(self) -> Identity:
        with reply_content(self.host):
            return parse_identity(await self._slow(), host=self.host)

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

    async def presets(self) -> tuple[Preset, ...]:
        """The autotune presets, read now."""
        return parse_presets(await self.call("GET", PRESETS_PATH))

    # --- power ---------------------------------------------------------------------------------

    async def send_sleep(self) -> Sent:
        deadline = verify.deadline_in(self.endpoint.timeouts.verify_s)
        await self.call("POST", PAUSE)
        return self._verify("mining/pause", lambda s: s.mode is Mode.SLEEP and not s.is_mining, deadline)

    async def send_wake(self) -> Sent:
        deadline = verify.deadline_in(self.endpoint.timeouts.verify_s)
        await self.call("POST", RESUME)
        woke = self._verify("mining/resume", lambda s: bool(s.is_mining and s.hashrate_ths), deadline)
        return Sent(lambda: self._woken(woke))

    async def _woken(self, woke: Sent) -> Snapshot:
        """Verified hashing; then back to the preset from before fleetd's power limit, if any."""
        snap = await woke.confirm()
        before = self._before_limit.get()
        if before is None:
            return snap
        if current_preset(await self._slow()) != before:
            snap = await (await self._send_preset(before)).confirm()
        self._before_limit.set(None)
        return snap

    def power_limit_range(self) -> tuple[int, int] | None:
        cached = _SLOW.get(self._key)
        presets = parse_presets(cached[0].get(PRESETS)) if cached else ()
        watts = [p.watts for p in presets if p.watts is not None]
        return (int(min(watts)), int(max(watts))) if watts else None

    async def send_power_limit(self, watts: int) -> Sent:
        """Switch to the preset with the most watts within `watts` and verify the miner runs it."""
        presets = await self.presets()
        chosen = pick_preset(presets, watts)
        if chosen is None:
            lowest = min((p.watts for p in presets if p.watts is not None), default=None)
            why = f"the lowest is {lowest:g} W" if lowest is not None else "the miner lists none"
            raise CommandRejectedError(
                f"no VNish preset fits {watts} W ({why})", host=self.host, command=SETTINGS
            )
        if self._before_limit.get() is None:
            own = current_preset(await self._slow())
            if own:
                self._before_limit.set(own)
        return await self._send_preset(chosen.name)

    async def _send_preset(self, name: str) -> Sent:
        deadline = verify.deadline_in(self.endpoint.timeouts.verify_s)
        await self.call("POST", SETTINGS, {"miner": {"overclock": {"preset": name}}})

        async def read() -> tuple[Snapshot, str]:
            responses = await self._responses(fresh=True)
            with reply_content(self.host):
                return parse_snapshot(responses, polled_at=time.time()), current_preset(responses)

        async def confirm() -> Snapshot:
            timeouts = self.endpoint.timeouts
            end = await verify.until(
                read,
                lambda r: r[1] == name and r[0].mode is not Mode.SLEEP,
                deadline=deadline,
                interval=timeouts.verify_interval_s,
                started=deadline - timeouts.verify_s,
            )
            if end.ok and end.last is not None:
                return end.last[0]
            seen = f"preset {end.last[1]!r}" if end.last is not None else "no reading"
            raise NotCompliedError(
                f"preset {name} acknowledged but not in effect after {timeouts.verify_s:g} s ({seen})",
                host=self.host,
                command=SETTINGS,
            )

        return Sent(confirm)

    @property
    def _before_limit(self) -> BeforeLimit:
        """The preset from before fleetd's first power limit: wake restores it."""
        return BeforeLimit(f"vnish:{self.host}:{self.endpoint.web_port}", self.state_dir)

    def _verify(self, action: str, ok: Callable[[Snapshot], bool], deadline: float) -> Sent:
        return self.confirm_later(
            self._fresh_snapshot,
            ok,
            action=action,
            describe=lambda s: f"hashrate {verify.rate(s)}, mode {s.mode.value}",
            deadline=deadline,
        )


def _client(endpoint: Endpoint) -> KeepAliveHTTP:
    return KeepAliveHTTP(endpoint.host, endpoint.web_port, timeouts=endpoint.timeouts)
