"""ERCOT real-time settlement point prices: document list and CSV parsing, hour-ending times in US/Central."""

from __future__ import annotations

import csv
import io
import zipfile
from collections.abc import Mapping
from dataclasses import dataclass
from datetime import date, datetime, timedelta
from typing import Any
from zoneinfo import ZoneInfo

from fleetd.economics.units import check_per_mwh
from fleetd.economics.values import PricePoint

CENTRAL = ZoneInfo("America/Chicago")
UTC = ZoneInfo("UTC")
RT_SPP_REPORT_TYPE = 12301  # NP6-905-CD, settlement point prices at resource nodes, hubs and load zones
INTERVAL = timedelta(minutes=15)
_COLUMNS = ("DeliveryDate", "DeliveryHour", "DeliveryInterval", "SettlementPointName", "SettlementPointPrice")


class ErcotFormatError(ValueError):
    """An ERCOT document list or CSV that does not have the expected shape."""


@dataclass(frozen=True, slots=True)
class ErcotDocument:
    doc_id: str
    published: datetime
    friendly_name: str
    constructed_name: str


def _exists(local: datetime) -> bool:
    """False for wall times skipped by the spring-forward gap."""
    back = local.astimezone(UTC).astimezone(local.tzinfo)
    return back.replace(tzinfo=None) == local.replace(tzinfo=None)


def hour_start(delivery_date: date, hour_ending: int, repeated: bool) -> datetime:
    """UTC start of an hour-ending (1-24) delivery hour in US/Central.

    `repeated` (DSTFlag=Y) marks the second, standard-time pass of the hour repeated in November. In March
    the hour after HE1 is labelled HE3: its nominal start (02:00) does not exist, so it is anchored on its
    end (03:00 CDT) instead.
    """
    if not 1 <= hour_ending <= 24:
        raise ErcotFormatError(f"DeliveryHour {hour_ending} out of range 1-24")
    midnight = datetime(delivery_date.year, delivery_date.month, delivery_date.day)
    start_local = (midnight + timedelta(hours=hour_ending - 1)).replace(tzinfo=CENTRAL, fold=int(repeated))
    if _exists(start_local):
        return start_local.astimezone(UTC)
    end_local = (midnight + timedelta(hours=hour_ending)).replace(tzinfo=CENTRAL)
    return end_local.astimezone(UTC) - timedelta(hours=1)


def interval_start(delivery_date: date, hour_ending: int, interval: int, repeated: bool) -> datetime:
    """UTC start of 15-minute interval 1-4 of an hour-ending delivery hour."""
    if not 1 <= interval <= 4:
        raise ErcotFormatError(f"DeliveryInterval {interval} out of range 1-4")
    return hour_start(delivery_date, hour_ending, repeated) + (interval - 1) * INTERVAL


def parse_doc_list(payload: Any) -> list[ErcotDocument]:
    """Documents of an `IceDocListJsonWS` reply, newest first."""
    try:
        entries = payload["ListDocsByRptTypeRes"]["DocumentList"]
    except (KeyError, TypeError):
        raise ErcotFormatError("ERCOT document list lacks ListDocsByRptTypeRes.DocumentList") from None
    if isinstance(entries, Mapping):  # a single document is not always wrapped in a list
        entries = [entries]
    if not isinstance(entries, list):
        raise ErcotFormatError("ERCOT DocumentList is not a list")
    docs = []
    for entry in entries:
        try:
            d = entry["Document"]
            docs.append(
                ErcotDocument(
                    doc_id=str(d["DocID"]),
                    published=datetime.fromisoformat(d["PublishDate"]),
                    friendly_name=str(d.get("FriendlyName", "")),
                    constructed_name=str(d.get("ConstructedName", "")),
                )
            )
        except (KeyError, TypeError, ValueError) as exc:
            raise ErcotFormatError(f"ERCOT document entry malformed: {exc!r}") from None
    docs.sort(key=lambda d: d.published, reverse=True)
    return docs


def newest_csv_document(docs: list[ErcotDocument]) -> ErcotDocument | None:
    """The newest CSV edition (each report is listed as _csv and _xml zips)."""
    for d in docs:
        name = (d.friendly_name or d.constructed_name).lower()
        if "csv" in name:
            return d
    return None


def read_zipped_csv(data: bytes) -> str:
    try:
        with zipfile.ZipFile(io.BytesIO(data)) as zf:
            names = [n for n in zf.namelist() if n.lower().endswith(".csv")]
            if not names:
                raise ErcotFormatError("ERCOT zip holds no .csv file")
            return zf.read(names[0]).decode("utf-8-sig")
    except zipfile.BadZipFile:
        raise ErcotFormatError("ERCOT download is not a zip file") from None


def parse_spp_csv(
    text: str, settlement_point: str, *, source: str = "ercot", currency: str = "USD"
) -> list[PricePoint]:
    """15-minute prices of one settlement point, sorted by start."""
    reader = csv.DictReader(io.StringIO(text))
    missing = [c for c in _COLUMNS if c not in (reader.fieldnames or ())]
    if missing:
        raise ErcotFormatError(f"ERCOT CSV lacks columns {missing}")
    points = []
    wanted = settlement_point.upper()
    for n, row in enumerate(reader, start=2):
        if row["SettlementPointName"].strip().upper() != wanted:
            continue
        try:
            day = datetime.strptime(row["DeliveryDate"].strip(), "%m/%d/%Y").date()
            start = interval_start(
                day,
                int(row["DeliveryHour"]),
                int(row["DeliveryInterval"]),
                (row.get("DSTFlag") or "N").strip().upper() == "Y",
            ).timestamp()
            price = check_per_mwh(float(row["SettlementPointPrice"]), "SettlementPointPrice")
        except (ValueError, TypeError) as exc:
            raise ErcotFormatError(f"ERCOT CSV line {n}: {exc}") from None
        points.append(PricePoint(start, start + INTERVAL.total_seconds(), price, currency, source, wanted))
    points.sort(key=lambda p: p.start)
    return points
