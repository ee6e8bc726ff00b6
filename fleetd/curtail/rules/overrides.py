"""Overrides: operator pins from config and the API (run, sleep, exclude, maintenance), optionally expiring.

When several pins match a miner the most specific wins (miner ids, then models, then sites, then the whole
fleet), then a runtime pin (API, CLI) over a config one, then the more cautious action (maintenance,
exclude, sleep, run), then the pin id: the same inputs always give the same pin.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from dataclasses import dataclass

from fleetd.curtail.config import PinConfig
from fleetd.curtail.model import MinerView, Pin, PinAction
from fleetd.curtail.rules.scope import Matcher

_CAUTION = {PinAction.MAINTENANCE: 0, PinAction.EXCLUDE: 1, PinAction.SLEEP: 2, PinAction.RUN: 3}
HANDS_OFF = frozenset({PinAction.EXCLUDE, PinAction.MAINTENANCE})


def from_config(pins: Iterable[PinConfig]) -> tuple[Pin, ...]:
    return tuple(
        Pin(p.action, tuple(p.miners), tuple(p.sites), tuple(p.models), None, p.note, "config", f"config-{i}")
        for i, p in enumerate(pins)
    )


@dataclass(frozen=True, slots=True)
class ActivePins:
    """The pins in force at one instant, in precedence order, with their matchers."""

    pins: tuple[tuple[Pin, Matcher], ...]

    @classmethod
    def of(cls, pins: Sequence[Pin], now: float) -> ActivePins:
        live = [p for p in pins if p.until is None or now < p.until]
        live.sort(
            key=lambda p: (
                0 if p.miners else 1 if p.models else 2 if p.sites else 3,
                0 if p.source != "config" else 1,
                _CAUTION.get(p.action, 9),
                p.id,
            )
        )
        return cls(tuple((p, Matcher(p.sites, p.models, (), p.miners)) for p in live))

    def match(self, m: MinerView) -> Pin | None:
        for pin, matcher in self.pins:
            if matcher(m):
                return pin
        return None
