"""A hand-built CurtailStatus over a fleet's miner ids, for the curtailment views (metrics, MQTT, Grafana).

This area's loopback blocks for curtailment: 110-119 (127.110.x.y and up).
"""

from __future__ import annotations

import time
from collections.abc import Iterable
from typing import Any

from fleetd.curtail.model import RUN, SLEEP, Action, Actual, Reason, RuleKind, Target
from fleetd.curtail.status import CurtailStatus, MinerCurtailStatus

CURTAIL_BLOCK = 110  # emulated miners of the curtailment exporter tests
DR_BLOCK = 111  # the daemon of the MQTT demand-response test

ECON = Reason(
    RuleKind.ECONOMIC, "economic", "profit -$0.42/day below $0.00/day for 3 checks", {"profit": -0.42}
)
STRIKE = Reason(RuleKind.PRICE_STRIKE, "strike", "price $120/MWh above strike $90/MWh", {"price": 120.0})
DEFAULT = Reason(RuleKind.DEFAULT, "default", "no rule applies")


def status(ids: Iterable[str], now: float | None = None, **extra: Any) -> CurtailStatus:
    """First miner asleep (verified), second sleep pending (ramp), third limited to 2500 W, fourth
    unresponsive, fifth not controllable with a sleep target, the rest running."""
    now = time.time() if now is None else now
    miners: dict[str, MinerCurtailStatus] = {}
    for i, mid in enumerate(ids):
        if i == 0:
            m = MinerCurtailStatus(mid, SLEEP, ECON, now - 600, Actual.SLEEPING, now - 500, True)
        elif i == 1:
            m = MinerCurtailStatus(
                mid, SLEEP, STRIKE, now - 60, Actual.RUNNING, now - 50, True, waiting="ramp"
            )
        elif i == 2:
            m = MinerCurtailStatus(
                mid, Target(Action.LIMIT, 2500), STRIKE, now - 60, Actual.LIMITED, now - 30, True
            )
        elif i == 3:
            m = MinerCurtailStatus(
                mid,
                SLEEP,
                STRIKE,
                now - 60,
                Actual.UNRESPONSIVE,
                0.0,
                True,
                failures=3,
                last_error="not complied",
            )
        elif i == 4:
            m = MinerCurtailStatus(mid, SLEEP, ECON, now - 60, Actual.UNKNOWN, 0.0, False)
        else:
            m = MinerCurtailStatus(mid, RUN, DEFAULT, now - 3600, Actual.RUNNING, now - 10, True)
        miners[mid] = m
    values: dict[str, Any] = {
        "enforce": True,
        "decided_at": now,
        "miners": miners,
        "active_rules": ("economic", "strike"),
        "load_kw": 12.5,
        "target_kw": 15.0,
        "shed_kw": 6.75,
        "sent": {"sleep": 4, "limit": 1, "wake": 2},
        "failed": {"sleep": 3},
        "retried": {"sleep": 2},
    }
    return CurtailStatus(**(values | extra))
