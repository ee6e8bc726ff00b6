"""The backtest plot: price, fleet load and curtailed share over time, as SVG (no dependency) or PNG.

PNG needs matplotlib (`pip install 'fleetd[plot]'`); SVG is written directly.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from datetime import UTC, datetime
from pathlib import Path
from xml.sax.saxutils import escape

from fleetd.backtest.replay import BacktestResult, Sample

MAX_POINTS = 1200  # buckets drawn; a year of 15-minute prices is 35,040 samples
WIDTH, PANEL_H, LEFT, RIGHT, TOP, GAP = 960, 170, 70, 40, 64, 40


class PlotError(ValueError):
    """The plot cannot be written (unknown extension, matplotlib missing, unwritable file)."""


def buckets(samples: Sequence[Sample], n: int = MAX_POINTS) -> list[tuple[float, float, float, float]]:
    """(start, highest price, mean load MW, mean curtailed share) per bucket of consecutive samples."""
    if len(samples) <= n:
        return [(s.start, s.price_usd_per_mwh, s.load_mw, s.curtailed_share) for s in samples]
    size = math.ceil(len(samples) / n)
    out = []
    for i in range(0, len(samples), size):
        chunk = samples[i : i + size]
        out.append(
            (
                chunk[0].start,
                max(s.price_usd_per_mwh for s in chunk),
                sum(s.load_mw for s in chunk) / len(chunk),
                sum(s.curtailed_share for s in chunk) / len(chunk),
            )
        )
    return out


def _nice_ticks(lo: float, hi: float, n: int = 4) -> list[float]:
    if hi <= lo:
        hi = lo + 1
    raw = (hi - lo) / n
    mag = 10 ** math.floor(math.log10(raw))
    step = next(m * mag for m in (1, 2, 2.5, 5, 10) if m * mag >= raw)
    first = math.floor(lo / step) * step
    ticks = [first]
    while ticks[-1] < hi - step * 1e-6:
        ticks.append(first + len(ticks) * step)
    return ticks


def _label(v: float) -> str:
    return f"{v:,.0f}" if abs(v) >= 10 or v == int(v) else f"{v:,.2f}"


def svg(result: BacktestResult, strikes: Sequence[float] = ()) -> str:
    """The plot as an SVG document."""
    pts = buckets(result.samples)
    t0, t1 = result.start, max(result.end, result.start + 1)
    plot_w = WIDTH - LEFT - RIGHT
    height = TOP + 3 * PANEL_H + 2 * GAP + 40

    def x(t: float) -> float:
        return LEFT + (t - t0) / (t1 - t0) * plot_w

    out = [
        f'<svg xmlns="http://www.w3.org/2000/svg" width="{WIDTH}" height="{height}" '
        f'viewBox="0 0 {WIDTH} {height}" font-family="sans-serif" font-size="12">',
        f'<rect width="{WIDTH}" height="{height}" fill="white"/>',
        f'<text x="{LEFT}" y="26" font-size="15" font-weight="bold">{escape(_title(result))}</text>',
    ]
    prices = [p[1] for p in pts]
    panels = [
        ("electricity, all-in ($/MWh)" + (", highest per bucket" if len(pts) < len(result.samples) else ""),
         prices, "#c0392b", min(0.0, min(prices)), max(prices), list(strikes), False),
        ("fleet load (MW)", [p[2] for p in pts], "#2471a3", 0.0, max(max(p[2] for p in pts), 1e-9), [], True),
        ("curtailed share of the fleet (%)", [p[3] * 100 for p in pts], "#7d3c98", 0.0, 100.0, [], True),
    ]  # fmt: skip
    for k, (title, values, colour, lo, hi, lines, fill) in enumerate(panels):
        top = TOP + k * (PANEL_H + GAP)
        ticks = _nice_ticks(lo, hi)
        lo, hi = min(lo, ticks[0]), max(hi, ticks[-1])

        def y(v: float, top: float = top, lo: float = lo, hi: float = hi) -> float:
            return top + PANEL_H - (v - lo) / (hi - lo) * PANEL_H

        out.append(f'<text x="{LEFT}" y="{top - 6}" font-weight="bold">{escape(title)}</text>')
        out.append(
            f'<rect x="{LEFT}" y="{top}" width="{plot_w}" height="{PANEL_H}" fill="none" stroke="#999"/>'
        )
        for tv in ticks:
            yy = y(tv)
            out.append(f'<line x1="{LEFT}" x2="{LEFT + plot_w}" y1="{yy:.1f}" y2="{yy:.1f}" stroke="#eee"/>')
            out.append(f'<text x="{LEFT - 6}" y="{yy + 4:.1f}" text-anchor="end">{_label(tv)}</text>')
        coords = []
        for (start, *_), v in zip(pts, values, strict=True):
            coords.append(f"{x(start):.1f},{y(v):.1f}")
        if pts:  # the last bucket holds its value to the end
            coords.append(f"{x(t1):.1f},{y(values[-1]):.1f}")
        path = " ".join(coords)
        if fill:
            base = f"{x(t1):.1f},{y(lo):.1f} {x(t0):.1f},{y(lo):.1f}"
            out.append(f'<polygon points="{path} {base}" fill="{colour}" fill-opacity="0.25" stroke="none"/>')
        out.append(f'<polyline points="{path}" fill="none" stroke="{colour}" stroke-width="1.2"/>')
        for line in lines:
            if lo <= line <= hi:
                yy = y(line)
                out.append(
                    f'<line x1="{LEFT}" x2="{LEFT + plot_w}" y1="{yy:.1f}" y2="{yy:.1f}" stroke="#555" '
                    f'stroke-dasharray="5,4"/><text x="{LEFT + plot_w - 4}" y="{yy - 4:.1f}" '
                    f'text-anchor="end" fill="#555">strike ${line:,.0f}</text>'
                )
    bottom = TOP + 3 * PANEL_H + 2 * GAP
    for i, t in enumerate(_time_ticks(t0, t1)):
        xx = x(t)
        anchor = "start" if i == 0 else "end" if t >= t1 else "middle"
        out.append(f'<line x1="{xx:.1f}" x2="{xx:.1f}" y1="{bottom}" y2="{bottom + 5}" stroke="#333"/>')
        out.append(
            f'<text x="{xx:.1f}" y="{bottom + 18}" text-anchor="{anchor}">{_time_label(t, t1 - t0)}</text>'
        )
    out.append("</svg>")
    return "\n".join(out) + "\n"


def _title(r: BacktestResult) -> str:
    saved = f"{r.cost_saved_share * 100:.1f} %" if r.cost_saved_share is not None else "-"
    return (
        f"{r.miners} miners, {r.hours:,.0f} h: uptime {r.uptime * 100:.1f} %, energy cost saved {saved}, "
        f"net gain ${r.net_gain:,.0f}"
    )


def _time_ticks(t0: float, t1: float, n: int = 6) -> list[float]:
    return [t0 + (t1 - t0) * i / n for i in range(n + 1)]


def _time_label(t: float, span: float) -> str:
    dt = datetime.fromtimestamp(t, UTC)
    return dt.strftime("%Y-%m-%d") if span > 3 * 86400 else dt.strftime("%m-%d %H:%M")


def write_plot(result: BacktestResult, path: str | Path, strikes: Sequence[float] = ()) -> None:
    """Write the plot; the format follows the extension (.svg, .png)."""
    p = Path(path)
    ext = p.suffix.lower()
    if ext == ".svg":
        text = svg(result, strikes)
        try:
            p.write_text(text)
        except OSError as exc:
            raise PlotError(f"cannot write {p}: {exc.strerror or exc}") from None
        return
    if ext == ".png":
        _png(result, p, strikes)
        return
    raise PlotError(f"{p}: the plot is written as .svg or .png, not {ext or 'no extension'}")


def _png(result: BacktestResult, path: Path, strikes: Sequence[float]) -> None:
    try:
        import matplotlib

        matplotlib.use("Agg")
        import matplotlib.pyplot as plt
    except ImportError:
        raise PlotError(
            "a PNG plot needs matplotlib (pip install 'fleetd[plot]'); or write an .svg, which needs nothing"
        ) from None
    pts = buckets(result.samples)
    times = [datetime.fromtimestamp(p[0], UTC) for p in pts]
    fig, axes = plt.subplots(3, 1, figsize=(10, 7.5), sharex=True)
    axes[0].step(times, [p[1] for p in pts], where="post", color="#c0392b", linewidth=0.8)
    for s in strikes:
        axes[0].axhline(s, color="#555", linestyle="--", linewidth=0.8)
    axes[0].set_ylabel("$/MWh all-in")
    axes[1].fill_between(times, [p[2] for p in pts], step="post", color="#2471a3", alpha=0.4)
    axes[1].set_ylabel("fleet load MW")
    axes[2].fill_between(times, [p[3] * 100 for p in pts], step="post", color="#7d3c98", alpha=0.4)
    axes[2].set_ylabel("curtailed %")
    axes[2].set_ylim(0, 100)
    axes[0].set_title(_title(result), fontsize=10)
    fig.autofmt_xdate()
    fig.tight_layout()
    try:
        fig.savefig(path, dpi=100)
    except OSError as exc:
        raise PlotError(f"cannot write {path}: {exc.strerror or exc}") from None
    finally:
        plt.close(fig)
