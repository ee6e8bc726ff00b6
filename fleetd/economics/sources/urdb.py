"""An OpenEI Utility Rate Database record fetched by its label (`utility_rates`, API version 8)."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

import aiohttp

from fleetd.economics.sources.base import HttpSource, SourceError


class UrdbRate(HttpSource):
    """GETs one rate (`getpage=<label>`, `detail=full`); the record is imported by fleetd.economics.urdb."""

    name = "urdb"

    def __init__(
        self,
        label: str,
        api_key: str,
        base_url: str = "https://api.openei.org",
        *,
        version: int = 8,
        timeout_s: float = 20.0,
        session: aiohttp.ClientSession | None = None,
    ) -> None:
        if not label or not api_key:
            raise ValueError("a URDB rate needs its label and an OpenEI API key")
        super().__init__(timeout_s=timeout_s, session=session)
        self.label, self.api_key, self.version = label, api_key, version
        self.base = base_url.rstrip("/")

    async def fetch_record(self) -> Mapping[str, Any]:
        params = {
            "version": str(self.version),
            "format": "json",
            "detail": "full",
            "getpage": self.label,
            "api_key": self.api_key,
        }
        payload = await self.get_json(f"{self.base}/utility_rates", params=params)
        if not isinstance(payload, Mapping):
            raise SourceError(self.name, "reply is not a JSON object")
        error = payload.get("error")
        if error:  # OpenEI reports a bad key or query in the body
            message = error.get("message", error) if isinstance(error, Mapping) else error
            raise SourceError(self.name, f"OpenEI: {message}")
        items = payload.get("items")
        if not isinstance(items, list) or not items or not isinstance(items[0], Mapping):
            raise SourceError(self.name, f"no rate with label {self.label!r}")
        return items[0]
