"""Price histories: ERCOT settlement point CSVs (real-time, day-ahead, zipped) and plain CSVs."""

from __future__ import annotations

import io
import zipfile
from datetime import UTC, datetime
from pathlib import Path

import pytest

from fleetd.backtest.prices import PriceFileError, load_prices

DATA = Path(__file__).parent / "data"


def _utc(text: str) -> float:
    return datetime.fromisoformat(text).replace(tzinfo=UTC).timestamp()


def _write(tmp_path: Path, text: str, name: str = "prices.csv") -> Path:
    p = tmp_path / name
    p.write_text(text)
    return p


def test_ercot_rt_fall_back_day_has_25_hours_of_15_minute_intervals():
    s = load_prices(DATA / "ercot_rt_fall_back.csv", "HB_HOUSTON")
    assert (s.source, s.location) == ("ercot-rt", "HB_HOUSTON")
    assert len(s.intervals) == 100 and s.gaps == 0 and s.interval_s == 900
    assert s.span_s == 25 * 3600
    assert s.intervals[0].start == _utc("2025-11-02T05:00:00")  # midnight CDT
    assert s.intervals[0].usd_per_mwh == pytest.approx(21.01)
    assert all(b.start == a.end for a, b in zip(s.intervals, s.intervals[1:], strict=False))


def test_ercot_rt_spring_forward_day_has_23_hours():
    s = load_prices(DATA / "ercot_rt_spring_forward.csv", "hb_houston")  # the point name is case-blind
    assert len(s.intervals) == 92 and s.span_s == 23 * 3600 and s.gaps == 0
    assert s.intervals[0].start == _utc("2025-03-09T06:00:00")  # midnight CST


def test_ercot_file_with_several_points_needs_one_named():
    with pytest.raises(PriceFileError, match="holds 2 settlement points; pick one with --settlement-point"):
        load_prices(DATA / "ercot_rt_fall_back.csv")
    with pytest.raises(
        PriceFileError, match="no settlement point 'HB_NORTH'; the file has HB_HOUSTON, LZ_WEST"
    ):
        load_prices(DATA / "ercot_rt_fall_back.csv", "HB_NORTH")


def test_ercot_zip_as_ercot_publishes_it(tmp_path):
    buf = io.BytesIO()
    with zipfile.ZipFile(buf, "w") as z:
        z.writestr(
            "cdr.00012301.0000000000000000.20251103.SPPHLZNP6905.csv",
            (DATA / "ercot_rt_fall_back.csv").read_text(),
        )
    p = tmp_path / "spp.zip"
    p.write_bytes(buf.getvalue())
    zipped = load_prices(p, "LZ_WEST")
    plain = load_prices(DATA / "ercot_rt_fall_back.csv", "LZ_WEST")
    assert zipped.intervals == plain.intervals and zipped.source == "ercot-rt"


def test_ercot_day_ahead_is_hourly():
    s = load_prices(DATA / "ercot_dam.csv")  # one settlement point: no need to name it
    assert (s.source, s.location) == ("ercot-dam", "HB_HOUSTON")
    assert len(s.intervals) == 24 and s.interval_s == 3600
    assert s.intervals[0].start == _utc("2025-07-15T05:00:00")  # hour ending 01:00 CDT
    assert s.intervals[0].usd_per_mwh == 26.0


def test_ercot_bad_price_names_the_line(tmp_path):
    text = (DATA / "ercot_rt_spring_forward.csv").read_text().splitlines()
    text[3] = text[3].replace('"18.08"', '"n/a"')
    p = _write(tmp_path, "\n".join(text) + "\n")
    with pytest.raises(PriceFileError, match=r"line 4"):
        load_prices(p, "HB_HOUSTON")


def test_plain_csv_each_price_holds_until_the_next_row(tmp_path):
    p = _write(
        tmp_path,
        "timestamp,price_usd_per_mwh\n"
        "2025-08-04T05:00:00Z,20\n"
        "2025-08-04T00:15:00-05:00,35.5\n"  # an offset other than Z
        "1754285400,-3\n"  # unix seconds: 05:30Z; negative prices happen
        "\n",
    )
    s = load_prices(p)
    assert s.source == "csv" and s.location == ""
    assert [i.usd_per_mwh for i in s.intervals] == [20.0, 35.5, -3.0]
    assert [i.start for i in s.intervals] == [_utc("2025-08-04T05:00:00") + k * 900 for k in range(3)]
    assert s.intervals[-1].end - s.intervals[-1].start == 900  # the last row: the usual step


def test_plain_csv_rows_out_of_order_are_sorted_and_holes_counted(tmp_path):
    p = _write(
        tmp_path,
        "Timestamp,Price_USD_per_MWh\n"  # header names are case-blind
        "2025-08-04T01:00:00Z,30\n"
        "2025-08-04T00:00:00Z,10\n"
        "2025-08-04T05:00:00Z,50\n"
        "2025-08-04T02:00:00Z,40\n",
    )
    s = load_prices(p)
    assert [i.usd_per_mwh for i in s.intervals] == [10.0, 30.0, 40.0, 50.0]
    assert s.interval_s == 3600 and s.gaps == 1 and s.gap_s == 2 * 3600  # 03:00-05:00 missing
    assert s.span_s == 4 * 3600


@pytest.mark.parametrize(
    ("rows", "message"),
    [
        ("2025-08-04T00:00:00Z,10\n2025-08-04T00:15:00Z,abc\n", r"line 3: could not convert string to float"),
        (
            "2025-08-04T00:00:00Z,10\n2025-08-04 00:15,12\n",
            r"line 3: timestamp '2025-08-04 00:15' has no UTC offset",
        ),
        (
            "2025-08-04T00:00:00Z,10\nyesterday,12\n",
            r"line 3: timestamp 'yesterday' is neither ISO 8601 nor unix",
        ),
        ("2025-08-04T00:00:00Z,10\n2025-08-04T00:00:00Z,12\n", r"lines 2 and 3: the same timestamp twice"),
        ("2025-08-04T00:00:00Z,10\n", r"needs at least two rows"),
    ],
)
def test_plain_csv_bad_rows_are_errors_naming_the_line(tmp_path, rows, message):
    p = _write(tmp_path, "timestamp,price_usd_per_mwh\n" + rows)
    with pytest.raises(PriceFileError, match=message):
        load_prices(p)


def test_unknown_and_unreadable_files(tmp_path):
    with pytest.raises(PriceFileError, match="unknown price file"):
        load_prices(_write(tmp_path, "when,what\n1,2\n"))
    with pytest.raises(PriceFileError, match="cannot read"):
        load_prices(tmp_path / "absent.csv")
    with pytest.raises(PriceFileError, match="--settlement-point applies to ERCOT files only"):
        load_prices(_write(tmp_path, "timestamp,price_usd_per_mwh\n0,1\n900,2\n"), "HB_HOUSTON")
