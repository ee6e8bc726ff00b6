"""The Whatsminer driver: btminer API v2 (TCP 4028) or v3 (TCP 4433), whichever the miner speaks."""

from __future__ import annotations

import asyncio
import contextlib
import json
import time
from collections.abc import Awaitable, Callable, Mapping
from typing import Any, ClassVar

from fleetd.drivers import verify
from fleetd.drivers.base import (
    Driver,
    Endpoint,
    LimitsInTwoPhases,
    Login,
    Sent,
    SleepsInTwoPhases,
    SupportsReboot,
)
from fleetd.drivers.before_limit import BeforeLimit, restore_watts
from fleetd.drivers.cgminer import reply_content
from fleetd.drivers.whatsminer import parse

from fleetd.model import Identity, Reading, Snapshot
from fleetd.transport.btminer import DEFAULT_PASSWORD as V2_DEFAULT_PASSWORD
from fleetd.transport.btminer import BtminerV2, check_status, status_of
from fleetd.transport.btminer_v3 import BtminerV3
from fleetd.transport.errors import (
    AccessDeniedError,
    CommandRejectedError,
    DeviceError,
    InvalidCommandError,
    MalformedReplyError,
    NotCompliedError,
    UnreachableError,
    UnsupportedError,
)

# Read on every poll: v2 summary+devs+pools in one joined request; v3 status summary and edevs.
V2_JOINED = ("summary", "devs", "pools")
V2_IDENTITY = ("get_version", "devdetails", "get_miner_info")
# Slow-changing replies are re-read only this often (s); identity also when summary shows a change.
IDENTITY_TTL_S = 3600.0
V2_SLOW = {"rpc_get_psu": 300.0, "rpc_get_error_code": 60.0}
V3_SLOW = {"rpc_get.device.info": 60.0, "rpc_get.miner.status_pools": 60.0}
# Which API each miner was found to speak, so that a driver made right after `detect` skips a probe.
_APIS: dict[tuple[str, int, int], str] = {}
V2_FACTORY_LOGIN = Login(None, V2_DEFAULT_PASSWORD)  # btminer v2: an admin password, no account
# Below this share of the expected hashrate a miner counts as asleep when verifying sleep.
ASLEEP_FRACTION = 0.02
# The lowest power limit fleetd sends. MicroBT's API documents `set.miner.power_limit` (v3) and
# `adjust_power_limit` (v2) as 0-99999 W and "cannot exceed the device's standard operating power", with
# no model floor; 1000 W is fleetd's own model-independent floor (the emulator's too): about a third of an
# M30S-M66S's rated power, where its hashboards still run, never a near-zero limit that is a sleep in
# disguise. The highest is the limit the miner reports when fleetd has not limited it (its rated power).
MIN_POWER_LIMIT_W = 1000


class WhatsminerDriver(Driver, SleepsInTwoPhases, LimitsInTwoPhases, SupportsReboot):
    """MicroBT Whatsminer over btminer API v2 (encrypted privileged commands) or v3."""

    name: ClassVar[str] = "whatsminer"
    vendor: ClassVar[str] = "whatsminer"
    hardware: ClassVar[str] = "MicroBT"
    firmware: ClassVar[str] = (
        "Whatsminer btminer API v2 (4028, AES-256 envelope for privileged commands)"
        " and v3 (4433, per-command tokens)"
    )
    models: ClassVar[tuple[str, ...]] = ("Whatsminer M30S-M66S families",)
    reads: ClassVar[str] = "summary/devs/pools per poll; PSU, error codes and device info on slower schedules"
    controls: ClassVar[str] = (
        "sleep/wake: `power_off`/`power_on`, `set.miner.service`; power limit (1000 W up to the miner's own"
        " limit; wake restores that) and percent; reboot"
    )

    def __init__(self, endpoint: Endpoint, *, api: str = "") -> None:
        super().__init__(endpoint)
        creds = endpoint.credentials
        # API v2 has no account and its own factory password; v3 takes the vendor's account and password.
        v2 = creds.for_vendor(self.vendor, default=V2_FACTORY_LOGIN)
        v3 = creds.for_vendor(self.vendor)
        self.v2 = BtminerV2(endpoint.host, endpoint.api_port, endpoint.timeouts, v2.password)
        self.v3 = BtminerV3(
            endpoint.host, endpoint.v3_port, endpoint.timeouts, account=v3.username, password=v3.password
        )
        # "btminer-v2" / "btminer-v3": given, detected earlier in this process, or learned on first use.
        self.api = api or _APIS.get(self._where(), "")
        self._joined_ok: bool | None = None  # does the firmware accept "summary+devs+pools"?
        self._slow: dict[str, tuple[float, Any]] = {}  # reply key -> (monotonic time read, reply)

    # --- detection -------------------------------------------------------------------------------
    @classmethod
    async def probe(cls, endpoint: Endpoint) -> Identity | None:
        return await cls(endpoint)._detect()

    async def _detect(self) -> Identity | None:
        """v2 and v3 at once; v3 is waited for only where v2 is absent or its firmware prefers v3."""
        v3_task = asyncio.ensure_future(self._identity_raw_v3())
        try:
            try:
                v2: dict[str, Any] | None = await self._identity_raw_v2()
                v2_error: DeviceError | None = None
            except DeviceError as exc:
                v2, v2_error = None, exc
            if v2 is None and v2_error is None:
                return None  # port 4028 answered, but not as a Whatsminer
            ident = parse.identity_v2(v2, host=self.host) if v2 is not None else None
            if ident is not None and not parse.prefers_v3(ident.firmware):
                return self._chose("btminer-v2", v2, ident)
            try:
                v3 = await v3_task
            except DeviceError:
                v3 = None
                if ident is None:
                    # Neither answered: report why the v2 port failed, else why v3 did.
                    if v2_error is not None and not isinstance(v2_error, UnreachableError):
                        raise v2_error from None
                    raise
            if v3 is not None:
                return self._chose("btminer-v3", v3, parse.identity_v3(v3, host=self.host))
            if ident is not None:
                return self._chose("btminer-v2", v2, ident)
            return None
        finally:
            if v3_task.done() and not v3_task.cancelled():
                v3_task.exception()  # retrieved: an unused v3 failure is not an error
            else:
                v3_task.cancel()

    def _where(self) -> tuple[str, int, int]:
        return self.endpoint.host, self.endpoint.api_port, self.endpoint.v3_port

    def _chose(self, api: str, replies: Mapping[str, Any] | None, ident: Identity) -> Identity:
        self.api = _APIS[self._where()] = api
        self._remember(replies or {})
        return ident

    def _remember(self, replies: Mapping[str, Any]) -> None:
        now = time.monotonic()
        for k, rep in replies.items():
            if k != "rpc_summary":  # read on every poll anyway
                self._slow[k] = (now, parse.slim(k, rep))

    async def _identity_raw_v2(self) -> dict[str, Any] | None:
        """get_version, devdetails, get_miner_info of a Whatsminer; None if 4028 is another miner."""
        version = await self.v2.raw("get_version")
        letter, _, msg = status_of(version)
        if letter == "S" and isinstance(msg, dict) and "fw_ver" in msg:
            out = {"rpc_get_version": version}
            rest = V2_IDENTITY[1:]
        else:
            # Firmware without get_version still names the bitmicro driver in devdetails.
            details = await self.v2.raw("devdetails")
            text = json.dumps(details).lower()
            if status_of(details)[0] != "S" or not ("bitmicro" in text or "btminer" in text):
                return None  # another miner (an Antminer answers "Invalid command")
            # ... and its summary carries the firmware date and MAC that get_version would give.
            out, rest = {"rpc_devdetails": details}, ("get_miner_info", "summary")
        replies = await asyncio.gather(*(self.v2.raw(c) for c in rest), return_exceptions=True)
        out.update({f"rpc_{c}": rep for c, rep in zip(rest, replies, strict=True) if isinstance(rep, dict)})
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
        reading = self.parse_responses(await self._collect(full=False), host=self.host, polled_at=polled_at)
        self._saw(reading.snapshot)
        return reading

    async def raw_responses(self) -> dict[str, Any]:
        return await self._collect(full=True)

    async def _collect(self, *, full: bool) -> dict[str, Any]:
        api = await self._ensure_api()
        return await (self._collect_v3(full) if api == "btminer-v3" else self._collect_v2(full))

    def _due(self, keys: Mapping[str, float], full: bool) -> list[str]:
        now = time.monotonic()
        return [k for k, ttl in keys.items() if full or k not in self._slow or now - self._slow[k][0] > ttl]

    async def _fetch(self, calls: Mapping[str, Callable[[], Awaitable[Any]]]) -> dict[str, Any]:
        """Run the calls at once; keep the replies that came (slow-changing data is optional)."""
        if not calls:
            return {}
        keys = list(calls)
        results = await asyncio.gather(*(c() for c in calls.values()), return_exceptions=True)
        now = time.monotonic()
        out = {}
        for k, rep in zip(keys, results, strict=True):
            if isinstance(rep, BaseException) and not isinstance(rep, DeviceError):
                raise rep  # a bug, not a miner's failure
            if isinstance(rep, dict):
                self._slow[k] = (now, parse.slim(k, rep))
                out[k] = rep
        return out

    async def _collect_v2(self, full: bool) -> dict[str, Any]:
        due = self._due(V2_SLOW, full)
        if due:
            calls: dict[str, Callable[[], Awaitable[Any]]] = {
                k: (lambda k=k: self.v2.raw(k[4:])) for k in due
            }
            joined, fetched = await asyncio.gather(self._per_poll_v2(), self._fetch(calls))
        else:
            joined, fetched = await self._per_poll_v2(), {}
        summary = parse.first(joined.get("summary"), "SUMMARY")
        if full or self._v2_identity_changed(summary):
            fetched.update(await self._fetch({f"rpc_{c}": (lambda c=c: self.v2.raw(c)) for c in V2_IDENTITY}))
            fw = str(parse.msg(fetched.get("rpc_get_version")).get("fw_ver") or "")
            if parse.prefers_v3(fw):
                self.api = ""  # upgraded to API v3 firmware: detect again on the next call
                _APIS.pop(self._where(), None)
        out = {k: rep for k, (_, rep) in self._slow.items() if k.startswith("rpc_")}
        out.update(fetched)
        out.update({f"rpc_{c}": rep for c, rep in joined.items()})
        # Only a miner that is not hashing needs `status` (btmineroff tells asleep from broken).
        if full or not parse.num(summary.get("MHS 5s")):
            with contextlib.suppress(DeviceError):
                out["rpc_status"] = await self.v2.raw("status")
        else:
            out.pop("rpc_status", None)
        return out

    async def _per_poll_v2(self) -> dict[str, Any]:
        """summary, devs and pools: one joined request where the firmware accepts it, else three."""
        if self._joined_ok is not False:
            try:
                out = await self.v2.joined(*V2_JOINED)
            except (CommandRejectedError, MalformedReplyError):
                if self._joined_ok:
                    raise  # it worked before: this is a real failure, not a firmware limit
                self._joined_ok = False
            else:
                self._joined_ok = True
                return out
        replies = await asyncio.gather(*(self.v2.command(c) for c in V2_JOINED))
        return dict(zip(V2_JOINED, replies, strict=True))

    def _v2_identity_changed(self, summary: Mapping[str, Any]) -> bool:
        cached = self._slow.get("rpc_get_version") or self._slow.get("rpc_devdetails")
        if cached is None or time.monotonic() - cached[0] > IDENTITY_TTL_S:
            return True
        ver = parse.msg(cached[1])
        fw = str(summary.get("Firmware Version") or "").strip().strip("'")
        if fw and fw != str(ver.get("fw_ver") or fw):
            return True
        mac = str(summary.get("MAC") or "").upper()
        info = self._slow.get("rpc_get_miner_info")
        return bool(mac and info and str(parse.msg(info[1]).get("mac") or mac).upper() != mac)

    async def _collect_v3(self, full: bool) -> dict[str, Any]:
        due = self._due(V3_SLOW, full)
        calls: dict[str, Callable[[], Awaitable[Any]]] = {k: (lambda k=k: self._v3_read(k)) for k in due}
        summary, edevs, fetched = await asyncio.gather(
            self.v3.get("get.miner.status", "summary"),
            self.v3.get("get.miner.status", "edevs"),
            self._fetch(calls),
        )
        hr = parse.num((parse.msg(summary).get("summary") or {}).get("hash-realtime"))
        if not hr and "rpc_get.device.info" not in due:
            # Not hashing: re-read device info now (its "working" flag tells asleep from broken).
            fetched.update(
                await self._fetch({"rpc_get.device.info": lambda: self._v3_read("rpc_get.device.info")})
            )
        info = self._slow.get("rpc_get.device.info")
        if info is None:
            raise DeviceError("get.device.info failed", host=self.host, command="get.device.info")
        salt = parse.msg(info[1]).get("salt")
        if isinstance(salt, str):
            self.v3.salt = salt
        out = {k: rep for k, (_, rep) in self._slow.items() if k.startswith("rpc_get.")}
        out.update(fetched)
        out["rpc_get.miner.status_summary"] = summary
        out["rpc_get.miner.status_edevs"] = edevs
        return out

    async def _v3_read(self, key: str) -> dict[str, Any]:
        if key == "rpc_get.device.info":
            return await self.v3.get("get.device.info")
        return await self.v3.get("get.miner.status", key.rsplit("_", 1)[1])

    @classmethod
    def parse_responses(
        cls, responses: Mapping[str, Any], *, host: str = "", polled_at: float = 0.0
    ) -> Reading:
        with reply_content(host):
            return parse.parse(responses, host=host, polled_at=polled_at)

    # --- control ---------------------------------------------------------------------------------
    async def _v2_priv(self, command: str, **params: Any) -> dict[str, Any]:
        try:
            reply = await self.v2.privileged(command, **params)
        except AccessDeniedError as exc:
            cached = self._slow.get("rpc_get_version")
            fw = str(parse.msg(cached[1]).get("fw_ver") or "") if cached else ""
            if not parse.prefers_v3(fw):
                raise
            # Firmware from 2024-11 refuses v2 writes: v3 is the way, and it did not answer.
            raise AccessDeniedError(
                f"firmware {fw} takes commands only over API v3 on port {self.endpoint.v3_port}, which "
                "does not answer: check that port (--v3-port) and that nothing blocks it, then retry",
                host=self.host,
                command=command,
                code=exc.code,
            ) from None
        return check_status(reply, host=self.host, command=command)

    async def send_sleep(self) -> Sent:
        before = self.recent() or await self.snapshot()
        deadline = verify.deadline_in(self.endpoint.timeouts.verify_s)
        if await self._ensure_api() == "btminer-v3":
            await self.v3.set("set.miner.service", "stop")
        else:
            await self._v2_priv("power_off", respbefore="true")
        expected = before.expected_hashrate_ths or before.hashrate_ths or 0.0
        return self._verify("sleep", lambda s: _asleep(s, expected), "hashrate did not drop", deadline)

    async def send_wake(self) -> Sent:
        deadline = verify.deadline_in(self.endpoint.timeouts.verify_s)
        if await self._ensure_api() == "btminer-v3":
            await self.v3.set("set.miner.service", "start")
        else:
            await self._v2_priv("power_on")
        woke = self._verify(
            "wake", lambda s: bool(s.hashrate_ths) and s.is_mining, "hashrate did not come back", deadline
        )
        return Sent(lambda: restore_watts(woke, self._before_limit, self._send_limit))

    def power_limit_range(self) -> tuple[int, int] | None:
        seen = self._seen[1] if self._seen is not None else None
        top = self._before_limit.watts() or (seen.power_limit_w if seen is not None else None)
        if top is None or top <= MIN_POWER_LIMIT_W:
            return None
        return MIN_POWER_LIMIT_W, int(top)

    async def send_power_limit(self, watts: int) -> Sent:
        """Limit the miner to `watts`; the first limit remembers the miner's own limit for wake to restore."""
        if self._before_limit.get() is None:
            own = (self.recent() or await self.snapshot()).power_limit_w
            if own is not None:
                self._before_limit.set(str(int(own)))
        return await self._send_limit(watts)

    async def _send_limit(self, watts: int) -> Sent:
        deadline = verify.deadline_in(self.endpoint.timeouts.verify_s)
        if await self._ensure_api() == "btminer-v3":
            await self.v3.set("set.miner.power_limit", int(watts))
            cmd = "set.miner.power_limit"
        else:
            await self._v2_priv("adjust_power_limit", power_limit=int(watts))
            cmd = "adjust_power_limit"
        return self._verify(
            cmd,
            lambda s: s.power_limit_w is not None and abs(s.power_limit_w - watts) < 1,
            f"power limit did not become {watts} W",
            deadline,
        )

    @property
    def _before_limit(self) -> BeforeLimit:
        """The miner's own power limit from before fleetd's first limit: wake restores it."""
        return BeforeLimit(f"whatsminer:{self.host}:{self.endpoint.api_port}", self.state_dir)

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
            "set_power_pct",
            lambda s: s.power_w is not None and s.power_w < base,
            "power did not drop",
            verify.deadline_in(self.endpoint.timeouts.verify_s),
        ).confirm()

    async def reboot(self) -> None:
        if await self._ensure_api() == "btminer-v3":
            await self.v3.set("set.system.reboot")
        else:
            await self._v2_priv("reboot")

    def _verify(self, command: str, ok: Callable[[Snapshot], bool], failure: str, deadline: float) -> Sent:
        """Re-read until `ok` holds or the deadline passes; never trust the acknowledgement."""
        return Sent(lambda: self._confirm(command, ok, failure, deadline))

    async def _confirm(
        self, command: str, ok: Callable[[Snapshot], bool], failure: str, deadline: float
    ) -> Snapshot:
        t = self.endpoint.timeouts
        end = await verify.until(
            self.snapshot, ok, deadline=deadline, interval=t.verify_interval_s, started=deadline - t.verify_s
        )
        if end.ok and end.last is not None:
            return end.last
        last = end.last
        seen = f" (last read: {last.hashrate_ths} TH/s, {last.power_w} W)" if last else ""
        if last is None and end.error is not None:
            seen = f" (no reading: {end.error.message})"
        raise NotCompliedError(
            f"acknowledged but {failure} after {end.waited(t.verify_s)}{seen}",
            host=self.host,
            command=command,
        )


def _asleep(s: Snapshot, expected: float) -> bool:
    hr = s.hashrate_ths or 0.0
    return not s.is_mining or hr <= max(expected * ASLEEP_FRACTION, 0.0)
