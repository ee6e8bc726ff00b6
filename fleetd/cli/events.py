"""`fleetd events`: the daemon's recent events (decisions, commands, controls, miners) from its API."""

from __future__ import annotations

import argparse
import json

from fleetd.cli.api_client import add_api_args, call, table, ts


def register(subparsers: argparse._SubParsersAction) -> None:
    p = subparsers.add_parser(
        "events",
        help="list the daemon's recent events (via the API)",
        description="The running daemon's recent events, oldest first: curtailment decisions and commands, "
        "pins, DR events, miners going down or up, configuration reloads.",
        epilog="exit status: 0 listed, 1 the API refused or is unreachable, 2 bad input",
    )
    add_api_args(p)
    p.add_argument("--kind", action="append", default=[], help="only this kind, e.g. miner_down (repeatable)")
    p.add_argument("--miner", action="append", default=[], metavar="ID", help="only this miner (repeatable)")
    p.add_argument(
        "--since", metavar="TIME", help="only after this time (ISO 8601 with offset, or unix time)"
    )
    p.add_argument("--limit", default="100", metavar="N", help="the newest N (1-1000, default 100)")
    p.set_defaults(func=main)


def main(args: argparse.Namespace) -> int:
    doc = call(
        args,
        "GET",
        "/api/events",
        params={"kind": args.kind, "miner": args.miner, "since": args.since, "limit": args.limit},
    )
    if args.json:
        print(json.dumps(doc, indent=2))
        return 0
    if not doc["events"]:
        print("no events")
        return 0
    rows = [[ts(e["at"]), e["level"], e["kind"], e["miner_id"] or "-", e["message"]] for e in doc["events"]]
    print(table(rows, ["TIME", "LEVEL", "KIND", "MINER", "MESSAGE"]))
    return 0
