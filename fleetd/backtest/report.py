"""The backtest's outputs: a table for people and a JSON document for programs."""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any

from fleetd.backtest.replay import BacktestResult, Money


def _iso(t: float) -> str:
    return datetime.fromtimestamp(t, UTC).isoformat().replace("+00:00", "Z")


def _money(m: Money) -> dict[str, float]:
    return {
        "energy_mwh": round(m.energy_mwh, 6),
        "energy_cost_usd": round(m.energy_cost, 2),
        "revenue_usd": round(m.revenue, 2),
        "profit_usd": round(m.profit, 2),
    }


def _share(x: float | None) -> float | None:
    return None if x is None else round(x, 6)


def to_dict(r: BacktestResult) -> dict[str, Any]:
    return {
        "period": {"start": _iso(r.start), "end": _iso(r.end), "hours": round(r.hours, 3), "gaps": r.gaps},
        "prices": {"source": r.source, "settlement_point": r.location or None},
        "miners": r.miners,
        "hashprice_usd_per_ph_day": r.hashprice_usd_per_ph_day,
        "uptime": round(r.uptime, 6),
        "curtailed_hours": round(r.curtailed_hours, 3),
        "curtailed": _money(r.actual),
        "always_on": _money(r.baseline),
        "energy_cost_saved_usd": round(r.cost_saved, 2),
        "energy_cost_saved_share": _share(r.cost_saved_share),
        "revenue_lost_usd": round(r.revenue_lost, 2),
        "revenue_lost_share": _share(r.revenue_lost_share),
        "net_gain_usd": round(r.net_gain, 2),
        "switches_per_miner": {"max": r.switches_max, "mean": round(r.switches_mean, 3)},
        "decisions": r.decisions,
        "commands": r.commands,
        "by_model": [
            {
                "model": m.name,
                "miners": m.miners,
                "uptime": round(m.uptime, 6),
                "curtailed": _money(m.actual),
                "always_on": _money(m.baseline),
                "energy_cost_saved_usd": round(m.baseline.energy_cost - m.actual.energy_cost, 2),
                "revenue_lost_usd": round(m.baseline.revenue - m.actual.revenue, 2),
                "switches_per_miner": {"max": m.switches_max, "mean": round(m.switches_mean, 3)},
            }
            for m in r.by_model
        ],
        "by_rule": [
            {
                "rule": x.rule,
                "miner_hours": round(x.miner_hours, 3),
                "energy_cost_saved_usd": round(x.cost_saved, 2),
                "revenue_lost_usd": round(x.revenue_lost, 2),
                "net_usd": round(x.net, 2),
            }
            for x in r.by_rule
        ],
    }


def _pct(x: float | None) -> str:
    return "-" if x is None else f"{x * 100:.1f} %"


def _usd(x: float) -> str:
    return f"-${-x:,.2f}" if x < 0 else f"${x:,.2f}"


def table(r: BacktestResult) -> str:
    where = f" at {r.location}" if r.location else ""
    gaps = f", {r.gaps} gaps skipped" if r.gaps else ""
    lines = [
        f"Backtest {_iso(r.start)} .. {_iso(r.end)} ({r.hours:,.1f} h of {r.source} prices{where}{gaps}), "
        f"{r.miners} miners, hashprice ${r.hashprice_usd_per_ph_day:,.2f}/PH/day",
        "",
        f"{'':24}{'curtailed':>16}{'always on':>16}{'difference':>16}",
    ]
    a, b = r.actual, r.baseline
    rows = [
        ("uptime", _pct(r.uptime), "100.0 %", _pct(r.uptime - 1)),
        (
            "energy",
            f"{a.energy_mwh:,.2f} MWh",
            f"{b.energy_mwh:,.2f} MWh",
            f"{a.energy_mwh - b.energy_mwh:,.2f} MWh",
        ),
        ("energy cost", _usd(a.energy_cost), _usd(b.energy_cost), _usd(a.energy_cost - b.energy_cost)),
        ("revenue", _usd(a.revenue), _usd(b.revenue), _usd(a.revenue - b.revenue)),
        ("profit", _usd(a.profit), _usd(b.profit), _usd(r.net_gain)),
    ]
    lines += [f"{n:24}{x:>16}{y:>16}{z:>16}" for n, x, y, z in rows]
    lines += [
        "",
        f"energy cost saved       {_usd(r.cost_saved)} ({_pct(r.cost_saved_share)} of always-on)",
        f"revenue lost            {_usd(r.revenue_lost)} ({_pct(r.revenue_lost_share)} of always-on)",
        f"net gain                {_usd(r.net_gain)}",
        f"curtailed hours         {r.curtailed_hours:,.2f} h (any miner curtailed)",
        f"switches per miner      {r.switches_max} max, {r.switches_mean:.1f} mean",
    ]
    if r.by_model:
        lines += [
            "",
            f"{'model':24}{'miners':>7}{'uptime':>9}{'cost saved':>14}{'revenue lost':>14}{'switches':>9}",
        ]
        for m in r.by_model:
            saved = m.baseline.energy_cost - m.actual.energy_cost
            lost = m.baseline.revenue - m.actual.revenue
            lines.append(
                f"{m.name[:23]:24}{m.miners:>7}{_pct(m.uptime):>9}{_usd(saved):>14}{_usd(lost):>14}"
                f"{m.switches_max:>9}"
            )
    if r.by_rule:
        lines += ["", f"{'rule':24}{'miner-hours':>12}{'cost saved':>14}{'revenue lost':>14}{'net':>14}"]
        for x in r.by_rule:
            lines.append(
                f"{x.rule[:23]:24}{x.miner_hours:>12,.1f}{_usd(x.cost_saved):>14}{_usd(x.revenue_lost):>14}"
                f"{_usd(x.net):>14}"
            )
    return "\n".join(lines)
