"""Renders the demo's live fleet view from the API's fleet totals (pure: text in, text out)."""

from __future__ import annotations

import time
from typing import Any

CLEAR = "\x1b[H\x1b[2J"


def _num(value: float | None, digits: int = 1) -> str:
    return "-" if value is None else f"{value:,.{digits}f}"


def _cycle_line(cycle: dict[str, Any] | None, now: float) -> str:
    if cycle is None:
        return "first poll cycle under way"
    ago = max(0.0, now - cycle["ended_at"])
    late = "  OVERRAN its interval" if cycle["overran"] else ""
    return (
        f"last cycle {cycle['duration_s']:.2f} s, {cycle['ok']} ok / {cycle['failed']} failed, "
        f"{ago:.0f} s ago{late}"
    )


def _money(value: float | None, currency: str, digits: int = 2) -> str:
    if value is None:
        return "-"
    sign = "-" if value < 0 else ""
    return f"{sign}${abs(value):,.{digits}f}" if currency == "USD" else f"{value:,.{digits}f} {currency}"


def _prices_line(prices: dict[str, Any] | None) -> str | None:
    if not prices or not prices.get("configured"):
        return None
    hp, el = prices["hashprice"], prices["electricity"]
    cur = prices["currency"] or ""
    hp_text = f"{_money(hp['value'], cur)}/PH/day ({hp['source']})" if hp["value"] is not None else "unknown"
    el_text = (
        f"{_money(el['value'] / 1000, cur, 3)}/kWh ({el['source']})" if el["value"] is not None else "unknown"
    )
    stale = "   STALE" if hp["stale"] or el["stale"] else ""
    return f"  Prices     hashprice {hp_text}, electricity {el_text}{stale}"


def _profit_line(eco: dict[str, Any] | None) -> str | None:
    if eco is None:
        return None
    cur = eco["currency"]
    losing = eco["unprofitable"]
    fixed = f", fixed charges {_money(eco['fixed_cost_per_day'], cur)}" if eco["fixed_cost_per_day"] else ""
    return (
        f"  Profit     {_money(eco['profit_per_day'], cur)}/day"
        f"   (revenue {_money(eco['revenue_per_day'], cur)}, power {_money(eco['power_cost_per_day'], cur)}"
        f"{fixed}; {losing} of {eco['miners']} miners losing money)"
    )


def render(
    totals: dict[str, Any], *, header: str, now: float | None = None, prices: dict[str, Any] | None = None
) -> str:
    """The full-screen view: fleet figures, prices and profit, miners up/down, one row per model."""
    now = time.time() if now is None else now
    eco = totals.get("economics")
    cur = eco["currency"] if eco else "USD"
    kw = totals["power_est_w"] / 1000
    eff = totals["efficiency_j_per_th"]
    estimated = [
        f"{v['power_w'] / 1000:,.2f} kW {k}"
        for k, v in totals.get("power_by_source", {}).items()
        if k != "measured" and v["power_w"] > 0.5
    ]
    note = f"; estimated, not measured: {', '.join(estimated)}" if estimated else ""
    lines = [
        header,
        "",
        f"  Hashrate   {_num(totals['hashrate_ths'])} TH/s"
        f"   (expected {_num(totals['expected_hashrate_ths'])} TH/s)",
        f"  Power      {_num(kw, 2)} kW" + (f"   ({eff:.1f} J/TH{note})" if eff is not None else ""),
        f"  Miners     {totals['up']} up, {totals['down']} down, {totals['unknown']} not yet polled"
        f"   ({totals['miners']} in all, {totals['mining']} mining)",
        f"  Polling    {_cycle_line(totals['last_cycle'], now)}",
    ]
    lines += [line for line in (_prices_line(prices), _profit_line(eco)) if line]
    lines.append("")
    head = ("Model", "Miners", "Up", "Down", "TH/s", "kW")
    rows = [(*head, "Profit/day", "Losing") if eco else head]
    for m in totals["by_model"]:
        row = (
            m["model"] or "(not identified yet)",
            str(m["miners"]),
            str(m["up"]),
            str(m["down"]),
            _num(m["hashrate_ths"]),
            _num(m["power_est_w"] / 1000, 2),
        )
        rows.append((*row, _money(m["profit_per_day"], cur), str(m["unprofitable"])) if eco else row)
    widths = [max(len(r[i]) for r in rows) for i in range(len(rows[0]))]
    for n, row in enumerate(rows):
        cells = [row[0].ljust(widths[0])] + [c.rjust(w) for c, w in zip(row[1:], widths[1:], strict=True)]
        lines.append("  " + "  ".join(cells))
        if n == 0:
            lines.append("  " + "  ".join("-" * w for w in widths))
    return "\n".join(lines) + "\n"


def plain_line(totals: dict[str, Any], *, now: float | None = None) -> str:
    """One log-friendly line for when stdout is not a terminal."""
    now = time.time() if now is None else now
    cycle = totals["last_cycle"]
    last = f"{cycle['duration_s']:.2f}" if cycle else "-"
    stamp = time.strftime("%H:%M:%S", time.localtime(now))
    line = (
        f"{stamp} miners={totals['miners']} up={totals['up']} down={totals['down']} "
        f"unknown={totals['unknown']} hashrate_ths={totals['hashrate_ths']:.1f} "
        f"power_kw={totals['power_est_w'] / 1000:.2f} last_cycle_s={last}"
    )
    eco = totals.get("economics")
    if eco is None:
        return line
    cur = eco["currency"].lower()
    models = " ".join(
        f"{m['model'].replace(' ', '_')}={m['profit_per_day']:.2f}"
        for m in totals["by_model"]
        if m["model"] and m["profit_per_day"] is not None
    )
    return f"{line} profit_{cur}_per_day={eco['profit_per_day']:.2f} unprofitable={eco['unprofitable']}" + (
        f" profit_{cur}_per_day_by_model: {models}" if models else ""
    )
