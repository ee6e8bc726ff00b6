"""`fleetd probe HOST`: identify one miner and print one normalized reading."""

from __future__ import annotations

import argparse
import json
from dataclasses import replace

from fleetd.cli.device_args import add_device_args, connect, endpoint, run
from fleetd.discovery import merge_identity
from fleetd.drivers import Endpoint
from fleetd.model import Reading, Snapshot


def register(subparsers: argparse._SubParsersAction) -> None:
    p = subparsers.add_parser(
        "probe",
        help="read one miner and print its normalized identity and snapshot",
        description="Identify the miner at HOST and print one normalized reading (identity + snapshot).",
    )
    add_device_args(p)
    p.add_argument("--json", action="store_true", help="print the reading as one JSON object")
    p.set_defaults(func=main)


def main(args: argparse.Namespace) -> int:
    ep = endpoint(args)
    reading = run(_read(args, ep), host=ep.host)
    if args.json:
        print(json.dumps(reading.to_dict(), default=str))
    else:
        print(format_reading(reading))
    return 0


async def _read(args: argparse.Namespace, ep: Endpoint) -> Reading:
    driver, detected = await connect(args, ep)
    try:
        # identity() first: some drivers learn MAC/serial/hostname there (e.g. a web page) and keep them.
        identity = await driver.identity()
        reading = await driver.read()
    finally:
        await driver.close()
    ident = merge_identity(reading.identity, identity)
    if detected is not None:
        ident = merge_identity(ident, detected)
    return Reading(
        replace(ident, host=ident.host or ep.host, driver=ident.driver or driver.name), reading.snapshot
    )


def _num(value: float | None, fmt: str = ".2f", unit: str = "") -> str:
    return "-" if value is None else f"{value:{fmt}}{unit}"


def _uptime(seconds: int | None) -> str:
    if seconds is None:
        return "-"
    days, rest = divmod(int(seconds), 86400)
    hours, rest = divmod(rest, 3600)
    minutes, secs = divmod(rest, 60)
    return (f"{days}d " if days else "") + f"{hours:02d}:{minutes:02d}:{secs:02d}"


def format_reading(reading: Reading) -> str:
    """A readable multi-line summary of one reading."""
    i, s = reading.identity, reading.snapshot
    lines = [f"{i.host}  {i.model or '?'}  ({i.vendor}, driver {i.driver or '?'}, api {i.api or '?'})"]

    def row(label: str, value: str) -> None:
        lines.append(f"  {label:<10} {value}")

    row("firmware", i.firmware or "-")
    if i.api_version:
        row("api ver", i.api_version)
    row("serial", i.serial or "-")
    row("mac", i.mac or "-")
    if i.hostname:
        row("hostname", i.hostname)
    row("state", f"{s.mode}, {'mining' if s.is_mining else 'not mining'}")
    row(
        "hashrate",
        f"{_num(s.hashrate_ths)} TH/s now, {_num(s.hashrate_avg_ths)} avg, "
        f"{_num(s.expected_hashrate_ths)} expected",
    )
    row("power", f"{_num(s.power_w, '.0f', ' W')} (limit {_num(s.power_limit_w, '.0f', ' W')})")
    row("temp", f"{_num(s.temp_c, '.1f', ' C')} hottest, {_num(s.env_temp_c, '.1f', ' C')} ambient")
    for b in s.hashboards:
        chips = f"{b.chips if b.chips is not None else '?'}/{b.expected_chips or '?'} chips"
        state = "ok" if b.ok else f"FAULT {b.status}".rstrip()
        row(
            f"board {b.index}",
            f"{_num(b.hashrate_ths)} TH/s, {chips}, chip {_num(b.chip_temp_c, '.1f')} C, "
            f"board {_num(b.board_temp_c, '.1f')} C, {state}",
        )
    if s.fans:
        row("fans", " ".join(_num(f.rpm, "d") for f in s.fans) + " rpm")
    for p in s.pools:
        active = " (active)" if p.active else ""
        row(
            f"pool {p.index}",
            f"{p.url} {p.user or '-'} {p.status or '?'}{active}, "
            f"accepted {p.accepted}, rejected {p.rejected}",
        )
    for e in s.errors:
        row("error", f"[{e.component}] {e.code}: {e.message}")
    row("uptime", _uptime(s.uptime_s))
    return "\n".join(lines)


def _rate(value: float | None) -> str:
    """A hashrate in TH/s; a small non-zero one (a miner ramping up) keeps its significant digits."""
    if value is not None and 0 < value < 0.01:
        return f"{value:.2g}"
    return _num(value)


def snapshot_line(s: Snapshot) -> str:
    """One-line state summary used after power commands."""
    rate = f"{_rate(s.hashrate_ths)} TH/s"
    expected = s.expected_hashrate_ths
    if s.is_mining and s.hashrate_ths is not None and expected and s.hashrate_ths < 0.9 * expected:
        rate += f" (ramping up to {expected:.0f})"
    power = f", {s.power_w:.0f} W" if s.power_w is not None else ""
    return f"mode {s.mode}, {'mining' if s.is_mining else 'not mining'}, {rate}{power}"
