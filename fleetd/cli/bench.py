"""`fleetd bench`: poll an emulated fleet in other processes with the real daemon and report the cost."""

from __future__ import annotations

import argparse
import json
import sys
from dataclasses import asdict
from typing import Any


def register(sub: Any) -> None:
    p = sub.add_parser(
        "bench",
        help="measure the poll path (or `bench curtail`: curtailment) against an emulated fleet",
        description=(
            "Start N emulated miners (a mix of the emulated models) in child processes on loopback, "
            "run the daemon against them for several poll cycles, and report cycle time, polls per "
            "second, daemon CPU per miner poll and resident memory per miner. Progress goes to stderr. "
            "`fleetd bench curtail` instead times the curtailment policy over N synthetic miners and a "
            "price spike's first ramp step sent through the real drivers to N emulated miners, then "
            "verified from their telemetry."
        ),
    )
    p.add_argument(
        "mode",
        nargs="?",
        choices=("poll", "curtail"),
        default="poll",
        help="poll (default): the poll path; curtail: decide and issue a curtailment",
    )
    p.add_argument("--miners", type=int, default=1000, metavar="N", help="emulated miners (default 1000)")
    p.add_argument(
        "--cycles", type=int, default=3, metavar="K", help="measured cycles after warm-up (default 3)"
    )
    p.add_argument(
        "--processes", type=int, default=None, metavar="P", help="emulator processes (default: 1 per 2,500)"
    )
    p.add_argument(
        "--interval", type=float, default=10.0, metavar="S", help="poll interval in seconds (default 10)"
    )
    p.add_argument(
        "--concurrency",
        type=int,
        default=None,
        metavar="C",
        help="polls in flight at most (default 1000); curtail: sends and re-reads (default 256)",
    )
    p.add_argument(
        "--base",
        default=None,
        metavar="IP",
        help="first loopback address of the emulated fleet (default 127.21.0.1)",
    )
    p.add_argument(
        "--loop",
        choices=("uvloop", "asyncio"),
        default=None,
        help="event loop (default: as fleetd run, uvloop when installed; $FLEETD_EVENT_LOOP)",
    )
    p.add_argument(
        "--default-gc",
        action="store_true",
        help="keep Python's default garbage-collector thresholds (fleetd run tunes them), to compare",
    )
    p.add_argument(
        "--trends",
        action="store_true",
        help="instead: time the health trend job over --hours of stored history for --miners miners",
    )
    p.add_argument("--hours", type=int, default=24, metavar="H", help="history for --trends (default 24)")
    p.add_argument(
        "--model",
        action="append",
        default=None,
        metavar="NAME",
        help="emulate only this model (repeatable; default: an even mix of every emulated model)",
    )
    p.add_argument(
        "--per-driver",
        nargs="?",
        const="all",
        default=None,
        metavar="D1,D2",
        help="run once per driver (antminer, luxos, avalon, braiins, vnish; default all) over that "
        "driver's emulated model only, and compare CPU per poll with antminer's",
    )
    p.add_argument(
        "--passes",
        type=int,
        default=15,
        metavar="K",
        help="curtail: timed decide passes over the synthetic fleet (default 15; the median is reported)",
    )
    p.add_argument(
        "--skip",
        choices=("decide", "spike"),
        default=None,
        help="curtail: leave out one of the two measurements",
    )
    p.add_argument("--json", action="store_true", help="print one JSON object instead of a summary")
    p.set_defaults(func=run)


def run(args: argparse.Namespace) -> int:
    import ipaddress

    from fleetd import bench
    from fleetd.cli import CLIError
    from fleetd.sim.fleet import BindError

    if args.miners < 1:
        raise CLIError("--miners must be at least 1")
    if args.trends:
        return _trends(args)
    if args.cycles < 1:
        raise CLIError("--cycles must be at least 1")
    if args.processes is not None and args.processes < 1:
        raise CLIError("--processes must be at least 1")
    if args.interval <= 0:
        raise CLIError("--interval must be positive")
    if args.concurrency is None:
        from fleetd.executor.runner import CONCURRENCY

        args.concurrency = CONCURRENCY if args.mode == "curtail" else 1000
    if not 1 <= args.concurrency <= 8000:
        raise CLIError("--concurrency must be within 1..8000")
    if args.passes < 1:
        raise CLIError("--passes must be at least 1")
    base = args.base or bench.DEFAULT_BASE
    try:
        first = ipaddress.IPv4Address(base)
    except ValueError:
        raise CLIError(f"--base {base!r} is not an IPv4 address") from None
    last = int(first) + args.miners - 1
    if not first.is_loopback or last > int(ipaddress.IPv4Address("127.255.255.254")):
        raise CLIError(f"{args.miners} miners from {base} do not fit in the loopback range 127.0.0.0/8")

    def progress(msg: str) -> None:
        print(f"fleetd bench: {msg}", file=sys.stderr, flush=True)

    if args.mode == "curtail":
        return _curtail(args, base, progress)
    if args.model:
        from fleetd.sim.models import lookup

        try:
            args.model = [lookup(m).spec.name for m in args.model]
        except KeyError as exc:
            raise CLIError(str(exc.args[0])) from None
    if args.per_driver is not None:
        return _per_driver(args, base, progress)
    try:
        result = bench.run(
            args.miners,
            models=args.model,
            cycles=args.cycles,
            processes=args.processes,
            interval_s=args.interval,
            concurrency=args.concurrency,
            base=base,
            event_loop=args.loop,
            tuned_gc=not args.default_gc,
            progress=progress,
        )
    except BindError as exc:
        raise CLIError(str(exc)) from None
    except (TimeoutError, RuntimeError) as exc:
        raise CLIError(str(exc), exit_code=1) from None
    if args.json:
        print(json.dumps(result.to_dict()))
    else:
        print(bench.report(result))
    return 0


def _trends(args: argparse.Namespace) -> int:
    from fleetd.cli import CLIError
    from fleetd.health import bench as health_bench

    if not 6 <= args.hours <= 24 * 30:
        raise CLIError("--hours must be within 6..720")
    result = health_bench.run(
        args.miners,
        hours=args.hours,
        progress=lambda msg: print(f"fleetd bench: {msg}", file=sys.stderr, flush=True),
    )
    print(json.dumps(result.to_dict()) if args.json else health_bench.report(result))
    return 0


def _per_driver(args: argparse.Namespace, base: str, progress: Any) -> int:
    from fleetd import bench
    from fleetd.cli import CLIError
    from fleetd.sim.fleet import BindError

    drivers = (
        None if args.per_driver == "all" else [d.strip() for d in args.per_driver.split(",") if d.strip()]
    )
    try:
        figures = bench.run_per_driver(
            args.miners,
            drivers=drivers,
            cycles=args.cycles,
            processes=args.processes,
            interval_s=args.interval,
            concurrency=args.concurrency,
            base=base,
            event_loop=args.loop,
            tuned_gc=not args.default_gc,
            progress=progress,
        )
    except ValueError as exc:
        raise CLIError(str(exc)) from None
    except BindError as exc:
        raise CLIError(str(exc)) from None
    except (TimeoutError, RuntimeError) as exc:
        raise CLIError(str(exc), exit_code=1) from None
    if args.json:
        print(json.dumps([asdict(f) for f in figures]))
    else:
        print(bench.report_per_driver(figures))
    return 0


def _curtail(args: argparse.Namespace, base: str, progress: Any) -> int:
    from fleetd import bench_curtail, runtime
    from fleetd.cli import CLIError
    from fleetd.sim.fleet import BindError

    runtime.tune_gc()  # as `fleetd run` does
    decided = spike = None
    if args.skip != "decide":
        decided = bench_curtail.measure_decide(args.miners, passes=args.passes, progress=progress)
    if args.skip != "spike":
        try:
            spike = bench_curtail.run_spike(
                args.miners,
                base=base,
                processes=args.processes,
                concurrency=args.concurrency,
                event_loop=args.loop,
                progress=progress,
            )
        except BindError as exc:
            raise CLIError(str(exc)) from None
        except (TimeoutError, RuntimeError) as exc:
            raise CLIError(str(exc), exit_code=1) from None
    if args.json:
        print(json.dumps(bench_curtail.to_dict(decided, spike)))
    else:
        print(bench_curtail.report(decided, spike))
    return 0
