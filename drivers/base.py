"""The driver interface: small, with capabilities declared rather than stubbed.

A driver speaks one vendor's API for one miner. `probe` identifies a host (or says it is not
this vendor's), `identity`/`snapshot` read, and the optional capability mixins below add the
commands a firmware supports. Callers check `driver.capabilities` (or isinstance against the
mixins) before acting; no method raises NotImplementedError.
"""

from __future__ import annotations

import abc
import functools
import time
from collections.abc import Awaitable, Callable, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from types import MappingProxyType
from typing import Any, ClassVar

from fleetd.drivers import verify
from fleetd.drivers.plausible import checked, checked_reading

from fleetd.model import Capability, Identity, Reading, Snapshot
from fleetd.transport.timeouts import Timeouts as Timeouts  # re-exported: callers take it from here


@dataclass(frozen=True, slots=True)
class Login:
    """A username and password for one vendor; None means "not set here"."""

    username: str | None = None
    password: str | None = None

    def __repr__(self) -> str:  # never print secrets
        return f"Login(username={self.username!r}, password={'***' if self.password else None})"


# Each vendor's factory login (Whatsminer's is API v3's; its driver passes v2's "admin" itself).
FACTORY_LOGINS: Mapping[str, Login] = MappingProxyType(
    {"antminer": Login("root", "root"), "whatsminer": Login("super", "super")}
)
# Vendors that take a username only from their own table: Whatsminer's accounts ("super", "user1"...)
# are its own (btminer v2 has none), so a common "root" must not become its account.
OWN_USERNAME_ONLY = frozenset({"whatsminer"})
ANY_VENDOR = "*"  # a per-vendor entry that applies to every vendor, username included (CLI --user)


@dataclass(frozen=True, slots=True)
class Credentials:
    """Secrets for one miner: common values plus per-vendor overrides; unset means factory default.

    Drivers ask `for_vendor(self.vendor)`; see that method for the order of precedence.
    """

    username: str | None = None
    password: str | None = None
    vendors: Mapping[str, Login] = field(default_factory=lambda: _EMPTY)

    def __post_init__(self) -> None:
        if self.vendors is not _EMPTY:  # an immutable copy: the caller keeps no handle on it
            object.__setattr__(self, "vendors", MappingProxyType(dict(sorted(self.vendors.items()))))

    @classmethod
    def any_vendor(cls, username: str | None = None, password: str | None = None) -> Credentials:
        """Credentials that apply to whichever vendor a miner turns out to be (e.g. CLI --user/--password)."""
        if username is None and password is None:
            return cls()
        return cls(vendors={ANY_VENDOR: Login(username, password)})

    def for_vendor(self, vendor: str, default: Login | None = None) -> Login:
        """The effective login for `vendor`: its own table, then any-vendor values, then the common
        values (the common username only for vendors that take it), then `default` or the factory login."""
        own = self.vendors.get(vendor) or _NO_LOGIN
        anyv = self.vendors.get(ANY_VENDOR) or _NO_LOGIN
        factory = default if default is not None else FACTORY_LOGINS.get(vendor, _NO_LOGIN)
        common_user = None if vendor in OWN_USERNAME_ONLY else self.username
        return Login(
            _first(own.username, anyv.username, common_user, factory.username),
            _first(own.password, anyv.password, self.password, factory.password),
        )

    def __hash__(self) -> int:
        return hash((self.username, self.password, tuple(self.vendors.items())))

    def __reduce__(self) -> tuple[Any, ...]:  # a mappingproxy does not pickle; its dict does
        return (Credentials, (self.username, self.password, dict(self.vendors)))

    def __repr__(self) -> str:  # never print secrets
        vendors = f", vendors={dict(self.vendors)!r}" if self.vendors else ""
        return (
            f"Credentials(username={self.username!r}, password={'***' if self.password else None}{vendors})"
        )


_EMPTY: Mapping[str, Login] = MappingProxyType({})
RECENT_S = 120.0  # how old a reading may be to stand for "before the command" (4 polls at the default 30 s)
_NO_LOGIN = Login()


def _first(*values: str | None) -> str | None:
    return next((v for v in values if v is not None), None)


@dataclass(frozen=True, slots=True)
class Endpoint:
    """Where a miner listens. Ports default to the real ones; emulators and NAT may differ."""

    host: str
    api_port: int = 4028  # CGMiner-family and btminer v2 TCP API
    web_port: int = 80  # Antminer web CGI, vendor web UIs
    v3_port: int = 4433  # Whatsminer btminer API v3
    grpc_port: int = 50051  # Braiins OS
    credentials: Credentials = field(default_factory=Credentials)
    timeouts: Timeouts = field(default_factory=Timeouts)


class Driver(abc.ABC):
    """Reads one miner. Subclasses add capability mixins for the commands they support."""

    name: ClassVar[str]  # short, stable id: "antminer", "cgminer", "whatsminer", ...
    vendor: ClassVar[str]  # whose credentials it uses (a [credentials.NAME.<vendor>] table)
    # What the supported-miners table says of it (README, `fleetd drivers --markdown`).
    hardware: ClassVar[str] = ""  # the machines' maker
    firmware: ClassVar[str] = ""  # the firmware and API it speaks
    models: ClassVar[tuple[str, ...]] = ()  # the models or families it is meant for
    reads: ClassVar[str] = ""  # what a poll reads
    controls: ClassVar[str] = ""  # how each capability is carried out
    # Detection tries it only when enabled (fleetd.drivers.use_fallbacks, e.g. [drivers] pyasic_fallback).
    fallback_only: ClassVar[bool] = False
    # Where the driver may keep what must outlive the process (the CLI and the daemon set it); None: memory.
    state_dir: Path | None = None

    # The last snapshot read (time.monotonic(), snapshot), for commands that need the state before them.
    _seen: tuple[float, Snapshot] | None = None

    def __init__(self, endpoint: Endpoint) -> None:
        self.endpoint = endpoint

    def _saw(self, snap: Snapshot) -> Snapshot:
        """Remember `snap`, plausibility-checked, as the latest reading (the daemon polls through it)."""
        snap = checked(snap)
        self._seen = (time.monotonic(), snap)
        return snap

    def recent(self, max_age_s: float = RECENT_S) -> Snapshot | None:
        """The snapshot read within `max_age_s` seconds, if any (spares a command its pre-read)."""
        seen = self._seen
        return seen[1] if seen is not None and time.monotonic() - seen[0] <= max_age_s else None

    def confirm_later(
        self,
        read: Callable[[], Awaitable[Snapshot]],
        ok: Callable[[Snapshot], bool],
        *,
        action: str,
        describe: Callable[[Snapshot], str],
        deadline: float,
    ) -> Sent:
        """A sent command's verification: re-read with `read` until `ok` holds, by its `deadline`."""
        return Sent(
            lambda: verify.confirm(
                read,
                ok,
                action=action,
                host=self.host,
                timeouts=self.endpoint.timeouts,
                describe=describe,
                deadline=deadline,
            )
        )

    def __init_subclass__(cls, **kwargs: Any) -> None:
        super().__init_subclass__(**kwargs)
        # Whichever path a driver builds its reading by, what it returns has passed the plausibility
        # check once here rather than in each parser (a plausible reading comes back unchanged).
        if "read" in cls.__dict__:
            cls.read = _checked_read(cls.__dict__["read"])  # type: ignore[method-assign]
        parse = cls.__dict__.get("parse_responses")
        if isinstance(parse, classmethod):
            cls.parse_responses = classmethod(_checked_parse(parse.__func__))  # type: ignore[assignment]

    @property
    def host(self) -> str:
        return self.endpoint.host

    @classmethod
    def missing(cls) -> str:
        """Why the driver cannot run here (an optional dependency absent), or "" when it can."""
        return ""

    @classmethod
    @abc.abstractmethod
    async def probe(cls, endpoint: Endpoint) -> Identity | None:
        """Identify the miner at `endpoint`, or None if it is not one this driver speaks to."""

    @abc.abstractmethod
    async def identity(self) -> Identity:
        """Read the miner's identity."""

    @abc.abstractmethod
    async def snapshot(self) -> Snapshot:
        """Read the miner's current state."""

    @abc.abstractmethod
    async def raw_responses(self) -> dict[str, Any]:
        """Every reply `read` uses, decoded but unparsed, keyed like a fixture folder's files.

        Keys are "rpc_<command>" for API commands and "web_<path>" for HTTP endpoints (e.g.
        "web_get_miner_conf.cgi"); `fleetd dump-device` saves one file per key.
        """

    @classmethod
    @abc.abstractmethod
    def parse_responses(
        cls, responses: Mapping[str, Any], *, host: str = "", polled_at: float = 0.0
    ) -> Reading:
        """Pure: build a Reading from replies keyed as in `raw_responses` (used on fixture folders)."""

    async def read(self) -> Reading:
        """Identity and snapshot; drivers override to share round trips."""
        return checked_reading(Reading(await self.identity(), await self.snapshot()))

    @property
    def capabilities(self) -> frozenset[Capability]:
        return type(self).declared_capabilities()

    @classmethod
    def declared_capabilities(cls) -> frozenset[Capability]:
        """The capabilities the class declares through its mixins (no instance needed)."""
        caps = set()
        if issubclass(cls, SupportsSleep):
            caps.add(Capability.SLEEP)
        if issubclass(cls, SupportsPowerLimit):
            caps.add(Capability.POWER_LIMIT)
        if issubclass(cls, SupportsReboot):
            caps.add(Capability.REBOOT)
        return frozenset(caps)

    async def close(self) -> None:
        """Release connections or sessions the driver keeps; the default keeps none."""


@dataclass(frozen=True, slots=True)
class Sent:
    """A power command the miner acknowledged; `confirm()` re-reads until it shows and returns the proof,
    or raises NotCompliedError. Its deadline counts from the sending, so confirming late waits no longer."""

    confirm: Callable[[], Awaitable[Snapshot]]

    @classmethod
    def verified(cls, snap: Snapshot) -> Sent:
        """A command already verified while being sent (drivers that do both in one call)."""

        async def proof() -> Snapshot:
            return snap

        return cls(proof)


def _checked_read(read: Callable[[Any], Awaitable[Reading]]) -> Callable[[Any], Awaitable[Reading]]:
    @functools.wraps(read)
    async def wrapped(self: Any) -> Reading:
        return checked_reading(await read(self))

    return wrapped


def _checked_parse(parse: Callable[..., Reading]) -> Callable[..., Reading]:
    @functools.wraps(parse)
    def wrapped(cls: Any, *args: Any, **kwargs: Any) -> Reading:
        return checked_reading(parse(cls, *args, **kwargs))

    return wrapped


class SupportsSleep(abc.ABC):
    """Sleep stops hashing at idle power; wake restores the mode the miner had before.

    `send_sleep`/`send_wake` split a command in two, so that a caller can send to many miners first and
    verify them afterwards; by default they send and verify at once.
    """

    async def send_sleep(self) -> Sent:
        """Send sleep; return once the miner acknowledged it, with the verification to run later."""
        return Sent.verified(await self.sleep())

    async def send_wake(self) -> Sent:
        """Send wake; return once the miner acknowledged it, with the verification to run later."""
        return Sent.verified(await self.wake())

    @abc.abstractmethod
    async def sleep(self) -> Snapshot:
        """Put the miner to sleep and return the snapshot that proves it; raise NotCompliedError if not."""

    @abc.abstractmethod
    async def wake(self) -> Snapshot:
        """Wake the miner and return the snapshot that proves it is hashing again."""


class SupportsPowerLimit(abc.ABC):
    def power_limit_range(self) -> tuple[int, int] | None:
        """The lowest and highest limit (W) the miner takes, as its last read shows; None if unknown."""
        return None

    async def send_power_limit(self, watts: int) -> Sent:
        """Send a power limit; return once acknowledged, with the verification to run later."""
        return Sent.verified(await self.set_power_limit(watts))

    @abc.abstractmethod
    async def set_power_limit(self, watts: int) -> Snapshot:
        """Apply a power limit and return the snapshot that shows it applied."""


class SleepsInTwoPhases(SupportsSleep):
    """A driver that sends and verifies apart: `sleep`/`wake` are its two phases in a row."""

    @abc.abstractmethod
    async def send_sleep(self) -> Sent: ...

    @abc.abstractmethod
    async def send_wake(self) -> Sent: ...

    async def sleep(self) -> Snapshot:
        return await (await self.send_sleep()).confirm()

    async def wake(self) -> Snapshot:
        return await (await self.send_wake()).confirm()


class LimitsInTwoPhases(SupportsPowerLimit):
    """A driver that sends and verifies a power limit apart: `set_power_limit` is both phases in a row."""

    @abc.abstractmethod
    async def send_power_limit(self, watts: int) -> Sent: ...

    async def set_power_limit(self, watts: int) -> Snapshot:
        return await (await self.send_power_limit(watts)).confirm()


class SupportsReboot(abc.ABC):
    @abc.abstractmethod
    async def reboot(self) -> None:
        """Restart the miner."""
