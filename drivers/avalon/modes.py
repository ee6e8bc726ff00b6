"""Avalon work modes as power levels: each model's expected watts per mode, and the pure choice of a mode.

Canaan's firmware reports only the power of the mode it runs (MPO), never the others', so the driver
keeps each model's figures here. They are the catalog's (config/models.toml, `low`/`normal`/`high` of the
Avalon entries, with their sources; tests/avalon checks that both agree). A model whose figures are not
known here cannot take a power limit: guessing would risk drawing more than the limit.
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from dataclasses import dataclass
from types import MappingProxyType

from fleetd.model import Mode

__all__ = ["MODE_WATTS", "WorkMode", "mode_watts", "pick_mode"]


@dataclass(frozen=True, slots=True)
class WorkMode:
    """One work mode of one model: the `ascset|0,workmode,set,N` value, its normalized mode, its watts."""

    value: int
    mode: Mode
    watts: float


def _modes(low: float, normal: float, high: float | None = None) -> tuple[WorkMode, ...]:
    found = [WorkMode(0, Mode.LOW, low), WorkMode(1, Mode.NORMAL, normal)]
    if high is not None:
        found.append(WorkMode(2, Mode.HIGH, high))
    return tuple(found)


# Keyed by the normalized model (see `_key`); values as in config/models.toml.
MODE_WATTS: Mapping[str, tuple[WorkMode, ...]] = MappingProxyType(
    {
        "a1466": _modes(2326, 3230, 3876),
        "a1566": _modes(2462, 3420, 4104),
        "q": _modes(800, 1674),  # Super's draw is not known: not offered
    }
)
_ALIASES = {"1466": "a1466", "1566": "a1566", "15194": "a1566"}
_NOISE = re.compile(r"avalonminer|avalon|canaan|[\s_\-]")


def _key(model: str) -> str:
    key = _NOISE.sub("", model.lower())
    return _ALIASES.get(key, key)


def mode_watts(model: str) -> tuple[WorkMode, ...]:
    """The work modes of `model` ("AvalonMiner 15-194", "Avalon Q"...), lowest power first; () if unknown."""
    return tuple(sorted(MODE_WATTS.get(_key(model), ()), key=lambda m: m.watts))


def pick_mode(modes: tuple[WorkMode, ...], watts: float) -> WorkMode | None:
    """The mode with the most power within `watts`, or None when even the lowest draws more."""
    fits = [m for m in modes if m.watts <= watts]
    return max(fits, key=lambda m: m.watts) if fits else None
