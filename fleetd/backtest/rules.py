"""The one import point of the policy and the step planner the backtest replays through.

The real `fleetd.curtail.policy.decide` and `fleetd.curtail.ramp.plan_step` are used when present, so that
the backtest runs exactly the code `fleetd run` runs; until they land, the stand-ins of `_interim`.
"""

from __future__ import annotations

try:
    from fleetd.curtail.policy import decide  # type: ignore[import-not-found,unused-ignore]
except ImportError:
    from fleetd.backtest._interim import decide
try:
    from fleetd.curtail.ramp import plan_step  # type: ignore[attr-defined,unused-ignore]
except ImportError:
    from fleetd.backtest._interim import plan_step

INTERIM = (
    decide.__module__ == "fleetd.backtest._interim" or plan_step.__module__ == "fleetd.backtest._interim"
)

__all__ = ["INTERIM", "decide", "plan_step"]
