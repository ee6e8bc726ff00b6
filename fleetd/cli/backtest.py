"""`fleetd backtest`: replay a price history through the curtailment rules over a simulated fleet."""

from __future__ import annotations

import argparse
import json
import math
import sys
from typing import Any

from fleetd.cli import CLIError
from fleetd.cli.profit import add_fee_args, apply_config, load_catalog

EXAMPLE = "config/backtest-prices.csv"


def positive(text: str) -> float:
    try:
        v = float(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"not a number: {text!r}") from None
    if not (math.isfinite(v) and v > 0):
        raise argparse.ArgumentTypeError(f"must be a positive number: {text!r}")
    return v


def price(text: str) -> float:
    try:
        v = float(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"not a number: {text!r}") from None
    if not abs(v) <= 100_000:
        raise argparse.ArgumentTypeError(f"must be within +-100,000 $/MWh: {text!r}")
    return v


def register(sub: Any) -> None:
    p = sub.add_parser(
        "backtest",
        help="replay a price history through the curtailment rules",
        description=(
            "Replay an electricity price history (an ERCOT settlement point price CSV or zip as ERCOT "
            "publishes it, real-time or day-ahead, or a plain timestamp,price_usd_per_mwh CSV) over the "
            "configured fleet or --fleet, with the [curtailment] rules and the same policy code as "
            "`fleetd run`: uptime, energy, cost, revenue and profit against always-on."
        ),
        epilog=f"example: fleetd backtest --prices {EXAMPLE} --fleet 'Antminer S19 Pro=200' --strike 90",
    )
    p.add_argument("--prices", required=True, metavar="FILE", help="price history (CSV, or ERCOT's zip)")
    p.add_argument("--settlement-point", metavar="NAME", help="ERCOT settlement point, e.g. HB_HOUSTON")
    p.add_argument(
        "--fleet",
        metavar="SPEC",
        help='catalog models and counts, e.g. "Antminer S19 Pro=200,Whatsminer M50S=100" '
        "(default: the --config [[miners]] that carry a model)",
    )
    p.add_argument(
        "--strike",
        type=price,
        metavar="USD_PER_MWH",
        help="add a price strike rule: sleep above this all-in price, resume below it",
    )
    p.add_argument("--hashprice-usd-per-ph-day", type=positive, help="gross hashprice (default: [economics])")
    p.add_argument(
        "--decide-every",
        type=positive,
        metavar="S",
        help="seconds between policy passes (default: once per price interval; the price changes no faster)",
    )
    add_fee_args(p)
    p.add_argument("--json", action="store_true", help="print one JSON object")
    p.add_argument(
        "--plot", metavar="FILE", help="write price, load and curtailment over time (.svg or .png)"
    )
    p.set_defaults(func=run)


def parse_fleet_spec(spec: str) -> list[tuple[str, int]]:
    """'Model A=200,Model B=100' -> [(model, count)]; a bare model counts 1."""
    out = []
    for part in spec.split(","):
        if not part.strip():
            continue
        name, sep, count = part.rpartition("=")
        if not sep:
            name, count = part, "1"
        try:
            n = int(count.strip())
        except ValueError:
            raise CLIError(
                f"--fleet: count {count.strip()!r} of {name.strip()!r} is not a whole number"
            ) from None
        if n <= 0 or not name.strip():
            raise CLIError(f"--fleet: {part.strip()!r} needs a model and a count > 0")
        out.append((name.strip(), n))
    if not out:
        raise CLIError("--fleet is empty")
    return out


def build_fleet(args: argparse.Namespace, data: dict[str, Any]) -> list[Any]:
    from fleetd.backtest.replay import FleetModel
    from fleetd.cli.whatif import fleet_from_file, group
    from fleetd.economics.catalog import SLEEP

    catalog = load_catalog(args.catalog)
    if args.fleet:
        entries = [{"model": m, "count": n} for m, n in parse_fleet_spec(args.fleet)]
        groups = group("--fleet", "fleet", entries, catalog)
    elif args.config and data.get("miners"):
        groups = fleet_from_file(args.config, catalog)
    else:
        raise CLIError("no fleet: give --fleet 'MODEL=COUNT,...' or a --config whose [[miners]] carry model")
    fleet = []
    for name, ths, watts, count in groups:
        idle = catalog.nominal(name, SLEEP)
        fleet.append(FleetModel(name, count, ths, watts, idle.power_w if idle else 0.0))
    return fleet


def curtailment(args: argparse.Namespace, data: dict[str, Any]) -> Any:
    from pydantic import ValidationError

    from fleetd.curtail.config import parse_curtailment

    section = dict(data.get("curtailment") or {})
    if args.strike is not None:
        rule = {"kind": "price_strike", "name": f"strike_{args.strike:g}", "strike_usd_per_mwh": args.strike}
        section["rules"] = [*section.get("rules", []), rule]
    try:
        cfg = parse_curtailment(section)
    except ValidationError as exc:
        first = exc.errors()[0]
        where = ".".join(str(x) for x in first["loc"])
        raise CLIError(f"{args.config}: curtailment.{where}: {first['msg']}") from None
    if not cfg.rules:
        raise CLIError(
            "no curtailment rules: give --strike USD_PER_MWH or a --config with [curtailment] rules"
        )
    return cfg


def hashprice(args: argparse.Namespace, data: dict[str, Any]) -> float:
    if args.hashprice_usd_per_ph_day is not None:
        return float(args.hashprice_usd_per_ph_day)
    for source in (data.get("economics") or {}).get("hashprice") or []:
        if isinstance(source, dict) and source.get("kind") == "static":
            return positive(str(source.get("per_ph_day")))
    raise CLIError("no hashprice: give --hashprice-usd-per-ph-day (or a static [[economics.hashprice]])")


def run(args: argparse.Namespace) -> int:
    from fleetd.backtest.plot import PlotError, write_plot
    from fleetd.backtest.prices import PriceFileError, load_prices
    from fleetd.backtest.replay import BacktestError, replay
    from fleetd.backtest.report import table, to_dict
    from fleetd.cli.whatif import read_toml
    from fleetd.curtail.config import PriceStrikeRule

    data = read_toml(args.config) if args.config else {}
    apply_config(args)
    fleet = build_fleet(args, data)
    cfg = curtailment(args, data)
    hp = hashprice(args, data)
    try:
        series = load_prices(args.prices, args.settlement_point)
        result = replay(
            series,
            fleet,
            cfg,
            hashprice_usd_per_ph_day=hp,
            pool_fee=args.pool_fee,
            dev_fee=args.dev_fee,
            adders_usd_per_mwh=args.adders_usd_per_mwh,
            decide_every_s=args.decide_every,
        )
    except (PriceFileError, BacktestError) as exc:
        raise CLIError(str(exc)) from None
    if args.plot:
        strikes = [r.strike_usd_per_mwh for r in cfg.rules if isinstance(r, PriceStrikeRule)]
        try:
            write_plot(result, args.plot, strikes)
        except PlotError as exc:
            raise CLIError(str(exc)) from None
        print(f"fleetd backtest: plot written to {args.plot}", file=sys.stderr)
    print(json.dumps(to_dict(result)) if args.json else table(result))
    return 0
