"""Stock Antminer (BMMiner/CGMiner API on 4028, web CGI on 80): reads, verified sleep/wake, reboot.

Work mode in polls: the RPC API does not report it, only `get_miner_conf.cgi` does. `read()` therefore
takes the mode from a per-process cache of the configured mode (keyed by host and web port, so that a
re-created driver keeps it). Every configuration read fills the cache (sleep/wake verification,
`identity()`, `raw_responses()`), and `read()` refreshes it itself: on the first poll, every ~10 minutes
(jittered so that a fleet's refreshes spread out), and at once when telemetry contradicts it (cached
sleep but hashing: woken behind our back). A refresh is one digest-authenticated GET bounded by
`MODE_FETCH_MAX_S`; when the web interface fails (wrong password, closed port) the mode is "unknown"
until the next refresh, and the RPC reading is returned regardless.

Wake restores the mode the miner had before `sleep` (normal or low), remembered per process and, when
`state_dir` is set (the CLI and the daemon set it), on disk, so that a `fleetd wake` after a `fleetd sleep`,
or a wake after a daemon restart, agrees.
"""

from __future__ import annotations

import asyncio
import contextlib
import dataclasses
import random
import time
from collections.abc import AsyncIterator, Callable, Mapping
from typing import Any

from fleetd.drivers import verify
from fleetd.drivers.antminer import modes
from fleetd.drivers.antminer.parse import conf_mode, parse_identity, parse_snapshot
from fleetd.drivers.base import Driver, Endpoint, Sent, SupportsReboot, SupportsSleep
from fleetd.drivers.cgminer import VersionProbe, first, reply_content

from fleetd.model import Component, Fault, Identity, Mode, Reading, Snapshot
from fleetd.transport.cgminer import CGMinerAPI
from fleetd.transport.errors import (
    AuthError,
    CommandRejectedError,
    DeviceError,
    DeviceTimeoutError,
    MalformedReplyError,
    NotCompliedError,
)
from fleetd.transport.http import WebClient

__all__ = ["AntminerDriver"]

CONF_PATH = "/cgi-bin/get_miner_conf.cgi"
SET_CONF_PATH = "/cgi-bin/set_miner_conf.cgi"
SYSTEM_INFO_PATH = "/cgi-bin/get_system_info.cgi"
REBOOT_PATH = "/cgi-bin/reboot.cgi"
WEB_READS = (CONF_PATH, SYSTEM_INFO_PATH, "/cgi-bin/stats.cgi", "/cgi-bin/summary.cgi")

SLEEP_VALUE = "1"
NORMAL_VALUE = "0"
# Keys of get_miner_conf.cgi that set_miner_conf.cgi takes back (renamed where the firmware renames them).
_CONF_CARRY = {"pools": "pools", "bitmain-fan-ctrl": "bitmain-fan-ctrl", "bitmain-fan-pwm": "bitmain-fan-pwm",
               "bitmain-freq-level": "freq-level"}  # fmt: skip
# The mode each miner had before fleetd put it to sleep, restored by wake (the firmware itself forgets
# it). Kept per process, so that a re-created driver still knows, and in `state_dir` when that is set
# (see fleetd.drivers.antminer.modes), so that `fleetd sleep` and a later `fleetd wake` (two processes),
# or a daemon before and after a restart, agree. Unknown -> normal.
_MODE_BEFORE_SLEEP: dict[tuple[str, int], str] = {}
MODES_FILE = modes.MODES_FILE
# The configured mode last read per (host, web port), and when (time.monotonic) to read it again.
_CONF_MODE: dict[tuple[str, int], tuple[Mode, float]] = {}
MODE_REFRESH_S = 600.0
# Hosts whose web interface refused our login at the last mode refresh: polls carry an auth fault until
# a refresh logs in again (sleep/wake go through the web interface and would fail).
_WEB_AUTH_FAILED: dict[tuple[str, int], str] = {}
WEB_AUTH_FAULT = "web_auth_failed"
MODE_FETCH_MAX_S = 2.0
# Firmwares that report "Antminer ..." but are not stock and speak other control paths.
_NOT_STOCK_KEYS = ("LUXminer", "BOSminer", "BOSminer+", "BOSer")
_NOT_STOCK_WORDS = ("vnish", "braiins", "luxos", "marathon")


def web_key(path: str) -> str:
    """Fixture key of a web path: "/cgi-bin/stats.cgi" -> "web_stats.cgi"."""
    return "web_" + path.rsplit("/", 1)[-1]


def is_stock_antminer(version_reply: Mapping[str, Any]) -> bool:
    version = first(version_reply, "VERSION")
    model = str(version.get("Type") or "")
    if "antminer" not in model.lower():
        return False
    if any(k in version for k in _NOT_STOCK_KEYS):
        return False
    return not any(w in model.lower() for w in _NOT_STOCK_WORDS)


class AntminerDriver(VersionProbe, Driver, SupportsSleep, SupportsReboot):
    """Stock Antminer. The poll is one joined RPC request; web CGI only for identity extras and power."""

    name = "antminer"
    vendor = "antminer"
    hardware = "Bitmain"
    firmware = "Antminer stock firmware (BMMiner/CGMiner API on 4028 + web CGI with digest auth on 80)"
    models = (
        "Antminer S19 family",
        "Antminer S21 family",
        "Antminer T21",
        "classic flat and `chain[]` layouts",
    )
    reads = "one joined `version+summary+stats+pools` request per poll; mode from the web config (cached)"
    controls = "sleep/wake: `set_miner_conf.cgi` (`miner-mode`, `bitmain-work-mode`); reboot: `reboot.cgi`"
    POLL = ("version", "summary", "stats", "pools")

    def __init__(self, endpoint: Endpoint) -> None:
        super().__init__(endpoint)
        self.api = CGMinerAPI(endpoint.host, endpoint.api_port, timeouts=endpoint.timeouts)
        self._web: WebClient | None = None
        # get_system_info.cgi (MAC, hostname), fetched by identity() and merged into later reads.
        self._system_info: Mapping[str, Any] | None = None
        self._sessions = 0  # operations using the web client now (see _web_session)

    @property
    def _key(self) -> tuple[str, int]:
        return (self.host, self.endpoint.web_port)

    @property
    def web(self) -> WebClient:
        if self._web is None:
            login = self.endpoint.credentials.for_vendor(self.vendor)
            self._web = WebClient(
                self.host,
                self.endpoint.web_port,
                username=login.username or "root",
                password=login.password or "root",
                timeouts=self.endpoint.timeouts,
            )
        return self._web

    async def close(self) -> None:
        if self._web is not None:
            await self._web.close()

    # --- reading -------------------------------------------------------------------------------

    @classmethod
    def from_version(cls, reply: Mapping[str, Any], *, host: str = "") -> Identity | None:
        """Pure: the identity a `version` reply shows if it is a stock Antminer's, else None."""
        if not is_stock_antminer(reply):
            return None
        return parse_identity({"rpc_version": reply}, host=host)

    async def _rpc(self) -> dict[str, Any]:
        replies = await self.api.commands(*self.POLL, optional=("pools",))
        out: dict[str, Any] = {f"rpc_{cmd}": reply for cmd, reply in replies.items()}
        if self._system_info is not None:
            out["web_get_system_info.cgi"] = self._system_info
        return out

    async def read(self) -> Reading:
        """One joined RPC poll; the mode comes from the configuration cache (see the module docstring)."""
        reading = await self._read_rpc()
        snap = reading.snapshot
        mode = await self._cached_mode(snap)
        refused = _WEB_AUTH_FAILED.get(self._key)
        if mode is snap.mode and refused is None:
            self._saw(snap)
            return reading
        errors = snap.errors
        if refused is not None:
            errors = (*errors, Fault(WEB_AUTH_FAULT, refused, Component.CONTROL_BOARD))
        snap = self._saw(dataclasses.replace(snap, mode=mode, errors=errors))
        return Reading(reading.identity, snap)

    async def _read_rpc(self) -> Reading:
        return self.parse_responses(await self._rpc(), host=self.host, polled_at=time.time())

    async def snapshot(self) -> Snapshot:
        return (await self.read()).snapshot

    def _remember_mode(self, mode: Mode) -> None:
        due = time.monotonic() + MODE_REFRESH_S * random.uniform(0.8, 1.2)
        _CONF_MODE[self._key] = (mode, due)

    def _mode_due(self) -> bool:
        cached = _CONF_MODE.get(self._key)
        return cached is None or time.monotonic() >= cached[1]

    async def _cached_mode(self, snap: Snapshot) -> Mode:
        cached = _CONF_MODE.get(self._key)
        if cached is not None and not self._mode_due():
            mode = cached[0]
            if not (mode is Mode.SLEEP and snap.is_mining):  # else woken behind our back: read again
                return mode
        stale = cached[0] if cached is not None and not (cached[0] is Mode.SLEEP and snap.is_mining) else None
        # Booked before asking: a poll cancelled meanwhile (its own deadline) does not retry at every poll.
        self._remember_mode(stale or Mode.UNKNOWN)
        mode = Mode.UNKNOWN
        try:
            async with asyncio.timeout(min(MODE_FETCH_MAX_S, self.endpoint.timeouts.connect_s)):
                async with self._web_session():
                    mode = conf_mode(await self._conf())
            _WEB_AUTH_FAILED.pop(self._key, None)
        except AuthError as exc:
            _WEB_AUTH_FAILED[self._key] = (
                f"web interface (port {self.endpoint.web_port}) refused the login: {exc}; "
                "work mode unknown and sleep/wake will fail until the password is fixed"
            )
        except (DeviceError, TimeoutError):
            pass
        self._remember_mode(mode)
        return mode

    @contextlib.asynccontextmanager
    async def _web_session(self) -> AsyncIterator[WebClient]:
        """The web client for one operation; closed after it so idle miners hold no sockets. Nested
        operations (a command's sending and its verification) share the outer one's connection."""
        self._sessions += 1
        try:
            yield self.web
        finally:
            self._sessions -= 1
            if not self._sessions:
                await self.close()
                self._web = None

    async def identity(self) -> Identity:
        """RPC identity plus MAC and hostname from the web CGI when it answers (then kept for reads)."""
        async with self._web_session():
            return await self._identity()

    async def _identity(self) -> Identity:
        replies = await self.api.commands("version", "stats")
        if self._system_info is None:
            try:
                info = await self.web.get_json(SYSTEM_INFO_PATH)
                self._system_info = info if isinstance(info, Mapping) else None
                if self._mode_due():  # cheap in this session (no new connection or digest handshake)
                    self._remember_mode(conf_mode(await self._conf()))
            except DeviceError:
                pass
        responses = {f"rpc_{cmd}": r for cmd, r in replies.items()}
        if self._system_info is not None:
            responses["web_get_system_info.cgi"] = self._system_info
        return parse_identity(responses, host=self.host)

    async def raw_responses(self) -> dict[str, Any]:
        async with self._web_session():
            return await self._raw_responses()

    async def _raw_responses(self) -> dict[str, Any]:
        out = await self._rpc()
        for path in WEB_READS:
            try:
                out[web_key(path)] = await self.web.get_json(path)
            except AuthError:
                raise
            except DeviceError:
                continue  # not every firmware has every page
        conf = out.get(web_key(CONF_PATH))
        if isinstance(conf, Mapping):
            self._remember_mode(conf_mode(conf))
        return out

    @classmethod
    def parse_responses(
        cls, responses: Mapping[str, Any], *, host: str = "", polled_at: float = 0.0
    ) -> Reading:
        with reply_content(host):
            return Reading(
                parse_identity(responses, host=host), parse_snapshot(responses, polled_at=polled_at)
            )

    # --- power -----------------------------------------------------------------------------------

    async def sleep(self) -> Snapshot:
        async with self._web_session():  # one connection and digest handshake for both phases
            return await (await self.send_sleep()).confirm()

    async def wake(self) -> Snapshot:
        async with self._web_session():
            return await (await self.send_wake()).confirm()

    async def send_sleep(self) -> Sent:
        async with self._web_session():
            return await self._sleep()

    async def send_wake(self) -> Sent:
        async with self._web_session():
            return await self._wake()

    async def reboot(self) -> None:
        async with self._web_session() as web:
            # The miner may go down before it finishes answering.
            with contextlib.suppress(DeviceTimeoutError, MalformedReplyError):
                await web.request("GET", REBOOT_PATH)

    async def _sleep(self) -> Sent:
        conf = await self._conf()
        current = _mode_value(conf)
        if current is not None and current != SLEEP_VALUE:
            _MODE_BEFORE_SLEEP[self._key] = current
            self._save_modes()
        recent = self.recent()
        before = recent.hashrate_ths if recent is not None else await self._hashrate_or_none()
        deadline = verify.deadline_in(self.endpoint.timeouts.verify_s)
        await self._set_mode(conf, SLEEP_VALUE, deadline)

        def dropped(snap: Snapshot) -> bool:
            rate = snap.hashrate_ths
            if rate is None:
                return False
            reference = before or snap.expected_hashrate_ths or 0.0
            return rate <= 0.05 * reference if reference > 0 else rate <= 0.0

        return Sent(lambda: self._verify("sleep", Mode.SLEEP, dropped, deadline))

    async def _wake(self) -> Sent:
        conf = await self._conf()
        self._load_modes()
        target = _MODE_BEFORE_SLEEP.get(self._key, NORMAL_VALUE)
        deadline = verify.deadline_in(self.endpoint.timeouts.verify_s)
        await self._set_mode(conf, target, deadline)
        want = conf_mode({"miner-mode": target})

        def hashing(snap: Snapshot) -> bool:
            return bool(snap.hashrate_ths and snap.hashrate_ths > 0)

        async def confirm() -> Snapshot:
            snap = await self._verify("wake", want, hashing, deadline)
            if _MODE_BEFORE_SLEEP.pop(self._key, None) is not None:
                self._save_modes()
            return snap

        return Sent(confirm)

    def _load_modes(self) -> None:
        """Take this miner's remembered mode from disk if memory has none."""
        if self.state_dir is not None and self._key not in _MODE_BEFORE_SLEEP:
            saved = modes.journal(self.state_dir).get(_mode_key(self._key))
            if saved is not None:
                _MODE_BEFORE_SLEEP[self._key] = saved

    def _save_modes(self) -> None:
        """Record this miner's remembered mode (or its absence) on disk; best effort."""
        if self.state_dir is not None:
            modes.journal(self.state_dir).set(_mode_key(self._key), _MODE_BEFORE_SLEEP.get(self._key))

    async def _conf(self) -> Mapping[str, Any]:
        conf = await self.web.get_json(CONF_PATH)
        if not isinstance(conf, Mapping):
            raise MalformedReplyError(
                "miner configuration is not a JSON object", host=self.host, command=CONF_PATH
            )
        return conf

    async def _hashrate_or_none(self) -> float | None:
        try:
            return (await self._read_rpc()).snapshot.hashrate_ths
        except DeviceError:
            return None

    async def _set_mode(self, conf: Mapping[str, Any], value: str, deadline: float) -> None:
        """POST the mode in both keys firmwares use, carrying the rest of the configuration over."""
        payload: dict[str, Any] = {new: conf[old] for old, new in _CONF_CARRY.items() if old in conf}
        payload["miner-mode"] = value
        payload["bitmain-work-mode"] = value
        remaining = max(1.0, deadline - asyncio.get_running_loop().time())
        try:
            reply = await self.web.post_json(SET_CONF_PATH, payload, timeout_s=remaining)
        except (DeviceTimeoutError, MalformedReplyError):
            return  # slow or odd acknowledgement: the verification below decides
        if isinstance(reply, Mapping) and str(reply.get("stats", "success")).lower() not in ("success", "ok"):
            msg = f"{reply.get('msg') or 'configuration refused'} (code {reply.get('code', '?')})"
            raise CommandRejectedError(msg, host=self.host, command=SET_CONF_PATH)

    async def _verify(
        self, action: str, want: Mode, effect: Callable[[Snapshot], bool], deadline: float
    ) -> Snapshot:
        """Re-read configuration and telemetry until both show the change, or raise NotCompliedError.

        Each re-read opens its own web session (one connection; the remembered digest challenge spares
        the 401), unless the whole command runs in one (`sleep()`/`wake()`): a fleet's worth of miners
        waiting between re-reads then holds no sockets.
        """
        mode: Mode | None = None  # kept apart: the configuration may answer when telemetry does not

        async def read() -> Snapshot:
            nonlocal mode
            async with self._web_session():
                conf = await self._conf()
            mode = conf_mode(conf)
            self._remember_mode(mode)
            return dataclasses.replace((await self._read_rpc()).snapshot, mode=mode)

        end = await verify.until(
            read,
            lambda snap: snap.mode is want and effect(snap),
            deadline=deadline,
            interval=self.endpoint.timeouts.verify_interval_s,
            started=deadline - self.endpoint.timeouts.verify_s,
        )
        snap = end.last
        if end.ok and snap is not None:
            return snap
        seen = []
        if mode is not None:
            seen.append(f"configuration says {mode.value}")
        if snap is not None:
            rate = "unknown" if snap.hashrate_ths is None else f"{snap.hashrate_ths:.2f} TH/s"
            seen.append(f"hashrate {rate}")
        if end.error is not None and (snap is None or mode is None):
            seen.append(f"last error: {end.error.message}")
        raise NotCompliedError(
            f"{action} acknowledged but not in effect after {end.waited(self.endpoint.timeouts.verify_s)}"
            f" ({'; '.join(seen) or 'no reading'})",
            host=self.host,
            command=action,
        )


def _mode_key(key: tuple[str, int]) -> str:
    return f"{key[0]}:{key[1]}"


def _mode_value(conf: Mapping[str, Any]) -> str | None:
    for key in ("miner-mode", "bitmain-work-mode"):
        if key in conf:
            return str(conf[key]).strip()
    return None
