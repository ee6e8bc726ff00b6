"""Which miners a rule or pin applies to, and the power and efficiency figures every rule reads."""

from __future__ import annotations

from fnmatch import fnmatchcase

from fleetd.curtail.model import MinerView
from fleetd.numbers import MAX_EFFICIENCY_J_PER_TH, MAX_HASHRATE_THS, MAX_POWER_W, number


def running_power_w(m: MinerView) -> float | None:
    return number(m.power_w, 1.0, MAX_POWER_W)


def sleep_power_w(m: MinerView, running_w: float) -> float | None:
    """What the miner draws asleep, clamped to its running power; None when the figure is unusable."""
    p = number(m.sleep_power_w, 0.0, MAX_POWER_W)
    return None if p is None else min(p, running_w)


def efficiency(m: MinerView) -> float | None:
    """J/TH: reported, or running power over hashrate."""
    e = number(m.efficiency_j_per_th, 0.001, MAX_EFFICIENCY_J_PER_TH)
    if e is not None:
        return e
    p = running_power_w(m)
    h = number(m.hashrate_ths, 0.001, MAX_HASHRATE_THS)
    return None if p is None or h is None else number(p / h, 0.001, MAX_EFFICIENCY_J_PER_TH)


class Matcher:
    """Matches miners against sites / fnmatch model patterns / racks / ids; every non-empty list must match.

    Model patterns are matched case-insensitively and cached per distinct model string, so a pass over a
    large fleet costs a few set look-ups per miner.
    """

    __slots__ = ("_model_cache", "everything", "miners", "models", "racks", "sites")

    def __init__(
        self,
        sites: tuple[str, ...] | list[str] = (),
        models: tuple[str, ...] | list[str] = (),
        racks: tuple[str, ...] | list[str] = (),
        miners: tuple[str, ...] | list[str] = (),
    ) -> None:
        self.sites = frozenset(sites)
        self.models = tuple(p.lower() for p in models)
        self.racks = frozenset(racks)
        self.miners = frozenset(miners)
        self.everything = not (self.sites or self.models or self.racks or self.miners)
        self._model_cache: dict[str, bool] = {}

    def model_matches(self, model: str) -> bool:
        hit = self._model_cache.get(model)
        if hit is None:
            low = model.lower()
            hit = any(fnmatchcase(low, p) for p in self.models)
            if len(self._model_cache) < 10_000:
                self._model_cache[model] = hit
        return hit

    def __call__(self, m: MinerView) -> bool:
        if self.everything:
            return True
        if self.miners and m.id not in self.miners:
            return False
        if self.sites and m.site not in self.sites:
            return False
        if self.racks and m.rack not in self.racks:
            return False
        return not self.models or self.model_matches(m.model)

    def describe(self) -> str:
        if self.everything:
            return "the whole fleet"
        parts = []
        for label, items in (("sites", self.sites), ("models", self.models), ("racks", self.racks)):
            if items:
                parts.append(f"{label} {', '.join(sorted(items))}")
        if self.miners:
            parts.append(f"{len(self.miners)} listed miners")
        return "; ".join(parts)
