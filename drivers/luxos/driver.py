"""LuxOS driver: reads over the CGMiner API, power control through LuxOS's session-guarded commands.

LuxOS allows one API session at a time: `logon` opens it and every privileged command carries its id.
Each power command opens its own session and always logs off afterwards, so fleetd never holds the
miner's only session; when someone else holds it, `logon` is refused and the command fails with
SessionBusyError. Profiles (the firmware's frequency/voltage presets, each with its nominal watts) are
the power-limit capability: the driver picks the profile with the most power that fits the limit.
"""

from __future__ import annotations

import contextlib
import math
import time
from collections.abc import AsyncIterator, Callable, Mapping
from typing import Any

from fleetd.drivers import verify
from fleetd.drivers.base import Driver, Endpoint, LimitsInTwoPhases, Sent, SleepsInTwoPhases
from fleetd.drivers.before_limit import BeforeLimit, restore_watts
from fleetd.drivers.cgminer import VersionProbe, first, reply_content
from fleetd.drivers.luxos.parse import (
    Profile,
    Thermal,
    is_luxos,
    parse_identity,
    parse_profiles,
    parse_snapshot,
    parse_thermal,
    pick_profile,
)

from fleetd.model import Identity, Mode, Reading, Snapshot
from fleetd.transport.cgminer import CGMinerAPI
from fleetd.transport.errors import CommandRejectedError, DeviceError

__all__ = ["LuxOSDriver", "SessionBusyError"]

PROFILES_REFRESH_S = 600.0
# Profiles per (host, API port) and when (time.monotonic) to read them again: they change only when
# an operator retunes the miner, and the list is the poll's biggest reply.
_PROFILES: dict[tuple[str, int], tuple[tuple[Profile, ...], float]] = {}


class SessionBusyError(CommandRejectedError):
    """LuxOS refused `logon`: another client holds the miner's only API session."""


class LuxOSDriver(VersionProbe, Driver, SleepsInTwoPhases, LimitsInTwoPhases):
    """An Antminer on LuxOS. A poll is one joined CGMiner request; power commands run in a LuxOS session."""

    name = "luxos"
    vendor = "antminer"
    hardware = "Bitmain"
    firmware = "LuxOS (CGMiner API on 4028 with LuxOS session commands)"
    models = ("Antminer S19 family", "Antminer S21 family")
    reads = "summary/stats/pools/power/config per poll; profiles (cached)"
    controls = (
        "sleep/wake: `curtail` in a `logon` session; power limit: `profileset` (profiles; wake restores the"
        " profile)"
    )
    POLL = ("version", "summary", "stats", "pools", "power", "config")
    OPTIONAL = ("pools", "power", "config")

    def __init__(self, endpoint: Endpoint) -> None:
        super().__init__(endpoint)
        self.api = CGMinerAPI(endpoint.host, endpoint.api_port, timeouts=endpoint.timeouts)

    @property
    def _key(self) -> tuple[str, int]:
        return (self.host, self.endpoint.api_port)

    # --- reading -------------------------------------------------------------------------------

    @classmethod
    def from_version(cls, reply: Mapping[str, Any], *, host: str = "") -> Identity | None:
        """Pure: the identity a `version` reply shows if it is LuxOS's, else None."""
        if not is_luxos(reply):
            return None
        return parse_identity({"rpc_version": reply}, host=host)

    async def _rpc(self) -> dict[str, Any]:
        replies = await self.api.commands(*self.POLL, optional=self.OPTIONAL)
        out: dict[str, Any] = {f"rpc_{cmd}": reply for cmd, reply in replies.items()}
        return out

    async def read(self) -> Reading:
        responses = await self._rpc()
        profiles = await self._cached_profiles()
        limit = _watts_of(profiles, str(first(responses.get("rpc_config"), "CONFIG").get("Profile") or ""))
        with reply_content(self.host):
            return Reading(
                parse_identity(responses, host=self.host),
                self._saw(parse_snapshot(responses, polled_at=time.time(), limit_w=limit)),
            )

    async def _cached_profiles(self) -> tuple[Profile, ...]:
        cached = _PROFILES.get(self._key)
        if cached is not None and time.monotonic() < cached[1]:
            return cached[0]
        # Booked before asking, so that a miner without `profiles` is not asked at every poll.
        _PROFILES[self._key] = (cached[0] if cached else (), time.monotonic() + PROFILES_REFRESH_S)
        with contextlib.suppress(DeviceError):
            return await self.profiles()
        return _PROFILES[self._key][0]

    async def profiles(self) -> tuple[Profile, ...]:
        """The miner's profiles, read now (and cached for polls)."""
        found = parse_profiles(await self.api.command("profiles"))
        _PROFILES[self._key] = (found, time.monotonic() + PROFILES_REFRESH_S)
        return found

    async def thermal(self) -> Thermal:
        """Temperature control and ATM settings (`tempctrl`, `atm`)."""
        replies = await self.api.commands("tempctrl", "atm", optional=("tempctrl", "atm"))
        return parse_thermal({f"rpc_{cmd}": r for cmd, r in replies.items()})

    async def snapshot(self) -> Snapshot:
        return (await self.read()).snapshot

    async def identity(self) -> Identity:
        replies = await self.api.commands("version", "config", optional=("config",))
        return parse_identity({f"rpc_{cmd}": r for cmd, r in replies.items()}, host=self.host)

    async def raw_responses(self) -> dict[str, Any]:
        out = await self._rpc()
        for cmd in ("profiles", "tempctrl", "atm"):
            with contextlib.suppress(CommandRejectedError):
                out[f"rpc_{cmd}"] = await self.api.command(cmd)
        return out

    @classmethod
    def parse_responses(
        cls, responses: Mapping[str, Any], *, host: str = "", polled_at: float = 0.0
    ) -> Reading:
        with reply_content(host):
            return Reading(
                parse_identity(responses, host=host), parse_snapshot(responses, polled_at=polled_at)
            )

    # --- session -------------------------------------------------------------------------------

    @contextlib.asynccontextmanager
    async def session(self) -> AsyncIterator[str]:
        """A LuxOS session id for privileged commands, logged off however the block ends."""
        try:
            reply = await self.api.command("logon")
        except CommandRejectedError as exc:
            if "session" in exc.message.lower():
                raise SessionBusyError(
                    f"another client holds the LuxOS API session ({exc.message}); try again when it ends",
                    host=self.host,
                    command="logon",
                    code=exc.code,
                ) from None
            raise
        sid = str(first(reply, "SESSION").get("SessionID") or "")
        if not sid:
            raise CommandRejectedError("logon returned no session id", host=self.host, command="logon")
        try:
            yield sid
        finally:
            with contextlib.suppress(DeviceError):
                await self.api.command("logoff", sid)

    # --- power ---------------------------------------------------------------------------------

    async def send_sleep(self) -> Sent:
        recent = self.recent()
        before = recent.hashrate_ths if recent is not None else await self._hashrate_or_none()
        deadline = verify.deadline_in(self.endpoint.timeouts.verify_s)
        async with self.session() as sid:
            await self.api.command("curtail", f"{sid},sleep")

        def dropped(snap: Snapshot) -> bool:
            rate = snap.hashrate_ths
            if rate is None:
                return False
            return rate <= 0.05 * before if before else rate <= 0.0

        return self._verify("sleep", dropped, deadline)

    async def send_wake(self) -> Sent:
        deadline = verify.deadline_in(self.endpoint.timeouts.verify_s)
        async with self.session() as sid:
            await self.api.command("curtail", f"{sid},wakeup")
        woke = self._verify("wake", lambda s: bool(s.hashrate_ths and s.hashrate_ths > 0), deadline)
        return Sent(lambda: restore_watts(woke, self._before_limit, self._send_profile))

    @property
    def _before_limit(self) -> BeforeLimit:
        """The watts of the profile from before fleetd's first power limit (wake picks it again)."""
        return BeforeLimit(f"luxos:{self.host}:{self.endpoint.api_port}", self.state_dir)

    def power_limit_range(self) -> tuple[int, int] | None:
        cached = _PROFILES.get(self._key)
        watts = [p.watts for p in cached[0] if p.watts is not None] if cached else []
        return (int(min(watts)), int(max(watts))) if watts else None

    async def send_power_limit(self, watts: int) -> Sent:
        """Switch to the profile with the most power within `watts`; the first limit remembers the profile."""
        if self._before_limit.get() is None:
            own = (self.recent() or await self.snapshot()).power_limit_w
            if own is not None:  # the profile's watts, rounded up so that wake picks that profile again
                self._before_limit.set(str(math.ceil(own)))
        return await self._send_profile(watts)

    async def _send_profile(self, watts: int) -> Sent:
        """Switch to the profile with the most power within `watts` and verify the miner runs it."""
        profiles = await self.profiles()
        chosen = pick_profile(profiles, watts)
        if chosen is None:
            lowest = min((p.watts for p in profiles if p.watts is not None), default=None)
            why = f"the lowest is {lowest:g} W" if lowest is not None else "the miner lists none"
            raise CommandRejectedError(
                f"no LuxOS profile fits {watts} W ({why})", host=self.host, command="profileset"
            )
        deadline = verify.deadline_in(self.endpoint.timeouts.verify_s)
        async with self.session() as sid:
            await self.api.command("profileset", f"{sid},{chosen.name}")
        return self._verify(
            f"profileset {chosen.name}",
            lambda s: s.power_limit_w == chosen.watts and s.mode is not Mode.SLEEP,
            deadline,
        )

    async def _hashrate_or_none(self) -> float | None:
        try:
            return (await self.read()).snapshot.hashrate_ths
        except DeviceError:
            return None

    def _verify(self, action: str, ok: Callable[[Snapshot], bool], deadline: float) -> Sent:
        def describe(s: Snapshot) -> str:
            return f"hashrate {verify.rate(s)}, profile power {verify.watts(s.power_limit_w)}"

        return self.confirm_later(self.snapshot, ok, action=action, describe=describe, deadline=deadline)


def _watts_of(profiles: tuple[Profile, ...], name: str) -> float | None:
    return next((p.watts for p in profiles if p.name == name), None)
