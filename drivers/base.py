"""The driver interface: small, with capabilities declared rather than stubbed.

A driver speaks one vendor's API for one miner. `probe` identifies a host (or says it is not
this vendor's), `identity`/`snapshot` read, and the optional capability mixins below add the
commands a firmware supports. Callers check `driver.capabilities` (or isinstance against the
mixins) before acting; no method raises NotImplementedError.
"""

from __future__ import annotations

import abc
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any, ClassVar

from fleetd.model import Capability, Identity, Reading, Snapshot


@dataclass(frozen=True, slots=True)
class Timeouts:
    connect_s: float = 3.0
    read_s: float = 10.0
    # How long a power command may take to show in telemetry before it counts as not complied.
    verify_s: float = 60.0
    verify_interval_s: float = 2.0


@dataclass(frozen=True, slots=True)
class Credentials:
    """Secrets for one miner; None means the vendor's factory default."""

    username: str | None = None
    password: str | None = None

    def __repr__(self) -> str:  # never print secrets
        return f"Credentials(username={self.username!r}, password={'***' if self.password else None})"


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
    vendor: ClassVar[str]

    def __init__(self, endpoint: Endpoint) -> None:
        self.endpoint = endpoint

    @property
    def host(self) -> str:
        return self.endpoint.host

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
        return Reading(await self.identity(), await self.snapshot())

    @property
    def capabilities(self) -> frozenset[Capability]:
        caps = set()
        if isinstance(self, SupportsSleep):
            caps.add(Capability.SLEEP)
        if isinstance(self, SupportsPowerLimit):
            caps.add(Capability.POWER_LIMIT)
        if isinstance(self, SupportsReboot):
            caps.add(Capability.REBOOT)
        return frozenset(caps)

    async def close(self) -> None:
        """Release connections or sessions the driver keeps; the default keeps none."""


class SupportsSleep(abc.ABC):
    """Sleep stops hashing at idle power; wake restores the mode the miner had before."""

    @abc.abstractmethod
    async def sleep(self) -> Snapshot:
        """Put the miner to sleep and return the snapshot that proves it; raise NotCompliedError if not."""

    @abc.abstractmethod
    async def wake(self) -> Snapshot:
        """Wake the miner and return the snapshot that proves it is hashing again."""


class SupportsPowerLimit(abc.ABC):
    @abc.abstractmethod
    async def set_power_limit(self, watts: int) -> Snapshot:
        """Apply a power limit and return the snapshot that shows it applied."""


class SupportsReboot(abc.ABC):
    @abc.abstractmethod
    async def reboot(self) -> None:
        """Restart the miner."""
