"""Generic electricity price feeds: an HTTP endpoint (JSON or CSV, configurable fields) and an MQTT topic."""

from __future__ import annotations

import asyncio
import csv
import io
import json
import logging
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import aiohttp

from fleetd.economics.sources.base import (
    HttpSource,
    PriceSource,
    SourceError,
    as_number,
    check_time,
    dig,
    parse_time,
    shown_url,
)
from fleetd.economics.units import check_per_mwh, to_per_mwh
from fleetd.economics.values import PricePoint

log = logging.getLogger(__name__)
MAX_AHEAD_S = 2 * 86400.0  # forward (day-ahead) prices are fine; a start further out is a feed error


@dataclass(frozen=True, slots=True)
class FeedFormat:
    """Where the numbers are in a payload.

    JSON: `items_path` points at a list of records (empty: the payload is one record); `value_path`,
    `time_path` and `end_path` are dotted paths inside a record. CSV: the paths are column names.
    Without `time_path` the receive time is used; without `end_path` a point lasts `interval_s`.
    """

    value_path: str = "price"
    time_path: str = ""
    end_path: str = ""
    items_path: str = ""
    unit: str = "per_mwh"  # per_mwh | per_kwh | cents_per_kwh
    interval_s: float = 300.0
    kind: str = "json"  # json | csv | number (a bare number, MQTT only)

    def value(self, raw: Any, what: str) -> float:
        return check_per_mwh(to_per_mwh(as_number(raw, what), self.unit), what)

    def record_point(self, record: Any, received: float, source: str, currency: str) -> PricePoint:
        value = self.value(dig(record, self.value_path), self.value_path)
        start = received
        if self.time_path:
            start = check_time(parse_time(dig(record, self.time_path)), received, self.time_path, MAX_AHEAD_S)
        end = parse_time(dig(record, self.end_path)) if self.end_path else start + self.interval_s
        if end <= start:
            raise ValueError(f"interval end {end} is not after start {start}")
        return PricePoint(start, end, value, currency, source)

    def parse(self, body: str, received: float, source: str, currency: str) -> list[PricePoint]:
        """Points from one payload, sorted by start; ValueError/KeyError on a malformed payload."""
        if not body.strip():
            raise ValueError("empty payload")
        if self.kind == "number":
            v = self.value(body.strip(), "payload")
            return [PricePoint(received, received + self.interval_s, v, currency, source)]
        if self.kind == "csv":
            rows = list(csv.DictReader(io.StringIO(body)))
            if not rows:
                raise ValueError("CSV has no data rows")
            records: list[Any] = rows
        elif self.kind == "json":
            data = json.loads(body)
            if self.items_path:
                items = dig(data, self.items_path)
                if not isinstance(items, list):
                    raise ValueError(f"{self.items_path} is not a list")
                records = items
            else:
                records = [data]
            if not records:
                raise ValueError("no records")
        else:
            raise ValueError(f"unknown feed format {self.kind!r}")
        points = [self.record_point(r, received, source, currency) for r in records]
        points.sort(key=lambda p: p.start)
        return points


class HttpFeed(HttpSource, PriceSource):
    """Polls a URL returning JSON or CSV prices."""

    def __init__(
        self,
        url: str,
        fmt: FeedFormat,
        *,
        name: str = "http-feed",
        currency: str = "USD",
        headers: dict[str, str] | None = None,
        timeout_s: float = 10.0,
        session: aiohttp.ClientSession | None = None,
    ) -> None:
        super().__init__(timeout_s=timeout_s, session=session)
        self.name = name
        self.url = url
        self.fmt = fmt
        self.currency = currency
        self.headers = headers or {}

    async def fetch(self) -> list[PricePoint]:
        body = await self.get_text(self.url, headers=self.headers)
        try:
            return self.fmt.parse(body, time.time(), self.name, self.currency)
        except (KeyError, ValueError, TypeError) as exc:
            raise SourceError(self.name, f"malformed payload from {shown_url(self.url)}: {exc!r}") from None


class MqttFeed(PriceSource):
    """Subscribes to a topic; each message becomes a price point handed to `on_points` on the event loop."""

    def __init__(
        self,
        host: str,
        topic: str,
        fmt: FeedFormat,
        *,
        port: int = 1883,
        name: str = "mqtt-feed",
        currency: str = "USD",
        username: str = "",
        password: str = "",
        keepalive_s: int = 30,
        connect_timeout_s: float = 10.0,
    ) -> None:
        self.name = name
        self.host, self.port, self.topic = host, port, topic
        self.fmt = fmt
        self.currency = currency
        self.username, self.password = username, password
        self.keepalive_s = keepalive_s
        self.connect_timeout_s = connect_timeout_s
        self.error = ""
        self._client: Any = None
        self._points: list[PricePoint] = []
        self._lock = threading.Lock()
        self.on_points: Callable[[list[PricePoint]], None] | None = None

    async def start(self) -> None:
        """Connect and subscribe; SourceError when the broker cannot be reached in time."""
        import paho.mqtt.client as mqtt

        loop = asyncio.get_running_loop()
        subscribed: asyncio.Future[None] = loop.create_future()

        def done(exc: BaseException | None) -> None:
            if not subscribed.done():
                if exc is None:
                    subscribed.set_result(None)
                else:
                    subscribed.set_exception(exc)

        client = mqtt.Client(mqtt.CallbackAPIVersion.VERSION2, client_id="", clean_session=True)
        if self.username:
            client.username_pw_set(self.username, self.password)

        def on_connect(c: Any, userdata: Any, flags: Any, reason: Any, props: Any) -> None:
            if reason.is_failure:
                loop.call_soon_threadsafe(done, SourceError(self.name, f"broker refused: {reason}"))
                return
            c.subscribe(self.topic, qos=1)

        def on_subscribe(c: Any, userdata: Any, mid: Any, reasons: Any, props: Any) -> None:
            loop.call_soon_threadsafe(done, None)

        def on_message(c: Any, userdata: Any, msg: Any) -> None:
            try:
                points = self.fmt.parse(msg.payload.decode("utf-8"), time.time(), self.name, self.currency)
            except (KeyError, ValueError, TypeError, UnicodeDecodeError) as exc:
                self.error = f"{self.name}: malformed message on {msg.topic}: {exc!r}"
                log.warning("%s", self.error)
                return
            self.error = ""
            with self._lock:
                self._points.extend(points)
            if self.on_points is not None:
                loop.call_soon_threadsafe(self.on_points, points)

        client.on_connect = on_connect
        client.on_subscribe = on_subscribe
        client.on_message = on_message
        try:
            await asyncio.wait_for(
                loop.run_in_executor(None, client.connect, self.host, self.port, self.keepalive_s),
                self.connect_timeout_s,
            )
        except (OSError, TimeoutError) as exc:
            msg = f"cannot connect to {self.host}:{self.port}: {exc or 'timeout'}"
            raise SourceError(self.name, msg) from None
        client.loop_start()
        self._client = client
        try:
            await asyncio.wait_for(subscribed, self.connect_timeout_s)
        except TimeoutError:
            await self.close()
            msg = f"no subscription to {self.topic} within {self.connect_timeout_s}s"
            raise SourceError(self.name, msg) from None
        except SourceError:
            await self.close()
            raise

    async def fetch(self) -> list[PricePoint]:
        """Points received since the last call (pushed messages, drained)."""
        if self._client is None:
            await self.start()
        with self._lock:
            points, self._points = self._points, []
        return sorted(points, key=lambda p: p.start)

    async def close(self) -> None:
        client, self._client = self._client, None
        if client is not None:
            client.disconnect()
            await asyncio.to_thread(client.loop_stop)  # joins the network thread
