"""Runs one StepPlan: each command through the driver's verified sleep/wake/set_power_limit, bounded.

The whole step is sent first (`send_sleep`, ... : the miner's acknowledgement), then every command is
verified: the drivers re-read telemetry until the change shows and raise NotCompliedError otherwise; a
vendor's acknowledgement alone never counts. Each phase is bounded by `retry.verify_timeout_s`.
"""

from __future__ import annotations

import asyncio
import logging
import time
from collections.abc import Awaitable, Callable, Mapping
from dataclasses import dataclass
from typing import TypeVar

from fleetd.curtail.config import CurtailmentConfig
from fleetd.curtail.model import Action, Target
from fleetd.curtail.ramp import Command, ControlState, StepPlan, failed, succeeded
from fleetd.drivers import Driver, verify
from fleetd.drivers.base import Sent, SupportsPowerLimit, SupportsSleep
from fleetd.model import Snapshot
from fleetd.transport.errors import DeviceError

log = logging.getLogger("fleetd.executor")

# Sends and verifying re-reads in flight at once, each holding one connection to one miner. With 10,000
# emulated miners on 2 cores (fleetd bench curtail) 256 sent a step fastest; 64 and 1,000 took 1.3-2x as long.
CONCURRENCY = 256
T = TypeVar("T")


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


async def _send(drv: Driver, target: Target) -> Sent:
    if target.action is Action.LIMIT:
        if not isinstance(drv, SupportsPowerLimit) or target.power_limit_w is None:
            raise _Unsupported(f"the {drv.name} driver cannot set a power limit")
        return await drv.send_power_limit(target.power_limit_w)
    if not isinstance(drv, SupportsSleep):
        raise _Unsupported(f"the {drv.name} driver cannot sleep or wake a miner")
    return await (drv.send_sleep() if target.action is Action.SLEEP else drv.send_wake())


class _Unsupported(Exception):
    pass


async def _bounded(cmd: Command, call: Callable[[], Awaitable[T]], limit_s: float) -> T | str:
    """The call's result, or why it failed (a timeout, a device error, a driver bug): never raises."""
    try:
        async with asyncio.timeout(limit_s):
            return await call()
    except TimeoutError:
        return f"not verified within {limit_s:g} s"
    except (DeviceError, OSError, _Unsupported) as exc:
        return str(exc) or type(exc).__name__
    except Exception as exc:  # a driver bug fails this command, never the step
        log.debug("driver error commanding %s", cmd.miner_id, exc_info=True)
        return f"driver error: {type(exc).__name__}: {exc}"


async def _send_one(cmd: Command, driver_of: Callable[[str], Driver | None], limit_s: float) -> Sent | str:
    drv = driver_of(cmd.miner_id)
    if drv is None:
        return "no driver yet (the miner has not been identified)"
    return await _bounded(cmd, lambda: _send(drv, cmd.target), limit_s)


async def execute(
    step: StepPlan,
    states: Mapping[str, ControlState],
    driver_of: Callable[[str], Driver | None],
    config: CurtailmentConfig,
    *,
    enforce: bool,
    concurrency: int = CONCURRENCY,
    clock: Callable[[], float] = time.time,
    on_sent: Callable[[], None] | None = None,
    gate: asyncio.Semaphore | None = None,
) -> list[Outcome]:
    """Send the step's commands (dry run: send nothing) and return one Outcome per command, in order.

    Two phases: every command is sent (and acknowledged) first, then each is verified from re-read
    telemetry; `on_sent` is called between them. A miner gets one command per step, so it never has two
    in flight. Each phase of a command is bounded by `retry.verify_timeout_s`. At most `concurrency`
    sends and verifying re-reads run at once (or as many as `gate`, shared with other calls, allows);
    the waits between a command's re-reads hold no slot.
    """
    if not enforce:
        return [
            Outcome(c, states.get(c.miner_id) or ControlState(), False, "dry run", dry_run=True)
            for c in step.commands
        ]
    slots = gate if gate is not None else asyncio.Semaphore(max(1, concurrency))
    timeout = config.retry.verify_timeout_s

    async def send(cmd: Command) -> Sent | str:
        async with slots:
            return await _send_one(cmd, driver_of, timeout)

    async def confirm(cmd: Command, sent: Sent | str) -> Outcome:
        state = states.get(cmd.miner_id) or ControlState()
        if isinstance(sent, Sent):
            verify.READ_GATE.set(slots)  # this task's own context: its re-reads take slots one by one
            proof = await _bounded(cmd, sent.confirm, timeout)
            if not isinstance(proof, str):
                return Outcome(cmd, succeeded(state, cmd, clock()), True, snapshot=proof)
            sent = proof
        return Outcome(cmd, failed(state, cmd, sent, config, clock()), False, sent)

    acks = await asyncio.gather(*(send(c) for c in step.commands))
    if on_sent is not None:
        on_sent()
    return list(await asyncio.gather(*(confirm(c, a) for c, a in zip(step.commands, acks, strict=True))))
