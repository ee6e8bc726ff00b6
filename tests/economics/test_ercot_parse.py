"""ERCOT hour-ending times in US/Central across both DST transitions, and the document formats."""

from __future__ import annotations

import itertools
from datetime import UTC, date, datetime, timedelta

import pytest

from fleetd.economics.ercot import (
    ErcotFormatError,
    hour_start,
    interval_start,
    newest_csv_document,
    parse_doc_list,
    parse_spp_csv,
    read_zipped_csv,
)

from .conftest import zipped

HEADER = (
    "DeliveryDate,DeliveryHour,DeliveryInterval,SettlementPointName,SettlementPointType,"
    "SettlementPointPrice,DSTFlag"
)


def utc(*args: int) -> datetime:
    return datetime(*args, tzinfo=UTC)


def day_csv(day: date, hours: list[tuple[int, str]], point: str = "HB_HOUSTON") -> str:
    rows = [HEADER]
    for n, (he, flag) in enumerate(hours):
        for interval in range(1, 5):
            price = 20 + n + interval / 10
            rows.append(f"{day:%m/%d/%Y},{he},{interval},{point},HU,{price:.2f},{flag}")
            rows.append(f"{day:%m/%d/%Y},{he},{interval},LZ_WEST,LZ,999.00,{flag}")
    return "\n".join(rows) + "\n"


def test_hour_ending_on_an_ordinary_summer_day() -> None:
    d = date(2024, 7, 1)  # CDT, UTC-5
    assert hour_start(d, 1, False) == utc(2024, 7, 1, 5)
    assert hour_start(d, 24, False) == utc(2024, 7, 2, 4)
    assert interval_start(d, 24, 4, False) == utc(2024, 7, 2, 4, 45)
    assert interval_start(date(2024, 1, 15), 1, 1, False) == utc(2024, 1, 15, 6)  # CST, UTC-6


def test_fall_back_repeated_hour_is_told_apart_by_dstflag() -> None:
    d = date(2024, 11, 3)  # 02:00 CDT -> 01:00 CST
    assert hour_start(d, 1, False) == utc(2024, 11, 3, 5)
    assert hour_start(d, 2, False) == utc(2024, 11, 3, 6)  # 01:00 CDT
    assert hour_start(d, 2, True) == utc(2024, 11, 3, 7)  # 01:00 CST, the repeated hour (DSTFlag=Y)
    assert hour_start(d, 3, False) == utc(2024, 11, 3, 8)
    assert interval_start(d, 2, 4, True) == utc(2024, 11, 3, 7, 45)


def test_spring_forward_skipped_hour_is_anchored_on_its_end() -> None:
    d = date(2024, 3, 10)  # 02:00 CST -> 03:00 CDT: the hour after HE1 is labelled HE3
    assert hour_start(d, 1, False) == utc(2024, 3, 10, 6)
    assert hour_start(d, 3, False) == utc(2024, 3, 10, 7)
    assert hour_start(d, 4, False) == utc(2024, 3, 10, 8)
    assert interval_start(d, 3, 2, False) == utc(2024, 3, 10, 7, 15)


@pytest.mark.parametrize(("he", "interval"), [(0, 1), (25, 1), (1, 0), (1, 5)])
def test_out_of_range_labels_are_errors(he: int, interval: int) -> None:
    with pytest.raises(ErcotFormatError):
        interval_start(date(2024, 7, 1), he, interval, False)


def test_a_25_hour_day_gives_100_contiguous_intervals() -> None:
    d = date(2024, 11, 3)
    hours = [(1, "N"), (2, "N"), (2, "Y")] + [(h, "N") for h in range(3, 25)]
    points = parse_spp_csv(day_csv(d, hours), "hb_houston")
    assert len(points) == 100
    assert points[0].start == utc(2024, 11, 3, 5).timestamp()
    assert points[-1].end == utc(2024, 11, 4, 6).timestamp()
    assert all(a.end == b.start for a, b in itertools.pairwise(points))
    assert {p.location for p in points} == {"HB_HOUSTON"}
    assert all(p.unit == "USD/MWh" and p.source == "ercot" for p in points)


def test_a_23_hour_day_gives_92_contiguous_intervals() -> None:
    d = date(2024, 3, 10)
    hours = [(1, "N")] + [(h, "N") for h in range(3, 25)]
    points = parse_spp_csv(day_csv(d, hours), "HB_HOUSTON")
    assert len(points) == 92
    assert points[0].start == utc(2024, 3, 10, 6).timestamp()
    assert points[-1].end == utc(2024, 3, 11, 5).timestamp()
    assert all(a.end == b.start for a, b in itertools.pairwise(points))
    assert (points[-1].end - points[0].start) == timedelta(hours=23).total_seconds()


def test_csv_bad_cases() -> None:
    with pytest.raises(ErcotFormatError, match="lacks columns"):
        parse_spp_csv("a,b\n1,2\n", "HB_HOUSTON")
    bad = HEADER + "\n07/01/2024,1,1,HB_HOUSTON,HU,not-a-price,N\n"
    with pytest.raises(ErcotFormatError, match="line 2"):
        parse_spp_csv(bad, "HB_HOUSTON")
    assert parse_spp_csv(HEADER + "\n", "HB_HOUSTON") == []


def doc(doc_id: str, published: str, name: str) -> dict:
    return {
        "Document": {
            "ExpiredDate": "2024-11-10T23:59:59-06:00",
            "ILMStatus": "EXT",
            "SecurityStatus": "P",
            "ContentSize": "42597",
            "Extension": "zip",
            "ReportTypeID": "12301",
            "FriendlyName": name,
            "ConstructedName": f"cdr.00012301.0000000000000000.20241103.021502.{name}.zip",
            "DocID": doc_id,
            "PublishDate": published,
            "ReportName": "Settlement Point Prices at Resource Nodes, Hubs and Load Zones",
        }
    }


def doc_list(*docs: dict) -> dict:
    return {"ListDocsByRptTypeRes": {"DocumentList": list(docs)}}


def test_doc_list_newest_csv() -> None:
    listing = doc_list(
        doc("101", "2024-11-03T02:00:03-06:00", "SPPHLZNP6905_20241103_0200_csv"),
        doc("103", "2024-11-03T02:15:02-06:00", "SPPHLZNP6905_20241103_0215_xml"),
        doc("102", "2024-11-03T02:15:02-06:00", "SPPHLZNP6905_20241103_0215_csv"),
    )
    docs = parse_doc_list(listing)
    assert newest_csv_document(docs).doc_id == "102"  # type: ignore[union-attr]
    single = {"ListDocsByRptTypeRes": {"DocumentList": doc("7", "2024-11-03T02:15:02-06:00", "x_csv")}}
    assert parse_doc_list(single)[0].doc_id == "7"


@pytest.mark.parametrize(
    "payload",
    [{}, {"ListDocsByRptTypeRes": {}}, {"ListDocsByRptTypeRes": {"DocumentList": [{"Document": {}}]}}, []],
)
def test_doc_list_malformed(payload: object) -> None:
    with pytest.raises(ErcotFormatError):
        parse_doc_list(payload)


def test_zip_reading() -> None:
    assert read_zipped_csv(zipped("a.csv", "x,y\n")) == "x,y\n"
    with pytest.raises(ErcotFormatError, match="not a zip"):
        read_zipped_csv(b"<html>maintenance</html>")
    with pytest.raises(ErcotFormatError, match=r"no \.csv"):
        read_zipped_csv(zipped("a.xml", "<x/>"))


def test_quoted_fields_as_ercot_writes_them() -> None:
    text = (
        '"DeliveryDate","DeliveryHour","DeliveryInterval","SettlementPointName","SettlementPointType",'
        '"SettlementPointPrice","DSTFlag"\r\n'
        '"11/03/2024","02","4","HB_HUBAVG","SH","18.07","Y"\r\n'
        '"11/03/2024","02","4","HB_HOUSTON","HU","-2.50","Y"\r\n'
    )
    (p,) = parse_spp_csv(text, "HB_HOUSTON")
    assert p.per_mwh == -2.5  # negative prices are real and kept
    assert p.start == utc(2024, 11, 3, 7, 45).timestamp()


def test_quoted_zero_padded_csv_as_ercot_publishes_it() -> None:
    # MIS CSVs quote every field and zero-pad the hour; a negative price is an ordinary value
    text = (
        '"DeliveryDate","DeliveryHour","DeliveryInterval","SettlementPointName","SettlementPointType",'
        '"SettlementPointPrice","DSTFlag"\r\n'
        '"07/01/2024","01","2","HB_WEST","HU","-3.17","N"\r\n'
    )
    (p,) = parse_spp_csv(text, "HB_WEST")
    assert p.per_mwh == -3.17 and p.start == utc(2024, 7, 1, 5, 15).timestamp()
