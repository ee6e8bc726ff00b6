"""The one import point of the policy and the step planner the backtest replays through.

The backtest runs exactly the code `fleetd run` runs: `fleetd.curtail.policy.decide` and
`fleetd.curtail.ramp.plan_step`.
"""

from __future__ import annotations

from fleetd.curtail.policy import decide
from fleetd.curtail.ramp import plan_step

__all__ = ["decide", "plan_step"]
