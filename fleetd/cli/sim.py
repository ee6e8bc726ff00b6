"""`fleetd sim`: serve emulated miners on loopback addresses until interrupted."""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import ipaddress
import math
import signal
import sys
from collections.abc import Sequence
from pathlib import Path
from typing import Any, TextIO

from fleetd.cli import CLIError, argtypes
from fleetd.runtime import raise_nofile

DEFAULT_BASE = "127.1.0.1"
_seconds = argtypes.seconds(at_most=86400, zero=True)


def _time_scale(text: str) -> float:
    try:
        value = float(text)
    except ValueError:
        value = math.nan
    if not 0 < value <= 1e6:
        raise argparse.ArgumentTypeError(f"time scale must be a number in (0, 1000000], not {text!r}")
    return value


def register(subparsers: argparse._SubParsersAction) -> None:
    p = subparsers.add_parser(
        "sim",
        help="serve emulated miners on loopback addresses (for trying fleetd without hardware)",
        description=(
            "Start emulated miners, each on its own 127.x.y.z address, and serve them until Ctrl-C or "
            "SIGTERM. Repeat --model/--count/--base for several groups; a group without --base follows "
            "the previous one. Ports below 1024 (the real web port 80) need root: use --web-port 8080."
        ),
    )
    add = p.add_argument
    add("--model", action="append", default=[], metavar="MODEL", help='"Antminer S19 Pro", ... (repeatable)')
    add(
        "--count",
        action="append",
        type=argtypes.count,
        default=[],
        metavar="N",
        help="miners in the group (1)",
    )
    add("--base", action="append", default=[], metavar="IP", help=f"first address ({DEFAULT_BASE})")
    add("--api-port", type=argtypes.port, default=4028, metavar="PORT", help="TCP API port (4028)")
    add("--web-port", type=argtypes.port, default=80, metavar="PORT", help="web CGI port (80; needs root)")
    add("--v3-port", type=argtypes.port, default=4433, metavar="PORT", help="Whatsminer API v3 port (4433)")
    add(
        "--fault",
        action="append",
        default=[],
        type=_fault,
        metavar="NAME=FRACTION",
        help="give a fault to this fraction of every group (repeatable): slow, dead, malformed, "
        "wrong_password, board_down, fan_failed, overheat, ignore_power_commands, "
        "board_degrading, fan_degrading (slow degradation, see --time-scale)",
    )
    add(
        "--time-scale",
        type=_time_scale,
        default=1.0,
        metavar="X",
        help="emulated seconds per real second for board_degrading/fan_degrading (1; 3600: an hour a second)",
    )
    add(
        "--reply",
        action="append",
        default=[],
        type=_reply,
        metavar="KEY=FILE",
        help="serve FILE's bytes, as they are, as every miner's reply to the API command or web path KEY "
        '(e.g. summary, get.miner.status, /cgi-bin/stats.cgi; "*": every reply) to test how clients '
        "take corrupt replies (repeatable)",
    )
    add("--ramp-s", type=_seconds, default=30.0, metavar="S", help="wake-up ramp to full hashrate (30)")
    add(
        "--jitter",
        type=argtypes.fraction,
        default=0.01,
        metavar="F",
        help="relative jitter of readings (0.01)",
    )
    add("--slow-s", type=_seconds, default=5.0, metavar="S", help="reply delay of slow miners (5)")
    add("--conf-delay-s", type=_seconds, default=0.0, metavar="S", help="delay of power command acks (0)")
    add("--reboot-s", type=_seconds, default=0.0, metavar="S", help="time offline after a reboot (0)")
    add(
        "--quirks",
        nargs="?",
        const="all",
        default="",
        metavar="LIST",
        help="emit real firmwares' protocol breakage on every miner that has it: all, or a comma list of "
        "brace, trailing_comma, inf, pool_stale, leading_comma, no_nul (Antminer); "
        "error_code_list, trailing_comma, psu_missing_comma, no_joined (Whatsminer)",
    )
    add("--processes", type=int, default=None, metavar="N", help="child processes (0: this one; auto)")
    add("--seed", type=int, default=0, help="picks which miners get the faults (0)")
    add("--list-models", action="store_true", help="print the models that can be emulated and exit")
    add(
        "--prices",
        nargs="?",
        const=f"127.0.0.1:{ercot_port()}",
        default="",
        metavar="HOST:PORT",
        help="also serve ERCOT real-time prices in ERCOT's own format (default 127.0.0.1:8799); "
        '[economics.tariff] kind = "ercot" with base_url = "http://HOST:PORT" reads them',
    )
    add("--price-low", type=float, default=25.0, metavar="USD", help="price per MWh outside spikes (25)")
    add("--price-high", type=float, default=180.0, metavar="USD", help="price per MWh in a spike (180)")
    add(
        "--price-period",
        type=_seconds,
        default=300.0,
        metavar="S",
        help="the price in progress alternates low/high this often (300; 0: never spikes)",
    )
    p.set_defaults(func=main)


def ercot_port() -> int:
    from fleetd.sim.ercot import DEFAULT_PORT

    return DEFAULT_PORT


def main(args: argparse.Namespace) -> int:
    from fleetd.sim.models import ALIASES, MODELS

    if args.list_models:
        for name, model in MODELS.items():
            spec = model.spec
            aliases = ", ".join(a for a, n in ALIASES.items() if n == name)
            also = f"\t(also: {aliases})" if aliases else ""
            print(f"{name}\t{spec.hashrate_ths:g} TH/s\t{spec.power_w:g} W{also}")
        return 0
    groups = build_groups(args)
    return run(groups, args.processes, sys.stdout, prices=_prices(args))


def _prices(args: argparse.Namespace) -> Any:
    """The ERCOT price emulator --prices asks for, or None."""
    if not args.prices:
        return None
    from fleetd.sim.ercot import ErcotEmulator, PriceScenario

    host, _, port = args.prices.rpartition(":")
    if not host or not port.isdigit() or not 0 < int(port) < 65536:
        raise CLIError(f"--prices {args.prices!r}: give HOST:PORT, e.g. 127.0.0.1:8799")
    scenario = PriceScenario(args.price_low, args.price_high, args.price_period)
    return ErcotEmulator(host, int(port), scenario=scenario)


def build_groups(args: argparse.Namespace) -> list:
    """The fleet groups an argument list describes (CLIError on inconsistent input)."""
    from fleetd.sim.fleet import Group, addresses, emulator_options, plan
    from fleetd.sim.models import MODELS, lookup

    models: list[str] = args.model
    if not models:
        raise CLIError('give at least one --model (e.g. --model "Antminer S19 Pro"); see --list-models')
    counts: list[int] = args.count or [1]
    if len(counts) == 1:
        counts = counts * len(models)
    if len(counts) != len(models):
        raise CLIError(f"{len(models)} --model but {len(counts)} --count: give one, or one per --model")
    if len(args.base) > len(models):
        raise CLIError(f"{len(args.base)} --base for {len(models)} --model")
    quirks = _quirks(args.quirks, frozenset().union(*(m.quirks() for m in MODELS.values())))
    faults = dict(args.fault)
    ports = {"api": args.api_port, "web": args.web_port, "v3": args.v3_port}
    groups = []
    base = DEFAULT_BASE
    for i, (name, count) in enumerate(zip(models, counts, strict=True)):
        try:
            model = lookup(name)
        except KeyError as exc:
            raise CLIError(str(exc.args[0])) from None
        options = {}
        if args.reboot_s and "reboot_s" in emulator_options(model.emulator_class()):
            options["reboot_s"] = args.reboot_s
        if i < len(args.base):
            base = args.base[i]
        try:
            hosts = addresses(base, count + 1)  # the miners, then where the next group starts
        except ipaddress.AddressValueError:
            raise CLIError(f"--base {base!r} is not an IPv4 address") from None
        except ValueError as exc:
            raise CLIError(str(exc)) from None
        if not hosts[0].startswith("127."):
            raise CLIError(f"--base {base} is not a loopback address (127.0.0.0/8)")
        if not hosts[count - 1].startswith("127."):
            raise CLIError(f"{count} miners from {base} run past the loopback block (127.0.0.0/8)")
        groups.append(
            Group(
                model.spec.name,
                count,
                hosts[0],
                ports={k: v for k, v in ports.items() if k in model.emulator_class().default_ports},
                faults=faults,
                quirks=quirks & model.quirks(),  # each vendor gets the quirks its firmware has
                replies=dict(args.reply),
                ramp_s=args.ramp_s,
                jitter=args.jitter,
                slow_s=args.slow_s,
                conf_delay_s=args.conf_delay_s,
                seed=args.seed,
                options=options,
                time_scale=args.time_scale,
            )
        )
        base = hosts[-1]
    try:
        plan(groups)  # validates faults, overlaps
    except ValueError as exc:
        raise CLIError(str(exc)) from None
    return groups


def run(groups: Sequence, processes: int | None, out: TextIO, *, prices: Any = None) -> int:
    from fleetd.sim.fleet import PER_PROCESS, BindError

    total = sum(g.count for g in groups)
    if processes is None:
        processes = 0 if total <= PER_PROCESS else math.ceil(total / PER_PROCESS)
    if processes < 0:
        raise CLIError("--processes must be 0 or more")
    raise_nofile()
    try:
        return asyncio.run(_serve(groups, processes, out, prices))
    except BindError as exc:
        raise CLIError(_bind_hint(exc, dict(groups[0].ports))) from None
    except (TimeoutError, RuntimeError) as exc:
        raise CLIError(str(exc), exit_code=1) from None


async def _serve(groups: Sequence, processes: int, out: TextIO, prices: Any = None) -> int:
    from fleetd.sim.fleet import Fleet, ProcessFleet

    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    for sig in (signal.SIGINT, signal.SIGTERM):
        loop.add_signal_handler(sig, stop.set)
    fleet = Fleet(groups) if processes == 0 else ProcessFleet(groups, processes=processes)
    async with fleet as miners, contextlib.AsyncExitStack() as extra:
        for line in describe(groups):
            print(line, file=out)
        if prices is not None:
            try:
                await extra.enter_async_context(prices)
            except OSError as exc:
                where = f"{prices.host}:{prices.port}"
                raise CLIError(f"cannot serve prices on {where}: {exc.strerror}") from None
            sc = prices.scenario
            print(
                f"serving ERCOT real-time prices for {prices.settlement_point} at {prices.base_url}: "
                f"${sc.low:g}/MWh, ${sc.high:g}/MWh spikes every other {sc.period_s:g} s",
                file=out,
            )
        where = {0: "in this process", 1: "in 1 child process"}.get(processes, f"in {processes} processes")
        print(f"serving {len(miners)} emulated miners {where}; Ctrl-C to stop", file=out, flush=True)
        while not stop.is_set():
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(stop.wait(), 1.0)
            if isinstance(fleet, ProcessFleet):
                dead = fleet.dead()
                if dead:
                    raise RuntimeError(f"emulator process {dead[0]} died; stopping")
    print("stopped", file=out, flush=True)
    return 0


def describe(groups: Sequence) -> list[str]:
    """One line per group: model, count, address range, ports, faults."""
    from fleetd.sim.fleet import addresses, plan

    lines = []
    for g in groups:
        hosts = addresses(g.base, g.count)
        span = hosts[0] if len(hosts) == 1 else f"{hosts[0]}-{hosts[-1]}" if hosts else "-"
        ports = " ".join(f"{k} {v}" for k, v in plan([g])[0].ports.items()) if hosts else ""
        extra = "".join(f" {k}={v:g}" for k, v in g.faults.items())
        if g.quirks:
            extra += " quirks=" + ",".join(sorted(g.quirks))
        lines.append(f"{g.model} x{g.count}: {span} ({ports}){extra}")
    return lines


def _bind_hint(exc: Exception, ports: dict[str, int]) -> str:
    text = str(exc)
    port = getattr(exc, "port", 0)
    if "need root" in text:
        option = "--api-port 14028" if port == ports.get("api") else "--web-port 8080"
        text += f"; run with {option}"
    return text


def _quirks(text: str, known: frozenset[str]) -> frozenset[str]:
    if not text:
        return frozenset()
    if text == "all":
        return known
    names = frozenset(q.strip() for q in text.split(",") if q.strip())
    unknown = names - known
    if unknown:
        raise CLIError(f"unknown quirk {sorted(unknown)[0]!r} (known: all, {', '.join(sorted(known))})")
    return names


def _reply(text: str) -> tuple[str, bytes]:
    key, sep, path = text.partition("=")
    if not sep or not key.strip() or not path:
        raise argparse.ArgumentTypeError(f"expected KEY=FILE, not {text!r}")
    try:
        return key.strip(), Path(path).read_bytes()
    except OSError as exc:
        raise argparse.ArgumentTypeError(f"cannot read {path}: {exc.strerror or exc}") from None


def _fault(text: str) -> tuple[str, float]:
    from fleetd.sim.fleet import FAULTS

    name, sep, value = text.partition("=")
    name = name.strip()
    if name not in FAULTS:
        raise argparse.ArgumentTypeError(f"unknown fault {name!r} (known: {', '.join(FAULTS)})")
    return name, argtypes.fraction(value) if sep else 1.0
