"""Per-vendor drivers (installed as `fleetd.drivers`) and detection of which one a host needs."""

from __future__ import annotations

import asyncio
import importlib
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

from fleetd.drivers.base import (
    Credentials,
    Driver,
    Endpoint,
    Login,
    SupportsPowerLimit,
    SupportsReboot,
    SupportsSleep,
    Timeouts,
)

from fleetd.model import Identity
from fleetd.transport.cgminer import CGMinerAPI
from fleetd.transport.errors import DeviceError, DeviceTimeoutError, UnreachableError

__all__ = [
    "Credentials",
    "Detection",
    "Driver",
    "Endpoint",
    "Login",
    "SupportsPowerLimit",
    "SupportsReboot",
    "SupportsSleep",
    "Timeouts",
    "detect",
    "detection_classes",
    "driver_class",
    "driver_classes",
    "identify",
    "unavailable_drivers",
    "use_fallbacks",
]

# Detection order: most specific first; the generic CGMiner driver answers for anything that
# speaks the API, so it comes last. Entries are "module:Class" under fleetd.drivers.
_REGISTRY: tuple[str, ...] = (
    "antminer:AntminerDriver",
    "luxos:LuxOSDriver",
    "braiins:BraiinsDriver",
    "avalon:AvalonDriver",
    "vnish:VNishDriver",
    "whatsminer:WhatsminerDriver",
    # Optional (pyasic installed) and fallback-only: detection tries it only when enabled.
    "pyasic:PyasicDriver",
    "cgminer:CGMinerDriver",
)
# Fallback-only drivers detection may try (`use_fallbacks`; the daemon sets it from [drivers]).
_FALLBACKS: set[str] = set()


def use_fallbacks(names: set[str] | frozenset[str]) -> None:
    """Let detection try these fallback-only drivers (e.g. {"pyasic"}); an empty set turns them off."""
    _FALLBACKS.clear()
    _FALLBACKS.update(names)


def driver_classes() -> list[type[Driver]]:
    """The registered driver classes that are present, in detection order."""
    return [cls for cls in _imported() if not cls.missing()]


def detection_classes() -> list[type[Driver]]:
    """The drivers detection tries, in order: fallback-only ones only when enabled (`use_fallbacks`)."""
    return [c for c in driver_classes() if not c.fallback_only or c.name in _FALLBACKS]


def unavailable_drivers() -> dict[str, str]:
    """Registered drivers that cannot run here (an optional dependency absent): name -> why."""
    return {cls.name: why for cls in _imported() if (why := cls.missing())}


def _imported() -> list[type[Driver]]:
    out: list[type[Driver]] = []
    for entry in _REGISTRY:
        mod, cls = entry.split(":")
        try:
            module = importlib.import_module(f"fleetd.drivers.{mod}")
        except ModuleNotFoundError as exc:
            if exc.name and exc.name.startswith("fleetd.drivers."):
                continue
            raise
        out.append(getattr(module, cls))
    return out


def driver_class(name: str) -> type[Driver]:
    for cls in _imported():
        if cls.name == name:
            if why := cls.missing():
                raise KeyError(f"driver {name!r} is unavailable: {why}")
            return cls
    raise KeyError(f"unknown driver {name!r}; known: {', '.join(c.name for c in driver_classes())}")


@dataclass(frozen=True, slots=True)
class Detection:
    """What detection learned of a host: the driver that claims it and its identity, or else whether
    something answered on a miner port and, if so, why no driver claimed it (`error`)."""

    driver: type[Driver] | None = None
    identity: Identity | None = None
    answered: bool = False
    error: str = ""


async def detect(endpoint: Endpoint) -> tuple[type[Driver], Identity] | None:
    """The first driver, in detection order, that claims `endpoint`; None if none does (see `identify`)."""
    found = await identify(endpoint)
    if found.driver is None or found.identity is None:
        return None
    return found.driver, found.identity


async def identify(endpoint: Endpoint) -> Detection:
    """Which driver, in detection order, claims `endpoint`, or what kept every driver from it.

    Cheap for empty addresses and shared for the CGMiner family: one `version` read on the API port
    (which doubles as its reachability check) decides every driver with a pure `from_version`, while
    a bare TCP connect to the v3 port (and to the web port, for web-only drivers such as VNish) runs
    alongside it for drivers that may speak only there. When
    neither port accepts a connection no driver is asked at all. Other drivers `probe` only when every
    driver ahead of them has passed, so a miner already identified waits for nothing further down.
    """
    classes = detection_classes()
    # CGMiner-family drivers (fleetd.drivers.cgminer.VersionProbe) decide from a `version` reply.
    shared = any(hasattr(c, "from_version") for c in classes)
    others = not all(hasattr(c, "from_version") for c in classes)
    version_task = asyncio.ensure_future(_version(endpoint)) if shared else None
    # Drivers that probe over the web API alone (VNish) need the web port checked as well.
    alt_ports = [endpoint.v3_port]
    if any(getattr(c, "web_probe", False) for c in classes):
        alt_ports.append(endpoint.web_port)
    alt_task = asyncio.ensure_future(_accepts_any(endpoint, alt_ports)) if others else None
    try:
        version: Mapping[str, Any] | None = None
        api_open = False
        error = ""
        if version_task is not None:
            api_open, version, error = await version_task
        if not api_open and not (alt_task is not None and await alt_task):
            return Detection()
        for cls in classes:
            from_version = getattr(cls, "from_version", None)
            if from_version is not None:
                ident = from_version(version, host=endpoint.host) if version is not None else None
            else:
                try:
                    ident = await cls.probe(endpoint)
                except Exception as exc:
                    error = error or (exc.message if isinstance(exc, DeviceError) else repr(exc))
                    continue
            if isinstance(ident, Identity):
                return Detection(cls, ident, answered=True)
        return Detection(answered=True, error=error or "no driver recognises its replies")
    finally:
        for task in (version_task, alt_task):
            if task is not None and not task.done():
                task.cancel()
                await asyncio.gather(task, return_exceptions=True)


async def _version(endpoint: Endpoint) -> tuple[bool, Mapping[str, Any] | None, str]:
    """(whether the API port answered at all, its `version` reply if it is a successful one, else why not)."""
    api = CGMinerAPI(endpoint.host, endpoint.api_port, timeouts=endpoint.timeouts)
    try:
        return True, await api.command("version"), ""
    except (UnreachableError, DeviceTimeoutError):
        return False, None, ""
    except DeviceError as exc:
        # Refused, garbled, ...: something listens, but not a CGMiner-family `version`.
        return True, None, f"{exc.command or 'version'}: {exc.message}"


async def _accepts_any(endpoint: Endpoint, ports: list[int]) -> bool:
    """Whether any of `ports` accepts a TCP connection (tried together)."""
    if len(ports) == 1:
        return await _accepts(endpoint, ports[0])
    return any(await asyncio.gather(*(_accepts(endpoint, p) for p in ports)))


async def _accepts(endpoint: Endpoint, port: int) -> bool:
    """Whether `port` accepts a TCP connection within the connect timeout (closed at once)."""
    loop = asyncio.get_running_loop()
    try:
        async with asyncio.timeout(endpoint.timeouts.connect_s):
            transport, _ = await loop.create_connection(asyncio.Protocol, endpoint.host, port)
    except (OSError, TimeoutError):
        return False
    transport.close()
    return True
