"""`fleetd demo`: an emulated mixed fleet on loopback, the daemon polling it, the API, a live view."""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import dataclasses
import ipaddress
import logging
import signal
import sys
import tempfile
import time
from typing import Any, TextIO

DEFAULT_BASE = "127.20.0.1"
DEFAULT_LISTEN = "127.0.0.1:8787"
POLL_INTERVAL_S = 5.0
REFRESH_S = 2.0
SITES = ("north", "south")
# Demo prices: a static hashprice near the late-2025 market (no network needed) and a flat tariff.
HASHPRICE_PER_PH_DAY = 35.0
PRICE_PER_KWH = 0.06
# A few emulated faults so the view has something to show: a hashboard down in the first model's
# group, a dead miner in the last one's (about one miner each at the default size).
FIRST_FAULTS = {"board_down": 0.1}
LAST_FAULTS = {"dead": 0.1}


def register(sub: Any) -> None:
    p = sub.add_parser(
        "demo",
        help="run an emulated fleet and the daemon against it, with a live view",
        description=(
            "Start an emulated mixed fleet on loopback (non-privileged ports, no root needed), run the "
            "daemon against it with SQLite in a temporary directory, serve the HTTP API, and show a "
            "live view of the fleet, with each model's profit per day at a static demo hashprice "
            f"(${HASHPRICE_PER_PH_DAY:g}/PH/day) and a flat ${PRICE_PER_KWH:g}/kWh tariff, until Ctrl-C. "
            "Nothing to configure."
        ),
    )
    p.add_argument("--miners", type=int, default=36, metavar="N", help="emulated miners (default 36)")
    p.add_argument(
        "--duration",
        type=float,
        default=None,
        metavar="S",
        help="exit after S seconds (default: run until Ctrl-C)",
    )
    p.add_argument(
        "--listen",
        default=DEFAULT_LISTEN,
        metavar="HOST:PORT",
        help=f"where the HTTP API listens (default {DEFAULT_LISTEN}; port 0 picks a free one)",
    )
    p.add_argument(
        "--base",
        default=DEFAULT_BASE,
        metavar="IP",
        help=f"first loopback address of the fleet ({DEFAULT_BASE})",
    )
    p.set_defaults(func=run)


def run(args: argparse.Namespace) -> int:
    from fleetd.api import parse_listen
    from fleetd.bench import fleet_groups
    from fleetd.cli import CLIError
    from fleetd.sim.fleet import PER_PROCESS, BindError, ProcessFleet

    if not 1 <= args.miners <= 20000:
        raise CLIError("--miners must be within 1..20000")
    if args.duration is not None and args.duration <= 0:
        raise CLIError("--duration must be positive")
    try:
        parse_listen(args.listen)
        first = ipaddress.IPv4Address(args.base)
    except ValueError as exc:
        raise CLIError(str(exc)) from None
    if not first.is_loopback or int(first) + args.miners - 1 > int(ipaddress.IPv4Address("127.255.255.254")):
        raise CLIError(f"{args.miners} miners from {args.base} do not fit in the loopback range 127.0.0.0/8")

    out = sys.stdout
    live = out.isatty()
    groups = fleet_groups(args.miners, args.base)
    groups[0] = dataclasses.replace(groups[0], faults=FIRST_FAULTS)
    groups[-1] = dataclasses.replace(groups[-1], faults={**groups[-1].faults, **LAST_FAULTS})
    models = ", ".join(f"{g.count} {g.model}" for g in groups)
    print(f"fleetd demo: starting {args.miners} emulated miners ({models}) ...", file=out, flush=True)
    fleet = ProcessFleet(groups, processes=max(1, -(-args.miners // PER_PROCESS)))
    try:
        miners = fleet.start()
    except BindError as exc:
        raise CLIError(str(exc)) from None
    except (TimeoutError, RuntimeError) as exc:
        raise CLIError(str(exc), exit_code=1) from None
    try:
        from fleetd.sim.models import lookup

        nominal = {m.host: lookup(m.model).spec.power_w for m in miners}
        from fleetd import runtime

        runtime.tune_gc()
        with runtime.runner()[1] as r:
            return r.run(_serve(args, nominal, models, out, live, deliberate_faults(fleet.plans)))
    finally:
        fleet.stop()


def deliberate_faults(plans: Any) -> str:
    """The intro line naming the miners faulty on purpose (so a dead one is not taken for a bug)."""
    dead = [p.host for p in plans if p.faults.dead]
    boards = [p.host for p in plans if p.faults.board_down]
    parts = []
    if dead:
        parts.append(f"dead, never answers, shown as down: {_hosts(dead)}")
    if boards:
        parts.append(f"a hashboard down: {_hosts(boards)}")
    return f"  deliberate faults, to show what they look like: {'; '.join(parts)}" if parts else ""


def _hosts(hosts: list[str], shown: int = 4) -> str:
    more = f" (+{len(hosts) - shown} more)" if len(hosts) > shown else ""
    return ", ".join(hosts[:shown]) + more


def _config(hosts: list[str], nominal: dict[str, float]) -> Any:
    """What an operator would configure: static miners with sites and nominal power, and prices."""
    from fleetd.bench import WEB_PORT
    from fleetd.config import parse_config

    return parse_config(
        {
            "polling": {
                "interval_s": POLL_INTERVAL_S,
                "jitter_s": 0.5,
                "timeout_s": 2.0,
                "connect_timeout_s": 1.0,
            },
            "sites": [{"name": s} for s in SITES],
            "miners": [
                {
                    "host": h,
                    "web_port": WEB_PORT,
                    "site": SITES[i * len(SITES) // len(hosts)],
                    "nominal_power_w": nominal[h],
                }
                for i, h in enumerate(hosts)
            ],
            "economics": {
                "hashprice": [{"kind": "static", "per_ph_day": HASHPRICE_PER_PH_DAY}],
                "tariff": {"kind": "flat", "price_per_kwh": PRICE_PER_KWH},
            },
        },
        "demo",
    )


def _quiet_logs(live: bool) -> None:
    """In the live view the recent events are shown on screen; log lines would tear it."""
    logger = logging.getLogger("fleetd")
    if live:
        logger.addHandler(logging.NullHandler())
        logger.propagate = False
    else:
        logging.basicConfig(level=logging.WARNING, format="%(levelname)s %(name)s: %(message)s")


async def _serve(
    args: argparse.Namespace,
    nominal: dict[str, float],
    models: str,
    out: TextIO,
    live: bool,
    faults_line: str = "",
) -> int:
    from fleetd.api import ApiServer
    from fleetd.api.app import daemon_power_of
    from fleetd.api.views import fleet_totals, prices
    from fleetd.cli import CLIError
    from fleetd.cli.demo_view import CLEAR, plain_line, render
    from fleetd.daemon.core import Daemon

    _quiet_logs(live)
    hosts = list(nominal)
    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    for sig in (signal.SIGINT, signal.SIGTERM):
        loop.add_signal_handler(sig, stop.set)
    with tempfile.TemporaryDirectory(prefix="fleetd-demo-") as tmp:
        daemon = Daemon(_config(hosts, nominal), state_dir=tmp)
        api = ApiServer.for_daemon(daemon, args.listen)
        power_of = daemon_power_of(daemon)
        try:
            await api.start()
        except OSError as exc:
            raise CLIError(f"{exc.strerror}; pass --listen HOST:PORT with a free port") from None
        try:
            await daemon.start()
            span = f"{hosts[0]}-{hosts[-1]}" if len(hosts) > 1 else hosts[0]
            intro = [
                f"fleetd demo: {len(hosts)} emulated miners ({models}) on {span}",
                f"  (API ports 4028 and 4433, web 8080: no root needed), polled every {POLL_INTERVAL_S:g} s",
                f"  prices: static hashprice ${HASHPRICE_PER_PH_DAY:g}/PH/day (a demo figure, not the live "
                f"market), flat tariff ${PRICE_PER_KWH:g}/kWh",
                f"  state (SQLite): {tmp}",
                f"  API:     {api.url}/api/fleet   {api.url}/api/miners   {api.url}/api/prices",
                f"  OpenAPI: {api.url}/api/openapi.json   health: {api.url}/healthz",
            ]
            if faults_line:
                intro.append(faults_line)
            print("\n".join(intro), file=out, flush=True)
            deadline = None if args.duration is None else time.monotonic() + args.duration
            header = "\n".join([*intro, "", "  Ctrl-C to stop."])
            while True:
                totals = fleet_totals(daemon.state, power_of)
                if live:
                    now = time.time()
                    shown = render(totals, header=header, now=now, prices=prices(daemon.economics, now))
                    out.write(CLEAR + shown + _events(daemon))
                else:
                    out.write(plain_line(totals) + "\n")
                out.flush()
                wait = REFRESH_S if deadline is None else min(REFRESH_S, deadline - time.monotonic())
                if wait <= 0 or stop.is_set():
                    break
                with contextlib.suppress(TimeoutError):
                    await asyncio.wait_for(stop.wait(), wait)
        finally:
            print("fleetd demo: stopping ...", file=out, flush=True)
            await api.stop()
            await daemon.stop()
    return 0


def _events(daemon: Any, n: int = 6) -> str:
    # Driver detection is one event per miner at start-up: it would crowd out the ones worth seeing.
    recent = [ev for ev in daemon.events if ev.kind != "driver_detected"][-n:]
    if not recent:
        return ""
    lines = ["", "  Recent events:"]
    for ev in recent:
        stamp = time.strftime("%H:%M:%S", time.localtime(ev.at))
        lines.append(f"  {stamp} {ev.message}"[:160])
    return "\n".join(lines) + "\n"
