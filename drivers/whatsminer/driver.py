"""The Whatsminer driver: btminer API v2 (TCP 4028) or v3 (TCP 4433), whichever the miner speaks."""

from __future__ import annotations

import asyncio
import time
from collections.abc import Callable, Mapping
from typing import Any, ClassVar

from fleetd.drivers.base import Driver, Endpoint, SupportsPowerLimit, SupportsReboot, SupportsSleep
from fleetd.drivers.whatsminer import parse

from fleetd.model import Identity, Reading, Snapshot
from fleetd.transport.btminer import BtminerV2, check_status, status_of
from fleetd.transport.btminer_v3 import BtminerV3
from fleetd.transport.errors import DeviceError, InvalidCommandError, NotCompliedError, UnsupportedError

V2_JOINED = ("summary", "devs", "pools")
V2_PER_POLL = ("get_psu", "get_error_code", "status")
V2_IDENTITY = ("get_version", "devdetails", "get_miner_info")
V3_STATUS = ("summary", "edevs", "pools")
# Below this share of the expected hashrate a miner counts as asleep when verifying sleep.
ASLEEP_FRACTION = 0.02


class WhatsminerDriver(Driver, SupportsSleep, SupportsPowerLimit, SupportsReboot):
    """MicroBT Whatsminer over btminer API v2 (encrypted privileged commands) or v3."""

    name: ClassVar[str] = "whatsminer"
    vendor: ClassVar[str] = "whatsminer"

    def __init__(self, endpoint: Endpoint, *, api: str = "") -> None:
        super().__init__(endpoint)
        creds = endpoint.credentials
        self.v2 = BtminerV2(endpoint.host, endpoint.api_port, endpoint.timeouts, creds.password)
        self.v3 = BtminerV3(
            endpoint.host,
            endpoint.v3_port,
            endpoint.timeouts,
            account=creds.username,
            password=creds.password,
        )
        self.api = api  # "btminer-v2" / "btminer-v3"; learned on first use when empty
        self._identity_raw: dict[str, Any] | None = None

    # --- detection -------------------------------------------------------------------------------
    @classmethod
    async def probe(cls, endpoint: Endpoint) -> Identity | None:
        drv = cls(endpoint)
        try:
            return await drv._detect()
        except DeviceError:
            return None

    async def _detect(self) -> Identity | None:
        v2, v3 = await asyncio.gather(
            self._identity_raw_v2(), self._identity_raw_v3(), return_exceptions=True
        )
        v2_ok = isinstance(v2, dict)
        v3_ok = isinstance(v3, dict)
        if v2_ok:
            ident = parse.identity_v2(v2, host=self.host)
            if not (v3_ok and parse.prefers_v3(ident.firmware)):
                self.api, self._identity_raw = "btminer-v2", v2
                return ident
        if v3_ok:
            self.api, self._identity_raw = "btminer-v3", v3
            return parse.identity_v3(v3, host=self.host)
        return None

    async def _identity_raw_v2(self) -> dict[str, Any] | None:
        version = await self.v2.raw("get_version")
        letter, _, msg = status_of(version)
        if letter != "S" or not isinstance(msg, dict) or "fw_ver" not in msg:
            return None  # not a Whatsminer (an Antminer answers "Invalid command")
        out: dict[str, Any] = {"rpc_get_version": version}
        rest = await asyncio.gather(*(self.v2.raw(c) for c in V2_IDENTITY[1:]), return_exceptions=True)
        for c, rep in zip(V2_IDENTITY[1:], rest, strict=True):
            if isinstance(rep, dict):
                out[f"rpc_{c}"] = rep
        return out

    async def _identity_raw_v3(self) -> dict[str, Any] | None:
        info = await self.v3.get("get.device.info")
        msg = info.get("msg")
        if not isinstance(msg, dict) or not isinstance(msg.get("miner"), dict):
            return None
        if isinstance(msg.get("salt"), str):
            self.v3.salt = msg["salt"]
        return {"rpc_get.device.info": info}

    async def _ensure_api(self) -> str:
        if not self.api and await self._detect() is None:
            raise UnsupportedError("no btminer API v2 or v3 answers here", host=self.host, command="probe")
        return self.api

    # --- reads -----------------------------------------------------------------------------------
    async def identity(self) -> Identity:
        return (await self.read()).identity

    async def snapshot(self) -> Snapshot:
        return (await self.read()).snapshot

    async def read(self) -> Reading:
        polled_at = time.time()
        return self.parse_responses(await self.raw_responses(), host=self.host, polled_at=polled_at)

    async def raw_responses(self) -> dict[str, Any]:
        api = await self._ensure_api()
        return await (self._raw_v3() if api == "btminer-v3" else self._raw_v2())

    async def _raw_v2(self) -> dict[str, Any]:
        if self._identity_raw is None or "rpc_get_version" not in self._identity_raw:
            self._identity_raw = await self._identity_raw_v2() or {}
        joined, *rest = await asyncio.gather(
            self.v2.joined(*V2_JOINED), *(self.v2.raw(c) for c in V2_PER_POLL), return_exceptions=True
        )
        if isinstance(joined, BaseException):
            raise joined
        out = dict(self._identity_raw)
        out.update({f"rpc_{c}": rep for c, rep in joined.items()})
        for c, rep in zip(V2_PER_POLL, rest, strict=True):
            if isinstance(rep, dict):  # optional: older firmware lacks some of them
                out[f"rpc_{c}"] = rep
        return out

    async def _raw_v3(self) -> dict[str, Any]:
        results = await asyncio.gather(
            self.v3.get("get.device.info"), *(self.v3.get("get.miner.status", p) for p in V3_STATUS)
        )
        info, *status = results
        msg = info.get("msg")
        if isinstance(msg, dict) and isinstance(msg.get("salt"), str):
            self.v3.salt = msg["salt"]
        out = {"rpc_get.device.info": info}
        out.update({f"rpc_get.miner.status_{p}": rep for p, rep in zip(V3_STATUS, status, strict=True)})
        return out

    @classmethod
    def parse_responses(
        cls, responses: Mapping[str, Any], *, host: str = "", polled_at: float = 0.0
    ) -> Reading:
        return parse.parse(responses, host=host, polled_at=polled_at)

    # --- control ---------------------------------------------------------------------------------
    async def _v2_priv(self, command: str, **params: Any) -> dict[str, Any]:
        reply = await self.v2.privileged(command, **params)
        return check_status(reply, host=self.host, command=command)

    async def sleep(self) -> Snapshot:
        before = await self.snapshot()
        if await self._ensure_api() == "btminer-v3":
            await self.v3.set("set.miner.service", "stop")
        else:
            await self._v2_priv("power_off", respbefore="true")
        expected = before.expected_hashrate_ths or before.hashrate_ths or 0.0
        return await self._verify("sleep", lambda s: _asleep(s, expected), "hashrate did not drop")

    async def wake(self) -> Snapshot:
        if await self._ensure_api() == "btminer-v3":
            await self.v3.set("set.miner.service", "start")
        else:
            await self._v2_priv("power_on")
        return await self._verify(
            "wake", lambda s: bool(s.hashrate_ths) and s.is_mining, "hashrate did not come back"
        )

    async def set_power_limit(self, watts: int) -> Snapshot:
        if await self._ensure_api() == "btminer-v3":
            await self.v3.set("set.miner.power_limit", int(watts))
            cmd = "set.miner.power_limit"
        else:
            await self._v2_priv("adjust_power_limit", power_limit=int(watts))
            cmd = "adjust_power_limit"
        return await self._verify(
            cmd,
            lambda s: s.power_limit_w is not None and abs(s.power_limit_w - watts) < 1,
            f"power limit did not become {watts} W",
        )

    async def set_power_pct(self, percent: int) -> Snapshot:
        """Run at `percent` of nominal power (btminer v2 `set_power_pct`, where the firmware has it)."""
        if not 0 < percent <= 100:
            raise ValueError("percent must be within 1..100")
        if await self._ensure_api() == "btminer-v3":
            raise UnsupportedError(
                "set_power_pct is a btminer v2 command; use set_power_limit",
                host=self.host,
                command="set_power_pct",
            )
        before = await self.snapshot()
        try:
            await self._v2_priv("set_power_pct", percent=int(percent))
        except InvalidCommandError:
            raise UnsupportedError(
                "this firmware has no set_power_pct", host=self.host, command="set_power_pct"
            ) from None
        if percent == 100:
            return await self.snapshot()
        base = before.power_w or 0.0
        return await self._verify(
            "set_power_pct", lambda s: s.power_w is not None and s.power_w < base, "power did not drop"
        )

    async def reboot(self) -> None:
        if await self._ensure_api() == "btminer-v3":
            await self.v3.set("set.system.reboot")
        else:
            await self._v2_priv("reboot")

    async def _verify(self, command: str, ok: Callable[[Snapshot], bool], failure: str) -> Snapshot:
        """Re-read until `ok` holds or Timeouts.verify_s passes; never trust the acknowledgement."""
        t = self.endpoint.timeouts
        deadline = time.monotonic() + t.verify_s
        last: Snapshot | None = None
        while True:
            try:
                last = await self.snapshot()
                if ok(last):
                    return last
            except DeviceError:
                pass  # a miner may drop its API briefly while switching; keep verifying
            if time.monotonic() + t.verify_interval_s > deadline:
                break
            await asyncio.sleep(t.verify_interval_s)
        seen = f" (last read: {last.hashrate_ths} TH/s, {last.power_w} W)" if last else ""
        raise NotCompliedError(
            f"acknowledged but {failure} within {t.verify_s:g} s{seen}", host=self.host, command=command
        )


def _asleep(s: Snapshot, expected: float) -> bool:
    hr = s.hashrate_ths or 0.0
    return not s.is_mining or hr <= max(expected * ASLEEP_FRACTION, 0.0)
