"""Price histories for the backtest: ERCOT settlement point price CSVs and plain timestamp,price CSVs.

Bad rows are errors naming the line (a backtest over silently thinned data would mislead), except ERCOT
rows of other settlement points, which are simply not the one asked for.
"""

from __future__ import annotations

import csv
import io
import itertools
import statistics
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path

from fleetd.economics.ercot import ErcotFormatError, hour_start, parse_spp_csv, read_zipped_csv
from fleetd.economics.units import check_per_mwh

HOUR_S = 3600.0
PLAIN_COLUMNS = ("timestamp", "price_usd_per_mwh")
_RT_COLUMNS = {"DeliveryDate", "DeliveryHour", "DeliveryInterval", "SettlementPointName"}
_DAM_COLUMNS = {"DeliveryDate", "HourEnding", "SettlementPoint", "SettlementPointPrice"}


class PriceFileError(ValueError):
    """A price file that cannot be read as a price history; the message names the file and line."""


@dataclass(frozen=True, slots=True)
class Interval:
    """One settled price over [start, end), in USD per MWh (before adders)."""

    start: float
    end: float
    usd_per_mwh: float


@dataclass(frozen=True, slots=True)
class PriceSeries:
    intervals: tuple[Interval, ...]
    source: str  # "ercot-rt", "ercot-dam" or "csv"
    location: str = ""  # the settlement point, for ERCOT files
    gaps: int = 0  # holes between intervals (time not replayed)
    gap_s: float = 0.0

    @property
    def interval_s(self) -> float:
        return self.intervals[0].end - self.intervals[0].start if self.intervals else 0.0

    @property
    def span_s(self) -> float:
        return sum(i.end - i.start for i in self.intervals)


def read_text(path: Path) -> str:
    """The file's text; a .zip (as ERCOT publishes) yields its CSV."""
    try:
        data = path.read_bytes()
    except OSError as exc:
        raise PriceFileError(f"cannot read {path}: {exc.strerror or exc}") from None
    if data[:4] == b"PK\x03\x04":
        try:
            return read_zipped_csv(data)
        except ErcotFormatError as exc:
            raise PriceFileError(f"{path}: {exc}") from None
    try:
        return data.decode("utf-8-sig")
    except UnicodeDecodeError:
        raise PriceFileError(f"{path}: not a UTF-8 text file (expected a CSV)") from None


def load_prices(path: str | Path, settlement_point: str | None = None) -> PriceSeries:
    """Read a price file, recognising its format from its header."""
    p = Path(path)
    text = read_text(p)
    header = next(csv.reader(io.StringIO(text)), [])
    columns = {c.strip() for c in header}
    try:
        if columns >= _RT_COLUMNS:
            point = _pick_point(text, "SettlementPointName", settlement_point)
            points = parse_spp_csv(text, point)
            series = [Interval(pp.start, pp.end, pp.per_mwh) for pp in points]
            return _series(series, "ercot-rt", point)
        if columns >= _DAM_COLUMNS:
            point = _pick_point(text, "SettlementPoint", settlement_point)
            return _series(parse_dam_csv(text, point), "ercot-dam", point)
        if set(PLAIN_COLUMNS) <= {c.lower() for c in columns}:
            if settlement_point:
                raise PriceFileError("--settlement-point applies to ERCOT files only")
            return _series(parse_plain_csv(text), "csv")
    except (ErcotFormatError, PriceFileError) as exc:
        raise PriceFileError(f"{p}: {exc}") from None
    raise PriceFileError(
        f"{p}: unknown price file (header {','.join(header)[:120]!r}); expected an ERCOT settlement point "
        f"price CSV or the columns {','.join(PLAIN_COLUMNS)}"
    )


def _pick_point(text: str, column: str, wanted: str | None) -> str:
    names = sorted({(row.get(column) or "").strip().upper() for row in csv.DictReader(io.StringIO(text))})
    names = [n for n in names if n]
    if wanted:
        if wanted.strip().upper() not in names:
            raise PriceFileError(f"no settlement point {wanted!r}; the file has {_listing(names)}")
        return wanted.strip().upper()
    if len(names) == 1:
        return names[0]
    raise PriceFileError(
        f"holds {len(names)} settlement points; pick one with --settlement-point ({_listing(names)})"
    )


def _listing(names: Sequence[str]) -> str:
    return ", ".join(names[:8]) + (f" and {len(names) - 8} more" if len(names) > 8 else "") or "none"


def parse_dam_csv(text: str, settlement_point: str) -> list[Interval]:
    """ERCOT day-ahead settlement point prices (NP4-190-CD): hourly, HourEnding "01:00".."24:00"."""
    out = []
    wanted = settlement_point.upper()
    for n, row in enumerate(csv.DictReader(io.StringIO(text)), start=2):
        if (row.get("SettlementPoint") or "").strip().upper() != wanted:
            continue
        try:
            day = datetime.strptime((row["DeliveryDate"] or "").strip(), "%m/%d/%Y").date()
            he = int((row["HourEnding"] or "").strip().split(":")[0])
            start = hour_start(day, he, (row.get("DSTFlag") or "N").strip().upper() == "Y").timestamp()
            price = check_per_mwh(float(row["SettlementPointPrice"]), "SettlementPointPrice")
        except (ValueError, TypeError, AttributeError) as exc:
            raise PriceFileError(f"line {n}: {exc}") from None
        out.append(Interval(start, start + HOUR_S, price))
    return out


def parse_timestamp(text: str) -> float:
    """ISO 8601 with an offset (or Z), or unix seconds."""
    text = text.strip()
    try:
        return float(text) if text.replace(".", "", 1).isdigit() else _iso(text)
    except OverflowError:
        raise ValueError(f"timestamp {text!r} out of range") from None


def _iso(text: str) -> float:
    try:
        dt = datetime.fromisoformat(text.replace("Z", "+00:00").replace("z", "+00:00"))
    except ValueError:
        raise ValueError(f"timestamp {text!r} is neither ISO 8601 nor unix seconds") from None
    if dt.tzinfo is None:
        raise ValueError(f"timestamp {text!r} has no UTC offset (add Z or +HH:MM; local times are ambiguous)")
    return dt.timestamp()


def parse_plain_csv(text: str) -> list[Interval]:
    """`timestamp,price_usd_per_mwh`: each price holds until the next row (the last for the usual step)."""
    reader = csv.DictReader(io.StringIO(text))
    names = {(f or "").strip().lower(): f for f in reader.fieldnames or ()}
    t_col, p_col = names["timestamp"], names["price_usd_per_mwh"]
    rows: list[tuple[float, float, int]] = []
    for n, row in enumerate(reader, start=2):
        if not any((v or "").strip() for v in row.values() if isinstance(v, str)):
            continue  # blank line
        try:
            t = parse_timestamp(row[t_col] or "")
            price = check_per_mwh(float(row[p_col] or ""), "price_usd_per_mwh")
        except (ValueError, TypeError) as exc:
            raise PriceFileError(f"line {n}: {exc}") from None
        rows.append((t, price, n))
    rows.sort()
    for (t0, _, n0), (t1, _, n1) in itertools.pairwise(rows):
        if t0 == t1:
            raise PriceFileError(f"lines {n0} and {n1}: the same timestamp twice")
    if len(rows) < 2:
        raise PriceFileError("needs at least two rows (the step between them is the price interval)")
    step = statistics.median(b[0] - a[0] for a, b in itertools.pairwise(rows))
    out = []
    for i, (t, price, _) in enumerate(rows):
        nxt = rows[i + 1][0] if i + 1 < len(rows) else t + step
        out.append(Interval(t, min(nxt, t + step), price))
    return out


def _series(intervals: list[Interval], source: str, location: str = "") -> PriceSeries:
    if not intervals:
        raise PriceFileError("no prices" + (f" for {location}" if location else ""))
    intervals.sort(key=lambda i: i.start)
    gaps, gap_s = 0, 0.0
    for a, b in itertools.pairwise(intervals):
        if b.start < a.end:
            raise PriceFileError(
                f"two prices for the same time ({datetime.fromtimestamp(b.start, UTC).isoformat()})"
            )
        if b.start > a.end:
            gaps += 1
            gap_s += b.start - a.end
    return PriceSeries(tuple(intervals), source, location, gaps, gap_s)
