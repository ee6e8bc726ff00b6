"""Builders for pure policy tests: miners, prices, configs, and a pass runner that carries memory."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

from fleetd.curtail.config import CurtailmentConfig, parse_curtailment
from fleetd.curtail.model import (
    Controls,
    Decision,
    FleetMemory,
    MinerMemory,
    MinerView,
    Plan,
    PricePoint,
    PriceView,
)
from fleetd.curtail.policy import decide

T0 = 1_780_000_000.0  # 2026-05-28, a fixed clock
INTERVAL = 900.0


def miner(mid: str, **kw: Any) -> MinerView:
    defaults: dict[str, Any] = {
        "site": "tx1",
        "model": "Antminer S19 Pro",
        "hashrate_ths": 110.0,
        "power_w": 3250.0,
        "efficiency_j_per_th": 29.5,
        "profit_per_day": 2.0,
        "can_sleep": True,
    }
    defaults.update(kw)
    return MinerView(mid, **defaults)


def prices(
    now_price: float | None = 40.0,
    at: float = T0,
    history: Sequence[float | None] = (),
    stale: bool = False,
) -> PriceView:
    """A price view whose history is `history` (oldest first) ending with the current interval at `at`."""
    n = len(history)
    hist = tuple(PricePoint(at - (n - 1 - i) * INTERVAL, p) for i, p in enumerate(history) if p is not None)
    if history and history[-1] is not None:
        now_price = history[-1]
    return PriceView(now_price, at, stale, INTERVAL, hist)


def config(*rules: dict[str, Any], **kw: Any) -> CurtailmentConfig:
    return parse_curtailment({"rules": list(rules), **kw})


def by_id(plan: Plan) -> dict[str, Decision]:
    return {d.miner_id: d for d in plan.decisions}


@dataclass
class Runner:
    """Runs decide() pass after pass, carrying miner and fleet memory like the daemon does."""

    config: CurtailmentConfig
    controls: Controls = field(default_factory=Controls)
    memory: Mapping[str, MinerMemory] = field(default_factory=dict)
    fleet: FleetMemory = field(default_factory=FleetMemory)
    now: float = T0
    last: Plan | None = None

    def step(
        self, miners: Sequence[MinerView], pv: PriceView | None = None, dt: float = 60.0
    ) -> dict[str, Decision]:
        pv = pv if pv is not None else prices(at=self.now)
        plan = decide(miners, pv, self.config, self.controls, self.memory, self.fleet, self.now)
        self.memory, self.fleet, self.last = plan.memory, plan.fleet, plan
        self.now += dt
        return by_id(plan)
