"""The pyasic adapter: any miner pyasic supports, read and commanded through pyasic, verified by fleetd.

pyasic (the optional extra `fleetd[pyasic]`) is imported only when the driver is used, so fleetd works
without it; without it the driver is not registered and `driver = "pyasic"` is a clear error. It is off
by default: a miner uses it only when configured with `driver = "pyasic"`, or when `[drivers]
pyasic_fallback = true` lets detection try it after every native driver (before the read-only `cgminer`).
pyasic finds and speaks to miners on their standard ports, so an endpoint's non-standard ports are passed
on only where pyasic's client has a port to set. Every command's result is checked by re-reading the
miner (drivers/verify.py); pyasic's own True is never taken as proof.

Wake restores the mode the miner had before `sleep` when it was low or high power (pyasic's
`resume_mining` always resumes in normal mode): after resuming, the mode is set through pyasic's
`send_config` and verified by re-reading. The mode is remembered per process and, when `state_dir` is set,
in the same on-disk journal the Antminer driver keeps (keys `pyasic:HOST:API_PORT`).
"""

from __future__ import annotations

import asyncio
import importlib
import importlib.util
import time
import warnings
from collections.abc import Callable, Mapping
from typing import Any

from fleetd.drivers import verify
from fleetd.drivers.antminer import modes
from fleetd.drivers.base import Driver, Endpoint, Login, SupportsPowerLimit, SupportsSleep
from fleetd.drivers.pyasic.parse import (
    as_mapping,
    has_telemetry,
    identity_from_data,
    redacted,
    snapshot_from_data,
    vendor_of,
)

from fleetd.model import Identity, Mode, Reading, Snapshot
from fleetd.transport.errors import (
    CommandRejectedError,
    DeviceError,
    DeviceTimeoutError,
    MalformedReplyError,
    UnreachableError,
    UnsupportedError,
)

__all__ = ["INSTALL_HINT", "PyasicDriver", "pyasic_missing"]

INSTALL_HINT = "install the optional extra: pip install 'fleetd[pyasic]'"
RAW_KEY = "pyasic_get_data"  # raw_responses' key: MinerData's JSON form, passwords blanked
_DEFAULT_PORTS = {"api_port": 4028, "web_port": 80}
# pyasic's DataOptions (by value): the identity items are read on the first poll and then every
# IDENTITY_REFRESH_S, other polls read telemetry only (a third less CPU per Antminer poll); the fault
# light is never read (fleetd does not use it).
IDENTITY_REFRESH_S = 600.0
IDENTITY_ITEMS = ("serial_number", "psu_serial_number", "mac", "api_ver", "fw_ver", "hostname")
TELEMETRY_ITEMS = (
    "hashrate",
    "expected_hashrate",
    "hashboards",
    "env_temp",
    "wattage",
    "wattage_limit",
    "fans",
    "fan_psu",
    "errors",
    "is_mining",
    "uptime",
    "config",
    "pools",
)


# The low or high mode each miner had before fleetd put it to sleep (pyasic's MiningModeConfig names),
# restored by wake; by `pyasic:HOST:API_PORT`, also kept in `state_dir` (see the module docstring).
_MODE_BEFORE_SLEEP: dict[str, str] = {}
_RESTORABLE = {Mode.LOW: "low", Mode.HIGH: "high"}


def pyasic_missing() -> str:
    """Why the pyasic driver cannot run here ("" when pyasic is installed); cheap: nothing is imported."""
    try:
        spec = importlib.util.find_spec("pyasic")
    except (ImportError, ValueError):
        spec = None
    if spec is None:
        return f"the pyasic driver needs pyasic, which is not installed; {INSTALL_HINT}"
    return ""


_quiet = False


def _pyasic() -> Any:
    """pyasic, imported on first use (about a second of imports that fleetd without it never pays)."""
    global _quiet
    module = importlib.import_module("pyasic")
    if not _quiet:
        # pyasic warns about unknown chip counts per miner object and its dependencies about
        # deprecations; neither is fleetd's to act on.
        warnings.filterwarnings("ignore", module=r"pyasic(\.|$)")
        warnings.filterwarnings("ignore", category=DeprecationWarning, module=r"passlib(\.|$)")
        _quiet = True
    return module


class PyasicDriver(Driver, SupportsSleep, SupportsPowerLimit):
    """Any model pyasic supports; MinerData mapped to our snapshot, commands verified by our re-read."""

    name = "pyasic"
    vendor = "pyasic"
    hardware = "any"
    firmware = (
        "whatever pyasic supports (optional extra `fleetd[pyasic]`, off by default: per miner "
        '`driver = "pyasic"` or `[drivers] pyasic_fallback`)'
    )
    models = ("models no native driver claims",)
    reads = "pyasic `get_data` per poll (its own RPC and web requests); identity items every 10 min"
    controls = (
        "sleep/wake: pyasic `stop_mining`/`resume_mining` (wake restores low/high mode through "
        "`send_config`); power limit: `set_power_limit`; each verified by fleetd's re-read"
    )
    # Tried by detection only when enabled ([drivers] pyasic_fallback); see fleetd.drivers.use_fallbacks.
    fallback_only = True

    def __init__(self, endpoint: Endpoint) -> None:
        super().__init__(endpoint)
        self._miner: Any = None
        self._identity_items: dict[str, Any] = {}  # the last identity items read, merged into later polls
        self._identity_due = 0.0  # time.monotonic() of the next read of the identity items

    @classmethod
    def missing(cls) -> str:
        return pyasic_missing()

    # --- finding the miner ---------------------------------------------------------------------

    @classmethod
    async def probe(cls, endpoint: Endpoint) -> Identity | None:
        if pyasic_missing():
            return None
        miner = await cls(endpoint)._find(required=False)
        if miner is None:
            return None
        info = getattr(miner, "device_info", None)
        return identity_from_data(
            {
                "make": getattr(info, "make", None),
                "model": getattr(info, "model", None),
                "firmware": getattr(info, "firmware", None),
            },
            host=endpoint.host,
        )

    async def _find(self, *, required: bool = True) -> Any:
        """pyasic's miner object for the host (found once per driver); None or UnreachableError if none."""
        if self._miner is not None:
            return self._miner
        if missing := pyasic_missing():
            raise UnsupportedError(missing, host=self.host, command="pyasic")
        try:
            pyasic = _pyasic()
        except ImportError as exc:
            raise UnsupportedError(
                f"pyasic is installed but does not import ({exc}); {INSTALL_HINT}",
                host=self.host,
                command="pyasic",
            ) from None
        miner = await self._call("get_miner", pyasic.get_miner(self.host))
        if miner is None or getattr(miner, "make", None) is None:
            if not required:
                return None
            raise UnreachableError("pyasic recognises no miner here", host=self.host, command="get_miner")
        self._configure(miner)
        self._miner = miner
        return miner

    def _configure(self, miner: Any) -> None:
        """Pass on the ports and the login fleetd is configured with, where pyasic's clients take them."""
        ep = self.endpoint
        for attr, iface in (("api_port", "rpc"), ("web_port", "web")):
            client = getattr(miner, iface, None)
            port = getattr(ep, attr)
            if client is not None and port != _DEFAULT_PORTS[attr] and hasattr(client, "port"):
                client.port = port
        login = self._login(vendor_of(getattr(miner, "make", None)))
        for iface in ("web", "rpc"):
            client = getattr(miner, iface, None)
            if client is None:
                continue
            if login.password is not None and hasattr(client, "pwd"):
                client.pwd = login.password
            if login.username is not None and iface == "web" and hasattr(client, "username"):
                client.username = login.username

    def _login(self, vendor: str) -> Login:
        """The make's own credentials, else a [credentials.NAME.pyasic] table; unset: pyasic's defaults."""
        creds = self.endpoint.credentials
        own = creds.for_vendor(vendor, default=Login())
        return own if own.password is not None else creds.for_vendor("pyasic", default=Login())

    async def _call(self, what: str, awaitable: Any) -> Any:
        """Await a pyasic call within the endpoint's timeouts, its exceptions as fleetd's DeviceErrors."""
        t = self.endpoint.timeouts
        try:
            async with asyncio.timeout(t.connect_s + t.read_s):
                return await awaitable
        except TimeoutError:
            raise DeviceTimeoutError(
                f"pyasic {what} took longer than {t.connect_s + t.read_s:g} s", host=self.host, command=what
            ) from None
        except DeviceError:
            raise
        except Exception as exc:
            if _network_failure(exc):
                raise UnreachableError(f"pyasic {what}: {_why(exc)}", host=self.host, command=what) from exc
            raise MalformedReplyError(f"pyasic {what}: {_why(exc)}", host=self.host, command=what) from exc

    # --- reading -------------------------------------------------------------------------------

    async def _data(self, *, full: bool = False) -> Mapping[str, Any]:
        """One get_data: everything when `full`, else telemetry plus (when due) the identity items."""
        miner = await self._find()
        refresh = full or time.monotonic() >= self._identity_due
        include = None if full else [*TELEMETRY_ITEMS, *(IDENTITY_ITEMS if refresh else ())]
        data = as_mapping(await self._call("get_data", miner.get_data(include=include)))
        if not has_telemetry(data):
            raise UnreachableError("pyasic read nothing from the miner", host=self.host, command="get_data")
        if refresh:
            got = {k: data.get(k) for k in IDENTITY_ITEMS if data.get(k) not in (None, "")}
            before = self._identity_items.get("mac")
            if before and got.get("mac") and got["mac"] != before:
                # Another machine behind the address: pyasic's object is model-specific, find it again.
                self._miner, self._identity_items = None, {}
            self._identity_items.update(got)
            if got.get("mac") or got.get("serial_number"):
                self._identity_due = time.monotonic() + IDENTITY_REFRESH_S
        missing = {k: v for k, v in self._identity_items.items() if data.get(k) in (None, "")}
        return {**data, **missing} if missing else data

    async def read(self) -> Reading:
        data = await self._data()
        return Reading(
            identity_from_data(data, host=self.host), snapshot_from_data(data, polled_at=time.time())
        )

    async def identity(self) -> Identity:
        return (await self.read()).identity

    async def snapshot(self) -> Snapshot:
        return (await self.read()).snapshot

    async def raw_responses(self) -> dict[str, Any]:
        return {RAW_KEY: redacted(await self._data(full=True))}

    @classmethod
    def parse_responses(
        cls, responses: Mapping[str, Any], *, host: str = "", polled_at: float = 0.0
    ) -> Reading:
        data = responses.get(RAW_KEY)
        if not isinstance(data, Mapping):
            raise MalformedReplyError(f"no {RAW_KEY} reply", host=host, command="get_data")
        return Reading(identity_from_data(data, host=host), snapshot_from_data(data, polled_at=polled_at))

    # --- power ---------------------------------------------------------------------------------

    async def sleep(self) -> Snapshot:
        now = await self._snapshot_or_none()
        before = now.hashrate_ths if now is not None else None
        if now is not None and now.mode is not Mode.SLEEP and now.mode is not Mode.UNKNOWN:
            self._remember_mode(_RESTORABLE.get(now.mode))
        await self._command("stop_mining")

        def dropped(snap: Snapshot) -> bool:
            rate = snap.hashrate_ths
            if rate is None:
                return False
            return rate <= 0.05 * before if before else rate <= 0.0

        return await self._verify("stop_mining", dropped)

    async def wake(self) -> Snapshot:
        target = self._remembered_mode()
        await self._command("resume_mining")
        if target is None:
            return await self._verify("resume_mining", _hashing)
        await self._set_mining_mode(target)
        want = Mode(target)
        snap = await self._verify(f"resume_mining in {target} mode", lambda s: _hashing(s) and s.mode is want)
        self._remember_mode(None)
        return snap

    def power_limit_range(self) -> tuple[int, int] | None:
        # pyasic reports the limit in effect (MinerData.wattage_limit) but no bounds a firmware accepts,
        # and wake does not restore a limit here: unknown, so the power_cap rule sleeps these miners.
        return None

    async def set_power_limit(self, watts: int) -> Snapshot:
        await self._command("set_power_limit", int(watts))
        return await self._verify(
            f"set_power_limit {int(watts)}",
            lambda s: (
                s.power_limit_w is not None
                and abs(s.power_limit_w - watts) < 1.0
                and s.mode is not Mode.SLEEP
            ),
        )

    async def _command(self, method: str, *args: Any) -> None:
        """Send one pyasic command; its False (refused, or unsupported on this model) is an error."""
        miner = await self._find()
        done = await self._call(method, getattr(miner, method)(*args))
        if done is False:
            raise CommandRejectedError(
                f"pyasic's {method} reports failure (refused, or not supported for {miner!r})",
                host=self.host,
                command=method,
            )

    async def _snapshot_or_none(self) -> Snapshot | None:
        try:
            return (await self.read()).snapshot
        except DeviceError:
            return None

    async def _set_mining_mode(self, name: str) -> None:
        """Set pyasic's mining mode `name` ("low", "high") through its configuration; unsupported: error."""
        miner = await self._find()
        make = getattr(_pyasic().config, "MiningModeConfig", None)
        factory = getattr(make, name, None)
        config = await self._call("get_config", miner.get_config())
        if factory is None or config is None or not hasattr(config, "mining_mode"):
            raise UnsupportedError(
                f"woken, but pyasic cannot set {name} mode on {miner!r}: it mines in normal mode",
                host=self.host,
                command="send_config",
            )
        config.mining_mode = factory()
        try:
            await self._call("send_config", miner.send_config(config))
        except MalformedReplyError as exc:  # pyasic's NotImplementedError and the like
            raise UnsupportedError(
                f"woken, but pyasic cannot set {name} mode on {miner!r} ({exc}): it mines in normal mode",
                host=self.host,
                command="send_config",
            ) from exc

    @property
    def _mode_key(self) -> str:
        return f"pyasic:{self.host}:{self.endpoint.api_port}"

    def _remember_mode(self, name: str | None) -> None:
        """Remember the mode to restore on wake (None: forget it), in memory and in `state_dir`."""
        if name is None:
            _MODE_BEFORE_SLEEP.pop(self._mode_key, None)
        else:
            _MODE_BEFORE_SLEEP[self._mode_key] = name
        if self.state_dir is not None:
            modes.journal(self.state_dir).set(self._mode_key, name)

    def _remembered_mode(self) -> str | None:
        name = _MODE_BEFORE_SLEEP.get(self._mode_key)
        if name is None and self.state_dir is not None:
            name = modes.journal(self.state_dir).get(self._mode_key)
        return name if name in _RESTORABLE.values() else None

    async def _verify(self, action: str, ok: Callable[[Snapshot], bool]) -> Snapshot:
        return await verify.confirm(
            self.snapshot,
            ok,
            action=action,
            host=self.host,
            timeouts=self.endpoint.timeouts,
            describe=lambda s: (
                f"hashrate {verify.rate(s)}, power limit {verify.watts(s.power_limit_w)}, mode {s.mode.value}"
            ),
            by=" by pyasic",
        )


def _hashing(s: Snapshot) -> bool:
    return bool(s.hashrate_ths and s.hashrate_ths > 0) and s.mode is not Mode.SLEEP


def _network_failure(exc: BaseException) -> bool:
    seen: BaseException | None = exc
    for _ in range(8):
        if seen is None:
            return False
        if isinstance(seen, OSError | ConnectionError | TimeoutError):
            return True
        if "connect" in str(seen).lower():
            return True
        seen = seen.__cause__ or seen.__context__
    return False


def _why(exc: BaseException) -> str:
    text = str(exc).strip()
    return f"{type(exc).__name__}: {text}" if text else type(exc).__name__
