"""Overrides: operator pins from config and the API (run, sleep, exclude, maintenance), optionally expiring.

When several pins match a miner the most specific wins (miner ids, then models, then sites, then the whole
fleet), then a runtime pin (API, CLI) over a config one, then the more cautious action (maintenance,
exclude, sleep, run), then the pin id: the same inputs always give the same pin.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field

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
    # Pins naming miner ids sort first and match only the ids they name: a miner named by none skips them.
    _named: frozenset[str] = field(init=False, repr=False, compare=False)
    _by_id: int = field(init=False, repr=False, compare=False)  # how many leading pins name miner ids
    _keyed_by: frozenset[str] = field(init=False, repr=False, compare=False)

    def __post_init__(self) -> None:
        k = 0
        while k < len(self.pins) and self.pins[k][0].miners:
            k += 1
        object.__setattr__(self, "_by_id", k)
        object.__setattr__(self, "_named", frozenset(i for p, _ in self.pins[:k] for i in p.miners))
        rest = [p for p, _ in self.pins[k:]]
        keyed = {"site"} if any(p.sites for p in rest) else set()
        keyed |= {"model"} if any(p.models for p in rest) else set()
        object.__setattr__(self, "_keyed_by", frozenset(keyed))

    @classmethod
    def of(cls, pins: Sequence[Pin], now: float) -> ActivePins:
        live = tuple(p for p in pins if p.until is None or now < p.until)
        try:
            hit = _last.get(live)
        except TypeError:  # a pin built with lists instead of tuples: not cacheable, still valid
            hit, live = None, None
        if hit is not None:
            return hit
        ordered = sorted(
            (p for p in pins if p.until is None or now < p.until),
            key=lambda p: (
                0 if p.miners else 1 if p.models else 2 if p.sites else 3,
                0 if p.source != "config" else 1,
                _CAUTION.get(p.action, 9),
                p.id,
            ),
        )
        made = cls(tuple((p, Matcher(p.sites, p.models, (), p.miners)) for p in ordered))
        if live is not None:
            _last.clear()  # one entry: the pins rarely change between passes
            _last[live] = made
        return made

    @property
    def named(self) -> frozenset[str]:
        """The miner ids that pins name (only these can match a pin that names ids)."""
        return self._named

    @property
    def keyed_by(self) -> frozenset[str]:
        """The MinerView fields the pins that name no ids look at."""
        return self._keyed_by

    def match(self, m: MinerView) -> Pin | None:
        return self._match_from(m, 0 if m.id in self._named else self._by_id)

    def match_unnamed(self, m: MinerView) -> Pin | None:
        """The first pin that names no miner ids and matches `m`."""
        return self._match_from(m, self._by_id)

    def _match_from(self, m: MinerView, start: int) -> Pin | None:
        pins = self.pins
        for i in range(start, len(pins)):
            pin, matcher = pins[i]
            if matcher(m):
                return pin
        return None


_last: dict[tuple[Pin, ...] | None, ActivePins] = {}
