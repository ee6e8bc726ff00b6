"""`fleetd whatif`: profit per day over BTC price x electricity price, per catalog model or for a fleet."""

from __future__ import annotations

import argparse
import json
import math
import sys
import tomllib
from pathlib import Path
from typing import Any

from fleetd.cli import CLIError
from fleetd.cli.profit import (
    add_fee_args,
    add_network_args,
    apply_config,
    load_catalog,
    price_per_kwh,
    subsidy,
)
from fleetd.economics.catalog import Catalog
from fleetd.economics.whatif import Grid, profit_grid

DEFAULT_BTC = "40000,60000,80000,100000,120000"
DEFAULT_KWH = "0.03,0.04,0.05,0.06,0.07,0.08"


def number_list(text: str) -> list[float]:
    """BTC prices: one or more numbers in [0, 1e9]."""
    values = _numbers(text)
    if any(not 0 <= v <= 1e9 for v in values):
        raise argparse.ArgumentTypeError(f"BTC prices must be within 0..1e9: {text!r}")
    return values


def price_list(text: str) -> list[float]:
    """Electricity prices in $/kWh: negative prices are real, absurd magnitudes are refused."""
    _numbers(text)
    return [price_per_kwh(x) for x in text.split(",") if x.strip()]


def _numbers(text: str) -> list[float]:
    try:
        values = [float(x) for x in text.split(",") if x.strip()]
    except ValueError:
        raise argparse.ArgumentTypeError(f"not a comma-separated list of numbers: {text!r}") from None
    if not values or not all(math.isfinite(v) for v in values):
        raise argparse.ArgumentTypeError(f"need one or more finite numbers: {text!r}")
    return values


def register(sub: Any) -> None:
    p = sub.add_parser(
        "whatif",
        help="profit/day grid over BTC price x electricity price",
        description="Profit per day for catalog models (or a config's fleet) over BTC and electricity "
        "prices, with the prices at which each model turns unprofitable.",
    )
    p.add_argument(
        "--btc-prices", type=number_list, default=number_list(DEFAULT_BTC), help="USD, comma-separated"
    )
    p.add_argument(
        "--electricity-usd-per-kwh",
        type=price_list,
        default=price_list(DEFAULT_KWH),
        help="comma-separated",
    )
    add_network_args(p)
    add_fee_args(p)
    p.add_argument("--models", help="comma-separated catalog models (default: all)")
    p.add_argument(
        "--fleet",
        help="TOML listing the fleet: [[fleet]] model, count (hashrate_ths, power_w), "
        "or a fleetd config whose [[miners]] carry model",
    )
    p.add_argument("--json", action="store_true", help="print JSON")
    p.set_defaults(func=run)


Fleet = list[tuple[str, float, float, int]]  # (model name, TH/s, W, count)


def read_toml(path: str) -> dict[str, Any]:
    try:
        return tomllib.loads(Path(path).read_text())
    except OSError as exc:
        raise CLIError(f"cannot read {path}: {exc.strerror or exc}") from None
    except tomllib.TOMLDecodeError as exc:
        raise CLIError(f"{path} is not valid TOML: {exc}") from None


def fleet_from_file(path: str, catalog: Catalog) -> Fleet:
    """The fleet in a [[fleet]] file (model, count, optional hashrate_ths/power_w), or in a fleetd config
    whose [[miners]] carry `model` (power from `nominal_power_w` when given); counted by model."""
    data = read_toml(path)
    if "fleet" in data:
        return group(path, "fleet", data["fleet"], catalog)
    if "miners" in data:
        miners = data["miners"]
        if not isinstance(miners, list):
            raise CLIError(f"{path}: miners must be an array of tables ([[miners]])")
        with_model = [m for m in miners if isinstance(m, dict) and m.get("model")]
        if not with_model:
            raise CLIError(
                f"{path}: none of its {len(miners)} [[miners]] has a `model`; "
                'add model = "..." to each, or list the fleet in a [[fleet]] file'
            )
        if len(with_model) < len(miners):
            print(
                f"fleetd whatif: {len(miners) - len(with_model)} of {len(miners)} miners in {path} have no "
                "model and are left out",
                file=sys.stderr,
            )
        entries = [{"model": m["model"], "power_w": m.get("nominal_power_w")} for m in with_model]
        return group(path, "miners", entries, catalog)
    raise CLIError(f"{path}: no [[fleet]] or [[miners]] entries")


def group(path: str, table: str, entries: Any, catalog: Catalog) -> Fleet:
    if not isinstance(entries, list):
        raise CLIError(f"{path}: {table} must be an array of tables ([[{table}]])")
    groups: dict[tuple[str, float, float], int] = {}
    for i, m in enumerate(entries):
        where = f"{path}: {table}[{i}]"
        if not isinstance(m, dict) or not m.get("model"):
            raise CLIError(f"{where} needs a model")
        entry = catalog.find(str(m["model"]))
        nominal = entry.nominal() if entry else None
        try:
            ths = float(m.get("hashrate_ths") or (nominal.hashrate_ths if nominal else 0))
            watts = float(m.get("power_w") or (nominal.power_w if nominal else 0))
            count = int(m.get("count", 1))
        except (TypeError, ValueError):
            raise CLIError(f"{where} has a non-numeric hashrate_ths, power_w or count") from None
        if not (math.isfinite(ths) and math.isfinite(watts)) or ths <= 0 or watts <= 0:
            raise CLIError(f"{where} model {m['model']!r} not in catalog (or give hashrate_ths, power_w)")
        if count <= 0:
            raise CLIError(f"{where} count must be > 0")
        name = entry.name if entry else str(m["model"])
        groups[(name, ths, watts)] = groups.get((name, ths, watts), 0) + count
    if not groups:
        raise CLIError(f"{path}: no [[{table}]] entries")
    return [(name, ths, watts, n) for (name, ths, watts), n in sorted(groups.items())]


def grids(args: argparse.Namespace) -> list[Grid]:
    if args.difficulty is None:
        raise CLIError("--difficulty is required (the network difficulty to assume)")
    apply_config(args)
    catalog = load_catalog(args.catalog)
    if args.fleet:
        fleet = fleet_from_file(args.fleet, catalog)
    else:
        entries = catalog.models
        if args.models:
            entries = []
            for name in (n.strip() for n in args.models.split(",") if n.strip()):
                entry = catalog.find(name)
                if entry is None:
                    raise CLIError(f"model {name!r} is not in the catalog")
                entries.append(entry)
        fleet = []
        for e in entries:
            nominal = e.nominal()
            if nominal is not None:
                fleet.append((e.name, nominal.hashrate_ths, nominal.power_w, 1))
    common = {
        "difficulty": args.difficulty,
        "subsidy_btc": subsidy(args),
        "fees_btc_per_block": args.fees_btc_per_block or 0.0,
        "pool_fee": args.pool_fee,
        "dev_fee": args.dev_fee,
        "adders_per_mwh": args.adders_usd_per_mwh,
    }
    out = [
        profit_grid(name, ths, watts, args.btc_prices, args.electricity_usd_per_kwh, units=n, **common)
        for name, ths, watts, n in fleet
    ]
    if args.fleet and len(out) > 1:  # profit is linear in hashrate and power: the fleet is one big unit
        units = sum(g.units for g in out)
        ths = sum(g.hashrate_ths * g.units for g in out)
        watts = sum(g.power_w * g.units for g in out)
        label = f"fleet total ({units} units)"
        out.append(profit_grid(label, ths, watts, args.btc_prices, args.electricity_usd_per_kwh, **common))
    return out


def render(g: Grid) -> str:
    units = f"{g.units} x " if g.units > 1 else ""
    lines = [
        f"{units}{g.label}: {g.hashrate_ths:g} TH/s, {g.power_w:g} W, {g.efficiency_j_per_th:.1f} J/TH"
        " - profit per day, USD"
    ]
    head = "$/kWh \\ BTC $".rjust(15) + "".join(f"{p:>11,.0f}" for p in g.btc_prices)
    lines.append(head + ("   loses below BTC $" if g.breakeven_btc_price else ""))
    for i, (kwh, row) in enumerate(zip(g.electricity_per_kwh, g.profit, strict=True)):
        be = ""
        if g.breakeven_btc_price:  # at a negative energy price running pays at any BTC price
            b = g.breakeven_btc_price[i]
            be = f"{b:>20,.0f}" if b > 0 else f"{'never':>20}"
        lines.append(f"{kwh:>15.4f}" + "".join(f"{v:>11,.2f}" for v in row) + be)
    if g.breakeven_per_kwh:
        lines.append("unprofitable >".rjust(15) + "".join(f"{b:>11.4f}" for b in g.breakeven_per_kwh))
        lines.append("  (above this $/kWh at each BTC price)")
    return "\n".join(lines)


def run(args: argparse.Namespace) -> int:
    result = grids(args)
    if args.json:
        print(
            json.dumps(
                [
                    {
                        "model": g.label,
                        "units": g.units,
                        "hashrate_ths": g.hashrate_ths,
                        "power_w": g.power_w,
                        "btc_prices_usd": list(g.btc_prices),
                        "electricity_usd_per_kwh": list(g.electricity_per_kwh),
                        "profit_usd_per_day": [list(r) for r in g.profit],
                        "breakeven_usd_per_kwh": list(g.breakeven_per_kwh),
                        "breakeven_btc_price_usd": list(g.breakeven_btc_price),
                    }
                    for g in result
                ],
                indent=2,
            )
        )
    else:
        print("\n\n".join(render(g) for g in result))
    return 0
