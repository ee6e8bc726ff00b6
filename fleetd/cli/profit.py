"""`fleetd profit`: the economics of one unit from explicit inputs (or a catalog model)."""

from __future__ import annotations

import argparse
import json
import math
import tomllib
from collections.abc import Callable
from pathlib import Path
from typing import Any

from pydantic import ValidationError

from fleetd.cli import CLIError
from fleetd.economics.catalog import SLEEP, Catalog, CatalogError
from fleetd.economics.config import EconomicsConfig
from fleetd.economics.hashprice import block_subsidy_btc, hashprice_per_ph_day
from fleetd.economics.unit import CATALOG, CATALOG_SLEEP, CONFIGURED, Economics, economics
from fleetd.economics.units import per_kwh_to_per_mwh, per_mwh_to_per_kwh

DEFAULT_SUBSIDY_BTC = 3.125  # from block 840,000 (April 2024) to 1,049,999


def fraction(text: str) -> float:
    """A fee as a fraction (0.02) or a percentage (2%)."""
    try:
        value = float(text[:-1]) / 100.0 if text.endswith("%") else float(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"not a fraction or percentage: {text!r}") from None
    if not 0.0 <= value < 1.0:
        raise argparse.ArgumentTypeError(f"fee must be in [0, 1) or [0%, 100%), got {text!r}")
    return value


def _float(text: str) -> float:
    try:
        return float(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"not a number: {text!r}") from None


def positive(text: str) -> float:
    value = _float(text)
    if not (math.isfinite(value) and value > 0):
        raise argparse.ArgumentTypeError(f"must be > 0, got {text!r}")
    return value


def non_negative(text: str) -> float:
    value = _float(text)
    if not (math.isfinite(value) and value >= 0):
        raise argparse.ArgumentTypeError(f"must be >= 0, got {text!r}")
    return value


def bounded_price(limit: float, unit: str) -> Callable[[str], float]:
    """A price parser: negative prices are real (paid to consume), absurd magnitudes are refused."""

    def parse(text: str) -> float:
        value = _float(text)
        if not abs(value) <= limit:  # also refuses NaN and infinities
            raise argparse.ArgumentTypeError(f"must be within +-{limit:,g} {unit}, got {text!r}")
        return value

    return parse


# $100/kWh = $100,000/MWh: far beyond any market's price cap (ERCOT's is $5,000/MWh)
price_per_kwh = bounded_price(100.0, "$/kWh")
adders_per_mwh = bounded_price(100_000.0, "$/MWh")


def add_network_args(p: argparse.ArgumentParser) -> None:
    p.add_argument("--difficulty", type=positive, help="network difficulty")
    p.add_argument("--fees-btc-per-block", type=non_negative, help="average fees per block, BTC (default 0)")
    g = p.add_mutually_exclusive_group()
    g.add_argument("--height", type=int, help="block height (sets the subsidy)")
    g.add_argument("--subsidy-btc", type=non_negative, help=f"subsidy, BTC (default {DEFAULT_SUBSIDY_BTC})")


def add_fee_args(p: argparse.ArgumentParser) -> None:
    p.add_argument("--pool-fee", type=fraction, help="pool fee, e.g. 0.02 or 2%% (default 0)")
    p.add_argument("--dev-fee", type=fraction, help="firmware dev fee (default 0)")
    p.add_argument("--adders-usd-per-mwh", type=adders_per_mwh, help="transmission/retail adders, $/MWh")
    p.add_argument("--catalog", help="model catalog TOML (default config/models.toml)")
    p.add_argument("--config", help="fleetd TOML config whose [economics] fees, adders and catalog apply")


def apply_config(args: argparse.Namespace) -> None:
    """Fill fees, adders and catalog from --config's [economics] where no flag gave them; then defaults."""
    econ = None
    if args.config:
        try:
            data = tomllib.loads(Path(args.config).read_text())
        except OSError as exc:
            raise CLIError(f"cannot read {args.config}: {exc.strerror or exc}") from None
        except tomllib.TOMLDecodeError as exc:
            raise CLIError(f"{args.config} is not valid TOML: {exc}") from None
        try:
            econ = EconomicsConfig.model_validate(data.get("economics", {}))
        except ValidationError as exc:
            first = exc.errors()[0]
            where = ".".join(str(x) for x in first["loc"])
            raise CLIError(f"{args.config}: economics.{where}: {first['msg']}") from None
    if args.pool_fee is None:
        args.pool_fee = econ.pool_fee if econ else 0.0
    if args.dev_fee is None:
        args.dev_fee = econ.dev_fee if econ else 0.0
    if args.adders_usd_per_mwh is None:
        args.adders_usd_per_mwh = econ.adders_total_per_mwh if econ else 0.0
    if args.catalog is None and econ is not None and econ.catalog is not None:
        args.catalog = str(econ.catalog)


def subsidy(args: argparse.Namespace) -> float:
    if args.height is not None:
        if args.height < 0:
            raise CLIError("--height must be >= 0")
        return block_subsidy_btc(args.height)
    return args.subsidy_btc if args.subsidy_btc is not None else DEFAULT_SUBSIDY_BTC


def load_catalog(path: str | None) -> Catalog:
    try:
        return Catalog.load(path)
    except CatalogError as exc:
        raise CLIError(str(exc)) from None


def register(sub: Any) -> None:
    p = sub.add_parser(
        "profit",
        help="revenue, power cost and profit per day of one unit",
        description="Economics of one unit. Give the hashprice, or BTC price with difficulty and fees.",
    )
    p.add_argument("--hashrate-ths", type=positive, help="hashrate, TH/s (default: the model's nominal)")
    p.add_argument("--power-w", type=positive, help="power draw, W (default: the model's nominal)")
    p.add_argument("--model", help="catalog model, e.g. 'S19 XP' (see config/models.toml)")
    p.add_argument("--mode", default="normal", help="catalog mode: normal, low, high, sleep (default normal)")
    p.add_argument("--hashprice-usd-per-ph-day", type=positive, help="gross hashprice, $ per PH/s per day")
    p.add_argument("--btc-price", type=positive, help="BTC price, $ (with --difficulty)")
    add_network_args(p)
    p.add_argument(
        "--electricity-usd-per-kwh",
        type=price_per_kwh,
        required=True,
        help="energy price, $/kWh (can be < 0)",
    )
    add_fee_args(p)
    p.add_argument("--json", action="store_true", help="print JSON")
    p.set_defaults(func=run)


def compute(args: argparse.Namespace) -> tuple[Economics, dict[str, Any]]:
    apply_config(args)
    hashrate, power, source, model = args.hashrate_ths, args.power_w, CONFIGURED, ""
    if args.model:
        entry = load_catalog(args.catalog).find(args.model)
        if entry is None:
            raise CLIError(f"model {args.model!r} is not in the catalog")
        nominal = entry.nominal(args.mode, fallback=False)
        if nominal is None:
            has = ", ".join(entry.mode_names)
            raise CLIError(f"{entry.name} has no {args.mode!r} mode in the catalog (has: {has})")
        model = entry.name
        if hashrate is None:
            hashrate = nominal.hashrate_ths
        if power is None:
            power, source = nominal.power_w, CATALOG_SLEEP if args.mode == SLEEP else CATALOG
    if hashrate is None or power is None:
        raise CLIError("give --hashrate-ths and --power-w, or --model")
    if hashrate == 0 and args.mode != SLEEP:
        raise CLIError("--hashrate-ths must be > 0")
    inputs: dict[str, Any] = {}
    if args.hashprice_usd_per_ph_day is not None:
        if args.btc_price is not None or args.difficulty is not None:
            raise CLIError("give --hashprice-usd-per-ph-day or --btc-price with --difficulty, not both")
        hashprice = args.hashprice_usd_per_ph_day
    elif args.btc_price is not None and args.difficulty is not None:
        fees = args.fees_btc_per_block or 0.0
        sub = subsidy(args)
        hashprice = hashprice_per_ph_day(args.difficulty, sub, fees, args.btc_price)
        inputs = {
            "btc_price_usd": args.btc_price,
            "difficulty": args.difficulty,
            "subsidy_btc": sub,
            "fees_btc_per_block": fees,
        }
    else:
        raise CLIError("give --hashprice-usd-per-ph-day, or --btc-price and --difficulty")
    price_mwh = per_kwh_to_per_mwh(args.electricity_usd_per_kwh) + args.adders_usd_per_mwh
    result = economics(
        hashrate,
        power,
        hashprice,
        price_mwh,
        pool_fee=args.pool_fee,
        dev_fee=args.dev_fee,
        power_source=source,
        model=model,
    )
    return result, inputs


def as_json(r: Economics, inputs: dict[str, Any], pool_fee: float, dev_fee: float) -> dict[str, Any]:
    return {
        "model": r.model or None,
        "hashrate_ths": r.hashrate_ths,
        "power_w": r.power_w,
        "power_source": r.power_source,
        "hashprice_usd_per_ph_day": r.hashprice_per_ph_day,
        "electricity_usd_per_mwh": r.electricity_per_mwh,
        "pool_fee": pool_fee,
        "dev_fee": dev_fee,
        "revenue_usd_per_day": r.revenue_per_day,
        "power_cost_usd_per_day": r.power_cost_per_day,
        "profit_usd_per_day": r.profit_per_day,
        "power_cost_share": r.power_cost_share,
        "efficiency_j_per_th": r.efficiency_j_per_th,
        "breakeven_usd_per_mwh": r.breakeven_per_mwh,
        "breakeven_hashprice_usd_per_ph_day": r.breakeven_hashprice_per_ph_day,
        **inputs,
    }


def _money(v: float | None) -> str:
    if v is None:
        return "n/a"
    return f"-${-v:,.2f}" if v < 0 else f"${v:,.2f}"


def _per_ph_day(v: float | None) -> str:
    return "n/a" if v is None else f"${v:,.2f} per PH/s per day"


def table(r: Economics) -> str:
    share = "n/a" if r.power_cost_share is None else f"{r.power_cost_share:.1%}"
    eff = "n/a" if r.efficiency_j_per_th is None else f"{r.efficiency_j_per_th:.1f} J/TH"
    be = "n/a"
    if r.breakeven_per_mwh is not None:
        be = f"${r.breakeven_per_mwh:,.2f}/MWh (${per_mwh_to_per_kwh(r.breakeven_per_mwh):.4f}/kWh)"
    rows = [
        ("model", r.model or "-"),
        ("hashrate", f"{r.hashrate_ths:,.2f} TH/s"),
        ("power", f"{r.power_w:,.0f} W ({r.power_source})"),
        ("efficiency", eff),
        ("hashprice (gross)", _per_ph_day(r.hashprice_per_ph_day)),
        ("electricity", f"${r.electricity_per_mwh:,.2f}/MWh"),
        ("revenue / day", _money(r.revenue_per_day)),
        ("power cost / day", _money(r.power_cost_per_day)),
        ("profit / day", _money(r.profit_per_day)),
        ("power cost share", share),
        ("breakeven electricity", be),
        ("breakeven hashprice", _per_ph_day(r.breakeven_hashprice_per_ph_day)),
    ]
    width = max(len(k) for k, _ in rows)
    return "\n".join(f"{k:<{width}}  {v}" for k, v in rows)


def run(args: argparse.Namespace) -> int:
    result, inputs = compute(args)
    if args.json:
        print(json.dumps(as_json(result, inputs, args.pool_fee, args.dev_fee), indent=2))
    else:
        print(table(result))
    return 0
