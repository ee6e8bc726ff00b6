"""`fleetd scan TARGETS...`: find and identify miners on CIDRs, ranges and host lists."""

from __future__ import annotations

import argparse
import asyncio
import json
import resource
import sys
import time
from dataclasses import asdict
from typing import TextIO

from fleetd.cli import CLIError
from fleetd.cli.argtypes import count
from fleetd.cli.device_args import add_connection_args, credentials, stderr_is_tty, timeout_s
from fleetd.discovery import (
    MAX_ADDRESSES,
    Found,
    ScanStats,
    TargetError,
    Unidentified,
    ip_sort_key,
    max_concurrency,
    parse_targets,
    scan,
)
from fleetd.runtime import raise_nofile

DEFAULT_CONCURRENCY = 256
COLUMNS = ("host", "vendor", "model", "firmware", "api", "hashrate", "mac")
# Hosts named in the summary line's "answered but were not identified" list; --json lists them all.
NAMED_UNIDENTIFIED = 5


def register(subparsers: argparse._SubParsersAction) -> None:
    p = subparsers.add_parser(
        "scan",
        help="find and identify miners on networks, ranges and host lists",
        description=(
            "Probe every address in TARGETS and identify the miners that answer. TARGETS: CIDR "
            "(10.0.0.0/24), range (10.0.0.1-10.0.0.50 or 10.0.0.1-50), host, comma/space lists, "
            "@FILE (one per line); append :PORT to override the API port."
        ),
        epilog="exit status: 0 one or more miners found, 1 none found, 2 bad input",
    )
    p.add_argument("targets", nargs="+", metavar="TARGET")
    p.add_argument(
        "--json",
        action="store_true",
        help='one JSON object per miner per line; hosts that answered unidentified with "identified": false',
    )
    p.add_argument(
        "--concurrency",
        type=count,
        default=DEFAULT_CONCURRENCY,
        metavar="N",
        help=f"hosts probed at once ({DEFAULT_CONCURRENCY}; capped by the open-files limit)",
    )
    p.add_argument("--timeout", type=timeout_s, default=3.0, metavar="S", help="per-host timeout (3 s)")
    add_connection_args(p)
    p.add_argument("--no-hashrate", action="store_true", help="identify only; skip the telemetry read")
    p.add_argument(
        "--pyasic-fallback",
        action="store_true",
        help="let pyasic identify what no native driver claims (needs the extra fleetd[pyasic])",
    )
    p.add_argument(
        "--force", action="store_true", help=f"allow scans of more than {MAX_ADDRESSES:,} addresses"
    )
    p.set_defaults(func=main)


def main(args: argparse.Namespace) -> int:
    try:
        targets = parse_targets(args.targets, force=args.force)
    except TargetError as exc:
        raise CLIError(str(exc)) from None
    if args.pyasic_fallback:
        from fleetd.drivers import use_fallbacks
        from fleetd.drivers.pyasic import pyasic_missing

        if why := pyasic_missing():
            raise CLIError(f"--pyasic-fallback: {why}")
        use_fallbacks(frozenset({"pyasic"}))
    concurrency = _fit_concurrency(args.concurrency)
    progress = Progress(len(targets)) if stderr_is_tty() else None
    # On a terminal each miner is shown as soon as it is found; into a pipe, sorted at the end.
    live = LiveRows(args.json, args.api_port, progress) if stdout_is_tty() else None
    started = time.monotonic()
    try:
        found, stats = asyncio.run(
            scan(
                targets,
                api_port=args.api_port,
                web_port=args.web_port,
                v3_port=args.v3_port,
                timeout_s=args.timeout,
                concurrency=concurrency,
                credentials=credentials(args),
                read_hashrate=not args.no_hashrate,
                on_progress=progress.update if progress else None,
                on_found=live.add if live else None,
            )
        )
    finally:
        if progress:
            progress.close()
    elapsed = time.monotonic() - started
    notes = unidentified_note(stats.unidentified) + (
        f"; {stats.errors} hosts failed unexpectedly (FLEETD_DEBUG=1 fleetd probe HOST shows why)"
        if stats.errors
        else ""
    )
    if args.json:
        # Found miners were shown as they came on a terminal; the rest, in address order.
        rows = stats.unidentified if live is not None else sorted([*found, *stats.unidentified], key=_order)
        for row in rows:
            print(json.dumps(json_row(row), default=str))
    if not found:
        hint = notes or "; check the targets, --api-port, and that the miners' API is enabled"
        raise CLIError(f"no miners found in {stats.addresses} addresses ({elapsed:.1f} s){hint}", 1)
    if live is None and not args.json:
        print(format_table(found, args.api_port))
    summary = f"found {len(found)} miners in {stats.addresses} addresses ({elapsed:.1f} s){notes}"
    print(summary, file=sys.stderr if args.json else sys.stdout)
    return 0


def _fit_concurrency(wanted: int) -> int:
    """Raise the soft open-files limit as far as needed and allowed; cap concurrency to what fits."""
    need = wanted * 4 + 64
    soft = raise_nofile(need)
    if soft == resource.RLIM_INFINITY:
        return wanted
    fits = max_concurrency(soft)
    if wanted > fits:
        print(
            f"fleetd scan: --concurrency {wanted} needs ~{need} open files (limit {soft}); using {fits}",
            file=sys.stderr,
        )
        return fits
    return wanted


def stdout_is_tty() -> bool:
    try:
        return sys.stdout.isatty()
    except (AttributeError, ValueError):
        return False


class LiveRows:
    """Prints each found miner at once (a JSON line, or a table row in fixed-width columns)."""

    WIDTHS = (15, 9, 18, 28, 8, 12, 17)

    def __init__(self, as_json: bool, api_port: int, progress: Progress | None, stream: TextIO | None = None):
        self.as_json = as_json
        self.api_port = api_port
        self.progress = progress
        self.stream = stream or sys.stdout
        self.header = False

    def add(self, f: Found) -> None:
        if self.progress is not None:
            self.progress.close()  # the bar is redrawn under the new row at the next update
        if self.as_json:
            self.stream.write(json.dumps(json_row(f), default=str) + "\n")
        else:
            if not self.header:
                self.stream.write(self._line(COLUMNS) + "\n")
                self.header = True
            self.stream.write(self._line(table_row(f, self.api_port)) + "\n")
        self.stream.flush()

    def _line(self, cells: tuple[str, ...]) -> str:
        return "  ".join(c.ljust(w) for c, w in zip(cells, self.WIDTHS, strict=True)).rstrip()


def miner_dict(f: Found) -> dict[str, object]:
    """The JSON form of one found miner: the identity's fields plus ports and hashrate."""
    out: dict[str, object] = asdict(f.identity)
    out["api_port"] = f.api_port
    out["web_port"] = f.web_port
    out["hashrate_ths"] = f.hashrate_ths
    out["identified"] = True
    return out


def json_row(row: Found | Unidentified) -> dict[str, object]:
    """One --json line: a found miner, or a host that answered but was not identified (and why)."""
    if isinstance(row, Found):
        return miner_dict(row)
    return {"host": row.host, "api_port": row.api_port, "identified": False, "error": row.error}


def unidentified_note(hosts: list[Unidentified]) -> str:
    """The summary line's part on hosts that answered unidentified ("" when there are none)."""
    if not hosts:
        return ""
    names = ", ".join(u.host for u in hosts[:NAMED_UNIDENTIFIED])
    more = f", ... (+{len(hosts) - NAMED_UNIDENTIFIED} more)" if len(hosts) > NAMED_UNIDENTIFIED else ""
    verb = "was" if len(hosts) == 1 else "were"
    return f"; {len(hosts)} answered but {verb} not identified: {names}{more}"


def _order(row: Found | Unidentified) -> tuple[tuple[int, int, str], int]:
    host = row.identity.host if isinstance(row, Found) else row.host
    return ip_sort_key(host), row.api_port


def table_row(f: Found, api_port: int) -> tuple[str, ...]:
    """One miner's cells under COLUMNS; its API port shows only where a target overrode `api_port`."""
    i = f.identity
    rate = "-" if f.hashrate_ths is None else f"{f.hashrate_ths:.2f} TH/s"
    host = i.host if f.api_port == api_port else f"{i.host}:{f.api_port}"
    return (host, i.vendor, i.model, i.firmware, i.api, rate, i.mac or "-")


def format_table(found: list[Found], api_port: int = 4028) -> str:
    """Aligned columns; a host's API port is shown only where a target overrode `api_port`."""
    rows = [COLUMNS, *(table_row(f, api_port) for f in found)]
    widths = [max(len(str(r[c])) for r in rows) for c in range(len(COLUMNS))]
    return "\n".join(
        "  ".join(str(cell).ljust(w) for cell, w in zip(r, widths, strict=True)).rstrip() for r in rows
    )


class Progress:
    """A one-line progress bar on a terminal's stderr, redrawn at most ten times a second."""

    def __init__(self, total: int, stream: TextIO | None = None, width: int = 30) -> None:
        self.total = max(1, total)
        self.stream = stream or sys.stderr
        self.width = width
        self.started = time.monotonic()
        self.last = 0.0

    def update(self, stats: ScanStats) -> None:
        now = time.monotonic()
        if now - self.last < 0.1 and stats.done < stats.addresses:
            return
        self.last = now
        frac = stats.done / self.total
        bar = "#" * int(frac * self.width)
        self.stream.write(
            f"\r[{bar:<{self.width}}] {stats.done}/{stats.addresses} addresses, "
            f"{stats.found} miners, {now - self.started:.0f} s"
        )
        self.stream.flush()

    def close(self) -> None:
        self.stream.write("\r\x1b[2K")
        self.stream.flush()
