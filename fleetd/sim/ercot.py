"""An emulator of ERCOT's MIS report download, serving real-time settlement point prices as ERCOT does.

Two endpoints, as on www.ercot.com: `/misapp/servlets/IceDocListJsonWS?reportTypeId=12301` (the document
list, JSON) and `/misdownload/servlets/mirDownload?doclookupId=ID` (a zip holding the CSV). The CSV has the
last `intervals` 15-minute intervals up to the one in progress, hour-ending and DST-flagged as ERCOT
publishes them. Past intervals are priced at `low`; the one in progress follows the scenario: `low` and
`high` alternating every `period_s` (0: always `low`), or a price set by hand (`price_now`). A new document
is listed whenever the prices change, so that clients refetch.
"""

from __future__ import annotations

import hashlib
import io
import time
import zipfile
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta

from aiohttp import web

from fleetd.economics.ercot import CENTRAL

INTERVAL_S = 900
HEADER = (
    "DeliveryDate,DeliveryHour,DeliveryInterval,SettlementPointName,SettlementPointType,"
    "SettlementPointPrice,DSTFlag"
)
DEFAULT_PORT = 8799


@dataclass(slots=True)
class PriceScenario:
    low: float = 25.0
    high: float = 180.0
    period_s: float = 0.0  # low and high alternate this often (0: low throughout)
    price_now: float | None = None  # set by hand (tests): the interval in progress is priced so

    def current(self, now: float) -> float:
        if self.price_now is not None:
            return self.price_now
        if self.period_s <= 0:
            return self.low
        return self.high if int(now // self.period_s) % 2 else self.low


def csv_rows(start: float, prices: list[float], settlement_point: str) -> str:
    """ERCOT's CSV for consecutive 15-minute intervals from `start` (UTC unix time)."""
    lines = [HEADER]
    for i, price in enumerate(prices):
        t = datetime.fromtimestamp(start + i * INTERVAL_S, UTC).astimezone(CENTRAL)
        repeated = t.fold == 1  # the second pass through the fall-back hour
        lines.append(
            f"{t:%m/%d/%Y},{t.hour + 1:d},{t.minute // 15 + 1:d},{settlement_point},HU,{price:.2f},"
            f"{'Y' if repeated else 'N'}"
        )
    return "\r\n".join(lines) + "\r\n"


class ErcotEmulator:
    """Serves the scenario's prices for one settlement point on host:port."""

    def __init__(
        self,
        host: str = "127.0.0.1",
        port: int = DEFAULT_PORT,
        *,
        settlement_point: str = "HB_HOUSTON",
        scenario: PriceScenario | None = None,
        intervals: int = 8,
        clock: object = time.time,
    ) -> None:
        self.host, self.port = host, port
        self.settlement_point = settlement_point.upper()
        self.scenario = scenario or PriceScenario()
        self.intervals = intervals
        self.clock = clock
        self.requests = 0
        self._docs: dict[str, bytes] = {}
        self._runner: web.AppRunner | None = None

    @property
    def base_url(self) -> str:
        return f"http://{self.host}:{self.port}"

    def document(self, now: float) -> tuple[str, bytes, datetime]:
        current = now - now % INTERVAL_S
        first = current - (self.intervals - 1) * INTERVAL_S
        prices = [self.scenario.low] * (self.intervals - 1) + [self.scenario.current(now)]
        text = csv_rows(first, prices, self.settlement_point)
        doc_id = str(int(hashlib.blake2b(text.encode(), digest_size=6).hexdigest(), 16))
        buf = io.BytesIO()
        stamp = datetime.fromtimestamp(now, UTC).astimezone(CENTRAL)
        stem = f"cdr.00012301.0000000000000000.{stamp:%Y%m%d.%H%M%S}.SPPHLZNP6905_{stamp:%Y%m%d_%H%M}"
        with zipfile.ZipFile(buf, "w", zipfile.ZIP_DEFLATED) as zf:
            zf.writestr(f"{stem}.csv", text)
        return doc_id, buf.getvalue(), stamp

    async def _list(self, request: web.Request) -> web.Response:
        self.requests += 1
        now = float(self.clock())  # type: ignore[operator]
        doc_id, body, stamp = self.document(now)
        if doc_id not in self._docs:
            self._docs = {doc_id: body, **dict(list(self._docs.items())[:20])}
        friendly = f"SPPHLZNP6905_{stamp:%Y%m%d_%H%M}_csv"
        doc = {
            "ExpiredDate": (stamp + timedelta(days=7)).isoformat(timespec="seconds"),
            "ILMStatus": "EXT",
            "SecurityStatus": "P",
            "ContentSize": str(len(body)),
            "Extension": "zip",
            "ReportTypeID": "12301",
            "FriendlyName": friendly,
            "ConstructedName": f"cdr.00012301.0000000000000000.{stamp:%Y%m%d.%H%M%S}.{friendly}.zip",
            "DocID": doc_id,
            "PublishDate": stamp.isoformat(timespec="seconds"),
            "ReportName": "Settlement Point Prices at Resource Nodes, Hubs and Load Zones",
        }
        return web.json_response({"ListDocsByRptTypeRes": {"DocumentList": [{"Document": doc}]}})

    async def _download(self, request: web.Request) -> web.Response:
        self.requests += 1
        body = self._docs.get(request.query.get("doclookupId", ""))
        if body is None:
            return web.Response(status=404, text="Document not found")
        return web.Response(body=body, content_type="application/x-zip-compressed")

    async def start(self) -> None:
        app = web.Application()
        app.router.add_get("/misapp/servlets/IceDocListJsonWS", self._list)
        app.router.add_get("/misdownload/servlets/mirDownload", self._download)
        self._runner = web.AppRunner(app, access_log=None)
        await self._runner.setup()
        site = web.TCPSite(self._runner, self.host, self.port)
        await site.start()
        if self.port == 0:
            self.port = site._server.sockets[0].getsockname()[1]  # type: ignore[union-attr]

    async def stop(self) -> None:
        if self._runner is not None:
            await self._runner.cleanup()
            self._runner = None

    async def __aenter__(self) -> ErcotEmulator:
        await self.start()
        return self

    async def __aexit__(self, *exc: object) -> None:
        await self.stop()
