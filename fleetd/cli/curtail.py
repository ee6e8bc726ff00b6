"""`fleetd curtail status|pin|unpin|event|enforce`: see and steer curtailment through the daemon's API.

Writes (pin, unpin, event start/stop, enforce on/off) need the [api] token: --token-file or
$FLEETD_API_TOKEN. Exit status: 0 done, 1 the API refused or is unreachable, 2 bad input.
"""

from __future__ import annotations

import argparse
import json
import time
import urllib.parse
from typing import Any

from fleetd.cli import CLIError
from fleetd.cli.api_client import add_api_args, ago, call, duration, table, ts, when

_ACTUALS = ("running", "sleeping", "limited", "unknown", "unresponsive")


def register(subparsers: argparse._SubParsersAction) -> None:
    p = subparsers.add_parser(
        "curtail",
        help="curtailment state, pins, demand-response events and the enforce switch (via the API)",
        description="See and steer curtailment through the running daemon's HTTP API.",
        epilog="writes need the [api] token (--token-file or $FLEETD_API_TOKEN); exit status: 0 done, "
        "1 the API refused or is unreachable, 2 bad input",
    )
    sub = p.add_subparsers(dest="curtail_command", metavar="ACTION", required=True)

    s = sub.add_parser("status", help="fleet summary and per-miner target, actual state and reason")
    add_api_args(s)
    s.add_argument("miner", nargs="?", help="one miner's id: its status in full")
    s.add_argument("--site", action="append", default=[], help="only this site (repeatable)")
    s.add_argument("--model", action="append", default=[], help="only this model (repeatable)")
    s.add_argument("--state", action="append", default=[], choices=_ACTUALS, help="only this actual state")
    s.add_argument("--target", action="append", default=[], choices=("run", "sleep", "limit"))
    s.set_defaults(func=status)

    pin = sub.add_parser("pin", help="pin miners, sites or models to run, sleep, exclude or maintenance")
    add_api_args(pin, token=True)
    pin.add_argument("action", choices=("run", "sleep", "exclude", "maintenance"))
    pin.add_argument("--miner", action="append", default=[], metavar="ID", help="a miner id (repeatable)")
    pin.add_argument("--site", action="append", default=[], help="a site (repeatable)")
    pin.add_argument("--model", action="append", default=[], help="a model fnmatch pattern (repeatable)")
    pin.add_argument("--all", action="store_true", help="every miner")
    until = pin.add_mutually_exclusive_group()
    until.add_argument(
        "--until", type=when, metavar="TIME", help="expiry: ISO 8601 with offset, or unix time"
    )
    until.add_argument("--for", dest="for_s", type=duration, metavar="DURATION", help="expiry: e.g. 4h, 90m")
    pin.add_argument("--note", default="", help="why (shown in status and the event log)")
    pin.set_defaults(func=add_pin)

    unpin = sub.add_parser("unpin", help="remove a pin by its id (see `fleetd curtail status`)")
    add_api_args(unpin, token=True)
    unpin.add_argument("pin_id")
    unpin.set_defaults(func=remove_pin)

    ev = sub.add_parser("event", help="demand-response events: start (kW target, end), stop, list")
    evsub = ev.add_subparsers(dest="event_command", metavar="ACTION", required=True)
    start = evsub.add_parser("start", help="keep the load at or below a kW target until an end time")
    add_api_args(start, token=True)
    start.add_argument("--kw", type=float, required=True, help="the load target, kW")
    end = start.add_mutually_exclusive_group(required=True)
    end.add_argument("--until", type=when, metavar="TIME", help="end: ISO 8601 with offset, or unix time")
    end.add_argument("--for", dest="for_s", type=duration, metavar="DURATION", help="end: e.g. 2h, 30m")
    start.add_argument("--start", type=when, metavar="TIME", help="begin later (default: now)")
    start.add_argument("--site", action="append", default=[], help="only this site (repeatable)")
    start.set_defaults(func=start_event)
    stop = evsub.add_parser("stop", help="stop a demand-response event by its id")
    add_api_args(stop, token=True)
    stop.add_argument("event_id")
    stop.set_defaults(func=stop_event)
    ls = evsub.add_parser("list", help="demand-response events not yet ended")
    add_api_args(ls)
    ls.set_defaults(func=list_events)

    en = sub.add_parser("enforce", help="show or switch enforce (send commands) / dry run at runtime")
    add_api_args(en, token=True)
    en.add_argument(
        "switch",
        nargs="?",
        choices=("on", "off", "config"),
        help="on: enforce, off: dry run, config: as configured",
    )
    en.set_defaults(func=enforce)


def _print(args: argparse.Namespace, doc: Any, text: str) -> int:
    print(json.dumps(doc, indent=2) if args.json else text)
    return 0


def _pins_table(pins: list[dict[str, Any]]) -> str:
    rows = []
    for p in pins:
        scope = (
            "; ".join(f"{k} {','.join(p[k])}" for k in ("miners", "sites", "models") if p[k]) or "every miner"
        )
        rows.append(
            [p["id"], p["action"], scope, ts(p["until"]) if p["until"] else "until removed", p["note"]]
        )
    return table(rows, ["PIN", "ACTION", "SCOPE", "UNTIL", "NOTE"])


def _dr_table(events: list[dict[str, Any]]) -> str:
    rows = [
        [
            e["id"],
            f"{e['target_kw']:g} kW",
            ",".join(e["sites"]) or "fleet",
            ts(e["start"]),
            ts(e["end"]),
            "active" if e["active"] else "scheduled",
            e["source"],
        ]
        for e in events
    ]
    return table(rows, ["EVENT", "TARGET", "SCOPE", "START", "END", "STATE", "SOURCE"])


def _kw(v: float | None) -> str:
    return "-" if v is None else f"{v:,.1f} kW"


def status(args: argparse.Namespace) -> int:
    now = time.time()
    if args.miner:
        m = call(args, "GET", f"/api/curtailment/{urllib.parse.quote(args.miner, safe='')}")
        lines = [
            f"{m['id']}  {m['site'] or '-'}  {m['model'] or '-'}",
            f"target   {m['target']} since {ts(m['since'])} ({m['reason']['rule']}: {m['reason']['text']})",
            f"actual   {m['actual']} (verified {ago(m['verified_at'], now)})",
        ]
        if not m["controllable"]:
            lines.append("         not controllable: its driver cannot sleep or limit power")
        if m["waiting"] or m["in_flight"]:
            lines.append(f"pending  {'in flight' if m['in_flight'] else 'waiting: ' + m['waiting']}")
        if m["failures"] or m["error"]:
            lines.append(f"failures {m['failures']}: {m['error'] or '-'}")
        return _print(args, m, "\n".join(lines))
    doc = call(
        args,
        "GET",
        "/api/curtailment",
        params={"site": args.site, "model": args.model, "state": args.state, "target": args.target},
    )
    if not doc["configured"]:
        return _print(args, doc, "curtailment is not configured (no [curtailment] section)")
    mode = "ENFORCE (commands are sent)" if doc["enforce"] else "DRY RUN (decides and logs, sends nothing)"
    if doc["enforce_override"] is not None:
        mode += f"; runtime switch, config says {'enforce' if doc['enforce_configured'] else 'dry run'}"
    c = doc["commands"]
    lines = [
        f"mode       {mode}",
        f"decided    {ts(doc['decided_at'])}"
        + (f"  FAIL-SAFE: {doc['failsafe']}" if doc["failsafe"] else ""),
        f"rules      {', '.join(doc['active_rules']) or 'none in force'}",
        f"load       {_kw(doc['load_kw'])} (target {_kw(doc['target_kw'])}, shed {_kw(doc['shed_kw'])})",
        "targets    " + ", ".join(f"{k} {v}" for k, v in doc["by_target"].items()),
        "actual     "
        + ", ".join(f"{k} {v}" for k, v in doc["by_actual"].items() if v)
        + (f"; {doc['not_controllable']} not controllable" if doc["not_controllable"] else ""),
        "commands   "
        + ", ".join(
            f"{k} {n} sent/{c['failed'].get(k, 0)} failed/{c['retried'].get(k, 0)} retried"
            for k, n in sorted(c["sent"].items())
        )
        if c["sent"]
        else "commands   none sent",
    ]
    if doc["pins"]:
        lines += ["", _pins_table(doc["pins"])]
    if doc["dr_events"]:
        lines += ["", _dr_table(doc["dr_events"])]
    rows = [
        [
            m["id"],
            m["site"] or "-",
            m["model"] or "-",
            m["target"],
            m["actual"],
            ago(m["since"], now),
            m["waiting"]
            or (m["error"] and f"error: {m['error']}")
            or ("not controllable" if not m["controllable"] else ""),
            m["reason"]["text"],
        ]
        for m in doc["miners"]
    ]
    lines += ["", table(rows, ["MINER", "SITE", "MODEL", "TARGET", "ACTUAL", "SINCE", "PENDING", "REASON"])]
    return _print(args, doc, "\n".join(lines))


def add_pin(args: argparse.Namespace) -> int:
    if not (args.miner or args.site or args.model or args.all):
        raise CLIError("say which miners: --miner, --site, --model (repeatable) or --all")
    if args.all and (args.miner or args.site or args.model):
        raise CLIError("--all cannot be combined with --miner, --site or --model")
    body: dict[str, Any] = {
        "action": args.action,
        "miners": args.miner,
        "sites": args.site,
        "models": args.model,
    }
    if args.all:
        body = {"action": args.action, "all": True}
    if args.until or args.for_s:
        body["until"] = args.until or time.time() + args.for_s
    if args.note:
        body["note"] = args.note
    pin = call(args, "POST", "/api/curtailment/pins", body=body, write=True)
    return _print(args, pin, f"pinned: {pin['id']}\n{_pins_table([pin])}")


def remove_pin(args: argparse.Namespace) -> int:
    pin = call(
        args, "DELETE", f"/api/curtailment/pins/{urllib.parse.quote(args.pin_id, safe='')}", write=True
    )
    return _print(args, pin, f"unpinned: {pin['id']} ({pin['action']})")


def start_event(args: argparse.Namespace) -> int:
    if not args.kw >= 0 or args.kw == float("inf"):
        raise CLIError(f"--kw must be a number of kW, 0 or more, got {args.kw}")
    body: dict[str, Any] = {"target_kw": args.kw, "sites": args.site}
    if args.start:
        body["start"] = args.start
    if args.until:
        body["end"] = args.until
    else:
        body["duration_s"] = args.for_s
    ev = call(args, "POST", "/api/curtailment/dr", body=body, write=True)
    return _print(args, ev, f"DR event started: {ev['id']}\n{_dr_table([ev])}")


def stop_event(args: argparse.Namespace) -> int:
    ev = call(args, "DELETE", f"/api/curtailment/dr/{urllib.parse.quote(args.event_id, safe='')}", write=True)
    return _print(args, ev, f"DR event stopped: {ev['id']} ({ev['target_kw']:g} kW)")


def list_events(args: argparse.Namespace) -> int:
    doc = call(args, "GET", "/api/curtailment/dr")
    return _print(args, doc, _dr_table(doc["dr_events"]) if doc["dr_events"] else "no demand-response events")


def enforce(args: argparse.Namespace) -> int:
    if args.switch is None:
        doc = call(args, "GET", "/api/curtailment/enforce")
    elif args.switch == "config":
        doc = call(args, "DELETE", "/api/curtailment/enforce", write=True)
    else:
        doc = call(
            args, "POST", "/api/curtailment/enforce", body={"enforce": args.switch == "on"}, write=True
        )
    text = (
        "enforce: commands are sent" if doc["enforce"] else "dry run: decisions are logged, nothing is sent"
    )
    if doc["enforce_override"] is None:
        text += " (as configured)"
    else:
        text += f" (runtime switch; config says {'enforce' if doc['enforce_configured'] else 'dry run'})"
    return _print(args, doc, text)
