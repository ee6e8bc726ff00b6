"""Per-vendor drivers (installed as `fleetd.drivers`) and detection of which one a host needs."""

from __future__ import annotations

import asyncio
import importlib

from fleetd.drivers.base import (
    Credentials,
    Driver,
    Endpoint,
    SupportsPowerLimit,
    SupportsReboot,
    SupportsSleep,
    Timeouts,
)

from fleetd.model import Identity

__all__ = [
    "Credentials",
    "Driver",
    "Endpoint",
    "SupportsPowerLimit",
    "SupportsReboot",
    "SupportsSleep",
    "Timeouts",
    "detect",
    "driver_class",
    "driver_classes",
]

# Detection order: most specific first; the generic CGMiner driver answers for anything that
# speaks the API, so it comes last. Entries are "module:Class" under fleetd.drivers.
_REGISTRY: tuple[str, ...] = (
    "antminer:AntminerDriver",
    "whatsminer:WhatsminerDriver",
    "cgminer:CGMinerDriver",
)


def driver_classes() -> list[type[Driver]]:
    """The registered driver classes that are present, in detection order."""
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
    for cls in driver_classes():
        if cls.name == name:
            return cls
    raise KeyError(f"unknown driver {name!r}; known: {', '.join(c.name for c in driver_classes())}")


async def detect(endpoint: Endpoint) -> tuple[type[Driver], Identity] | None:
    """Probe `endpoint` with every driver at once; the first in detection order that claims it wins."""
    classes = driver_classes()
    tasks = [asyncio.ensure_future(c.probe(endpoint)) for c in classes]
    try:
        # Decided as soon as every driver ahead of a claimant has answered: a slow probe further down
        # the order (e.g. a port that drops packets) does not hold up a miner already identified.
        for cls, task in zip(classes, tasks, strict=True):
            try:
                res = await task
            except Exception:
                continue
            if isinstance(res, Identity):
                return cls, res
        return None
    finally:
        for task in tasks:
            if not task.done():
                task.cancel()
        await asyncio.gather(*tasks, return_exceptions=True)
