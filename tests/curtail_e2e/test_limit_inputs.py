"""Pure: a driver's power-limit range reaches the policy's MinerView; a discrete level under the target is
the limit in effect."""

from __future__ import annotations

from fleetd.curtail.model import Action, Actual, Target
from fleetd.curtail.ramp import ControlState
from fleetd.daemon.curtail_inputs import Money, miner_views, seen_actual
from fleetd.daemon.state import Health, MinerRecord
from fleetd.model import Capability, Mode, Snapshot

CAPS = {"a": frozenset({Capability.SLEEP, Capability.POWER_LIMIT}), "b": frozenset({Capability.SLEEP})}


def _rec(mid: str, snap: Snapshot | None = None) -> MinerRecord:
    return MinerRecord(mid, mid, snapshot=snap, health=Health.UP)


def test_the_drivers_limit_range_reaches_the_view() -> None:
    views = miner_views([_rec("a"), _rec("b")], CAPS, {}, None, Money(None, None), {"a": (2462, 4104)})
    a, b = views
    assert a.can_limit and (a.min_power_limit_w, a.max_power_limit_w) == (2462, 4104)
    assert not b.can_limit and b.min_power_limit_w is None and b.max_power_limit_w is None
    (a,) = miner_views([_rec("a")], CAPS, {}, None, Money(None, None))  # no range known: none set
    assert a.min_power_limit_w is None


def test_a_level_at_or_under_the_target_is_limited() -> None:
    state = ControlState(Actual.LIMITED, Target(Action.LIMIT, 3000))

    def seen(limit_w: float) -> Actual | None:
        snap = Snapshot(hashrate_ths=150.0, is_mining=True, mode=Mode.LOW, power_limit_w=limit_w)
        return seen_actual(_rec("a", snap), state)

    assert seen(2462.0) is Actual.LIMITED  # Avalon Eco under a 3000 W limit
    assert seen(3000.0) is Actual.LIMITED
    assert seen(3420.0) is Actual.RUNNING  # over the target: the limit is not in effect
