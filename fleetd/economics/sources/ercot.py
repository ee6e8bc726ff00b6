"""ERCOT real-time settlement point prices: the MIS document list, then the newest zipped CSV."""

from __future__ import annotations

import time

import aiohttp

from fleetd.economics.ercot import (
    INTERVAL,
    RT_SPP_REPORT_TYPE,
    ErcotFormatError,
    newest_csv_document,
    parse_doc_list,
    parse_spp_csv,
    read_zipped_csv,
)
from fleetd.economics.sources.base import HttpSource, PriceSource, SourceError, check_time
from fleetd.economics.values import PricePoint


class ErcotRealtime(HttpSource, PriceSource):
    """15-minute real-time prices of one settlement point (hub, load zone or resource node)."""

    name = "ercot"

    def __init__(
        self,
        settlement_point: str,
        base_url: str = "https://www.ercot.com",
        *,
        report_type_id: int = RT_SPP_REPORT_TYPE,
        timeout_s: float = 20.0,
        session: aiohttp.ClientSession | None = None,
    ) -> None:
        super().__init__(timeout_s=timeout_s, session=session)
        self.settlement_point = settlement_point.upper()
        self.base = base_url.rstrip("/")
        self.report_type_id = report_type_id
        self._doc_id = ""
        self._points: list[PricePoint] = []

    async def fetch(self) -> list[PricePoint]:
        listing = await self.get_json(
            f"{self.base}/misapp/servlets/IceDocListJsonWS", params={"reportTypeId": str(self.report_type_id)}
        )
        try:
            doc = newest_csv_document(parse_doc_list(listing))
        except ErcotFormatError as exc:
            raise SourceError(self.name, str(exc)) from None
        if doc is None:
            msg = f"document list for report {self.report_type_id} has no CSV document"
            raise SourceError(self.name, msg)
        if doc.doc_id == self._doc_id:
            return list(self._points)  # nothing new published; the points keep their own times
        data = await self.get_bytes(
            f"{self.base}/misdownload/servlets/mirDownload", params={"doclookupId": doc.doc_id}
        )
        try:
            points = parse_spp_csv(read_zipped_csv(data), self.settlement_point, source=self.name)
        except ErcotFormatError as exc:
            raise SourceError(self.name, f"document {doc.doc_id}: {exc}") from None
        if not points:
            raise SourceError(self.name, f"document {doc.doc_id} has no prices for {self.settlement_point}")
        try:  # real-time prices are published after their interval: one starting later is an error
            check_time(points[-1].start, time.time(), "newest interval start", INTERVAL.total_seconds())
        except ValueError as exc:
            raise SourceError(self.name, f"document {doc.doc_id}: {exc}") from None
        self._doc_id, self._points = doc.doc_id, points
        return list(points)
