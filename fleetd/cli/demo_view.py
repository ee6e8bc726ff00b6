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


def render(totals: dict[str, Any], *, header: str, now: float | None = None) -> str:
    """The full-screen view: fleet figures, miners up/down, one row per model."""
    now = time.time() if now is None else now
    kw = totals["power_est_w"] / 1000
    eff = totals["efficiency_j_per_th"]
    estimated = totals["power_est_w"] - totals["power_w"]
    note = f", {estimated / 1000:,.2f} kW of it from nominal ratings" if estimated > 0.5 else ""
    lines = [
        header,
        "",
        f"  Hashrate   {_num(totals['hashrate_ths'])} TH/s"
        f"   (expected {_num(totals['expected_hashrate_ths'])} TH/s)",
        f"  Power      {_num(kw, 2)} kW" + (f"   ({eff:.1f} J/TH{note})" if eff is not None else ""),
        f"  Miners     {totals['up']} up, {totals['down']} down, {totals['unknown']} not yet polled"
        f"   ({totals['miners']} in all, {totals['mining']} mining)",
        f"  Polling    {_cycle_line(totals['last_cycle'], now)}",
        "",
    ]
    rows = [("Model", "Miners", "Up", "Down", "TH/s", "kW")]
    for m in totals["by_model"]:
        rows.append(
            (
                m["model"] or "(not identified yet)",
                str(m["miners"]),
                str(m["up"]),
                str(m["down"]),
                _num(m["hashrate_ths"]),
                _num(m["power_est_w"] / 1000, 2),
            )
        )
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
    return (
        f"{stamp} miners={totals['miners']} up={totals['up']} down={totals['down']} "
        f"unknown={totals['unknown']} hashrate_ths={totals['hashrate_ths']:.1f} "
        f"power_kw={totals['power_est_w'] / 1000:.2f} last_cycle_s={last}"
    )
