"""Curtailment views' test helpers: a hand-made FleetState and CurtailStatus, and a daemon-like holder.

This area's loopback blocks: 127.34.x.y (API, CLI) and 127.35.x.y (MQTT, Prometheus).
"""

from __future__ import annotations

import time
from collections import deque
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from fleetd.config import Config, parse_config
from fleetd.curtail.model import SLEEP, Action, Actual, Reason, RuleKind, Target
from fleetd.curtail.status import CurtailStatus, MinerCurtailStatus
from fleetd.daemon.curtail_controls import ControlsStore
from fleetd.daemon.events import Event
from fleetd.daemon.state import FleetState, Health, Labels, MinerRecord
from fleetd.model import Identity

API_BLOCK = 34
EXPORT_BLOCK = 35
TOKEN = "s3cret-token-for-tests"

_ECON = Reason(
    RuleKind.ECONOMIC, "economic", "profit -$0.42/day below $0.00/day for 3 checks", {"profit": -0.42}
)
_STRIKE = Reason(RuleKind.PRICE_STRIKE, "strike", "price $120/MWh above strike $90/MWh", {"price": 120.0})
_DEFAULT = Reason(RuleKind.DEFAULT, "default", "no rule applies")


def fleet_state(n: int = 6) -> FleetState:
    st = FleetState()
    for i in range(n):
        host = f"10.9.0.{i + 1}"
        model = "Antminer S19 Pro" if i % 2 == 0 else "Antminer S21"
        ident = Identity(vendor="antminer", model=model, firmware="fw", serial=f"SN{i}", host=host)
        st.miners[host] = MinerRecord(
            id=host,
            host=host,
            labels=Labels(site="north" if i < n // 2 else "south", rack="r1"),
            identity=ident,
            health=Health.UP,
        )
    return st


def curtail_status(state: FleetState, now: float | None = None, **extra: Any) -> CurtailStatus:
    """Miner 1 asleep (verified), 2 sleep pending (ramp), 3 limited, 4 unresponsive, the rest running."""
    now = time.time() if now is None else now
    miners: dict[str, MinerCurtailStatus] = {}
    for i, mid in enumerate(state.miners):
        if i == 0:
            m = MinerCurtailStatus(mid, SLEEP, _ECON, now - 600, Actual.SLEEPING, now - 500, True)
        elif i == 1:
            m = MinerCurtailStatus(
                mid, SLEEP, _STRIKE, now - 60, Actual.RUNNING, now - 50, True, waiting="ramp"
            )
        elif i == 2:
            m = MinerCurtailStatus(
                mid, Target(Action.LIMIT, 2500), _STRIKE, now - 60, Actual.LIMITED, now - 30, True
            )
        elif i == 3:
            m = MinerCurtailStatus(
                mid,
                SLEEP,
                _STRIKE,
                now - 60,
                Actual.UNRESPONSIVE,
                0.0,
                True,
                failures=3,
                last_error="not complied",
            )
        else:
            m = MinerCurtailStatus(
                mid, Target(Action.RUN), _DEFAULT, now - 3600, Actual.RUNNING, now - 10, i != 5
            )
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


@dataclass
class FakeDaemon:
    """What the views read of a Daemon."""

    config: Config
    state: FleetState
    curtail_controls: ControlsStore | None
    curtail_status: CurtailStatus | None = None
    events: deque[Event] = field(default_factory=lambda: deque(maxlen=1000))
    economics: Any = None
    mqtt: Any = None
    on_cycle: list[Any] = field(default_factory=list)

    def emit(self, event: Event) -> None:
        self.events.append(event)

    def storage_status(self) -> None:
        return None


def fake_daemon(tmp_path: Path, *, curtailment: bool = True, **curtail: Any) -> FakeDaemon:
    config = parse_config({"curtailment": curtail} if curtailment else {})
    state = fleet_state()
    d = FakeDaemon(config, state, None)
    if curtailment:
        d.curtail_controls = ControlsStore(tmp_path / "curtail_controls.json", on_event=d.emit)
    d.curtail_status = curtail_status(state)
    return d
