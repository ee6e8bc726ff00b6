"""`fleetd sleep HOST` / `fleetd wake HOST`: run a driver's verified power commands.

Exit status: 0 when the miner's own telemetry confirms the change, 1 on a device error (unreachable,
wrong password, garbage reply), 2 on bad input, 3 when the miner acknowledged but did not comply,
4 when its driver has no sleep/wake capability.
"""

from __future__ import annotations

import argparse
import asyncio
import sys
import time

from fleetd.cli import CLIError
from fleetd.cli.device_args import (
    add_device_args,
    connect,
    describe,
    endpoint,
    run,
    stderr_is_tty,
    timeout_s,
)
from fleetd.cli.probe import snapshot_line
from fleetd.drivers import Endpoint, SupportsSleep
from fleetd.model import Snapshot
from fleetd.transport.errors import NotCompliedError

EXIT_NOT_COMPLIED = 3
EXIT_UNSUPPORTED = 4

_EPILOG = (
    "exit status: 0 verified, 1 device error (unreachable, auth, bad reply), 2 bad input, "
    "3 acknowledged but not complied, 4 the miner's driver cannot sleep/wake"
)


def register(subparsers: argparse._SubParsersAction) -> None:
    for action, summary in (
        ("sleep", "stop hashing at idle power, and verify from the miner's telemetry"),
        ("wake", "resume hashing in the mode the miner had before sleeping, and verify"),
    ):
        p = subparsers.add_parser(
            action, help=summary, description=f"{action.capitalize()}: {summary}.", epilog=_EPILOG
        )
        add_device_args(p)
        p.add_argument(
            "--verify-timeout",
            type=timeout_s,
            default=None,
            metavar="S",
            help="how long the change may take to show in telemetry (driver default: 60 s)",
        )
        p.add_argument("--quiet", "-q", action="store_true", help="no progress messages on stderr")
        p.set_defaults(func=main, action=action)


def main(args: argparse.Namespace) -> int:
    ep = endpoint(args, verify_s=args.verify_timeout)
    snap, elapsed = run(_power(args, ep), host=ep.host)
    state = "asleep" if args.action == "sleep" else "awake"
    print(f"{ep.host}: {state}, verified in {elapsed:.1f} s: {snapshot_line(snap)}")
    return 0


async def _power(args: argparse.Namespace, ep: Endpoint) -> tuple[Snapshot, float]:
    driver, identity = await connect(args, ep)
    try:
        who = describe(identity, ep.host)
        if not isinstance(driver, SupportsSleep):
            raise CLIError(
                f"{who}: the {driver.name} driver cannot {args.action} this miner (no sleep capability)",
                EXIT_UNSUPPORTED,
            )
        command = driver.sleep if args.action == "sleep" else driver.wake
        started = time.monotonic()
        task = asyncio.ensure_future(command())
        if not args.quiet:
            await _progress(task, who, args.action, ep.timeouts.verify_s, started)
        try:
            snap = await task
        except NotCompliedError as exc:
            raise CLIError(f"did not comply: {exc}", EXIT_NOT_COMPLIED) from None
        return snap, time.monotonic() - started
    finally:
        await driver.close()


async def _progress(task: asyncio.Future, who: str, action: str, verify_s: float, started: float) -> None:
    """Say what is happening while the driver sends the command and waits for telemetry to confirm it."""
    verb = "putting to sleep" if action == "sleep" else "waking"
    message = f"fleetd {action}: {verb} {who}; waiting up to {verify_s:.0f} s for the miner to confirm"
    if not stderr_is_tty():
        print(message, file=sys.stderr, flush=True)
        await asyncio.wait([task])
        return
    while not task.done():
        sys.stderr.write(f"\r{message} ... {time.monotonic() - started:4.0f} s")
        sys.stderr.flush()
        await asyncio.wait([task], timeout=0.5)
    sys.stderr.write("\r\x1b[2K")
    sys.stderr.flush()
