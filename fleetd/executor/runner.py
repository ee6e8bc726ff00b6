"""Runs one StepPlan: each command through the driver's verified sleep/wake/set_power_limit, bounded.

The drivers re-read telemetry until the change shows and raise NotCompliedError otherwise; a vendor's
acknowledgement alone never counts. Every command is bounded by `retry.verify_timeout_s`.
"""

from __future__ import annotations

import asyncio
import logging
import time
from collections.abc import Callable, Mapping
from dataclasses import dataclass

from fleetd.curtail.config import CurtailmentConfig
from fleetd.curtail.model import Action, Target
from fleetd.curtail.ramp import Command, ControlState, StepPlan, failed, succeeded
from fleetd.drivers import Driver
from fleetd.drivers.base import SupportsPowerLimit, SupportsSleep
from fleetd.model import Snapshot
from fleetd.transport.errors import DeviceError

log = logging.getLogger("fleetd.executor")

CONCURRENCY = 64  # commands in flight at once; each holds one connection to one miner


@dataclass(frozen=True, slots=True)
class Outcome:
    """What became of one command: verified or not, the new control state, the proof or the error."""

    command: Command
    state: ControlState
    ok: bool
    error: str = ""
    dry_run: bool = False  # planned and recorded, not sent
    snapshot: Snapshot | None = None

    @property
    def kind(self) -> str:
        return command_kind(self.command.target)


def command_kind(target: Target) -> str:
    """ "sleep", "wake" or "limit": the driver call a target needs."""
    return {Action.SLEEP: "sleep", Action.RUN: "wake", Action.LIMIT: "limit"}[target.action]


async def _send(drv: Driver, target: Target) -> Snapshot:
    if target.action is Action.LIMIT:
        if not isinstance(drv, SupportsPowerLimit) or target.power_limit_w is None:
            raise _Unsupported(f"the {drv.name} driver cannot set a power limit")
        return await drv.set_power_limit(target.power_limit_w)
    if not isinstance(drv, SupportsSleep):
        raise _Unsupported(f"the {drv.name} driver cannot sleep or wake a miner")
    return await (drv.sleep() if target.action is Action.SLEEP else drv.wake())


class _Unsupported(Exception):
    pass


async def _one(
    cmd: Command,
    state: ControlState,
    driver_of: Callable[[str], Driver | None],
    config: CurtailmentConfig,
    clock: Callable[[], float],
) -> Outcome:
    drv = driver_of(cmd.miner_id)
    timeout = config.retry.verify_timeout_s
    try:
        if drv is None:
            raise _Unsupported("no driver yet (the miner has not been identified)")
        async with asyncio.timeout(timeout):
            snap = await _send(drv, cmd.target)
    except TimeoutError:
        error = f"not verified within {timeout:g} s"
    except (DeviceError, OSError, _Unsupported) as exc:
        error = str(exc) or type(exc).__name__
    except Exception as exc:  # a driver bug fails this command, never the step
        log.debug("driver error commanding %s", cmd.miner_id, exc_info=True)
        error = f"driver error: {type(exc).__name__}: {exc}"
    else:
        return Outcome(cmd, succeeded(state, cmd, clock()), True, snapshot=snap)
    return Outcome(cmd, failed(state, cmd, error, config, clock()), False, error)


async def execute(
    step: StepPlan,
    states: Mapping[str, ControlState],
    driver_of: Callable[[str], Driver | None],
    config: CurtailmentConfig,
    *,
    enforce: bool,
    concurrency: int = CONCURRENCY,
    clock: Callable[[], float] = time.time,
) -> list[Outcome]:
    """Send the step's commands (dry run: send nothing) and return one Outcome per command, in order."""
    if not enforce:
        return [
            Outcome(c, states.get(c.miner_id) or ControlState(), False, "dry run", dry_run=True)
            for c in step.commands
        ]
    gate = asyncio.Semaphore(max(1, concurrency))

    async def bounded(cmd: Command) -> Outcome:
        async with gate:
            return await _one(cmd, states.get(cmd.miner_id) or ControlState(), driver_of, config, clock)

    return list(await asyncio.gather(*(bounded(c) for c in step.commands)))
