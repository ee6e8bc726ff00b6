"""Generic driver for any miner that speaks the CGMiner API (read-only), and the parsers the family shares."""

from __future__ import annotations

import abc
import contextlib
import math
import time
from collections.abc import Iterator, Mapping
from typing import Any

from fleetd.drivers.base import Driver, Endpoint

from fleetd.model import Component, Fault, Hashboard, Identity, Pool, Reading, Snapshot
from fleetd.transport.cgminer import CGMinerAPI
from fleetd.transport.errors import CommandRejectedError, MalformedReplyError

__all__ = [
    "CGMinerDriver",
    "VersionProbe",
    "current_hashrate_ths",
    "first",
    "hashrate_ths",
    "num",
    "parse_pools",
    "reply_content",
    "section",
    "temperature_c",
    "to_ths",
]

# Multipliers from a firmware's hashrate unit to TH/s.
_UNIT_TO_THS = {"H": 1e-12, "KH": 1e-9, "MH": 1e-6, "GH": 1e-3, "TH": 1.0, "PH": 1e3}


def to_ths(value: Any, unit: str) -> float | None:
    """Convert a hashrate in `unit` ("GH", "GH/s", "MHS", "TH/s", ...) to TH/s; None if no number."""
    v = num(value)
    if v is None:
        return None
    u = unit.strip().upper().removesuffix("/S")
    if u.endswith("HS"):  # "GHS", "MHS" as in the "GHS 5s" keys
        u = u[:-1]
    try:
        return round(v * _UNIT_TO_THS[u], 9)  # 1 kH/s resolution; drops float noise from the scaling
    except KeyError:
        raise ValueError(f"unknown hashrate unit {unit!r}") from None


def num(value: Any) -> float | None:
    """A finite number from an int, float or numeric string; None for "", null, junk or inf/nan."""
    if value is None or isinstance(value, bool):
        return None
    if isinstance(value, float):
        v = value
    elif isinstance(value, int):
        if not -1e308 < value < 1e308:  # float() of a longer integer raises OverflowError
            return None
        v = float(value)
    else:
        try:
            v = float(str(value).strip().replace(",", ""))
        except (ValueError, OverflowError):
            return None
    return v if math.isfinite(v) else None


def section(reply: Mapping[str, Any] | None, name: str) -> list[Mapping[str, Any]]:
    """The list under `name` (e.g. "SUMMARY") of a reply, or []."""
    if not reply:
        return []
    value = reply.get(name)
    if isinstance(value, list):
        return [v for v in value if isinstance(v, Mapping)]
    if isinstance(value, Mapping):
        return [value]
    return []


def first(reply: Mapping[str, Any] | None, name: str) -> Mapping[str, Any]:
    items = section(reply, name)
    return items[0] if items else {}


def hashrate_ths(entry: Mapping[str, Any], window: str) -> float | None:
    """The hashrate for `window` ("5s", "av", "30m") from keys like "GHS 5s"/"MHS av", in TH/s."""
    for prefix in ("GHS ", "MHS ", "THS ", "KHS ", "PHS ", "HS "):
        key = prefix + window
        if key in entry:
            return to_ths(entry[key], prefix.strip())
    return None


def current_hashrate_ths(entry: Mapping[str, Any]) -> float | None:
    """The shortest-window hashrate an entry reports (5 s, else 30 s, 1 m, 5 m), in TH/s."""
    for window in ("5s", "30s", "1m", "5m"):
        rate = hashrate_ths(entry, window)
        if rate is not None:
            return rate
    return None


def temperature_c(value: Any) -> float | None:
    """A temperature; None for missing sensors (0, or cgminer's -273 placeholder)."""
    t = num(value)
    return t if t is not None and t > -100 and t != 0 else None


_POOL_STATUS = {
    "alive": "alive",
    "dead": "dead",
    "deed": "dead",
    "disabled": "disabled",
    "rejecting": "rejecting",
}


def parse_pools(reply: Mapping[str, Any] | None) -> tuple[Pool, ...]:
    """Configured pools from a `pools` reply; empty slots (no URL) are left out."""
    out = []
    for i, p in enumerate(section(reply, "POOLS")):
        url = str(p.get("URL") or "").strip()
        if not url:
            continue
        word = str(p.get("Status") or "").strip().lower()
        out.append(
            Pool(
                index=int(num(p.get("POOL")) or i),
                url=url,
                user=str(p.get("User") or ""),
                status=_POOL_STATUS.get(word, word),
                active=bool(p.get("Stratum Active", False)),
                accepted=int(num(p.get("Accepted")) or 0),
                rejected=int(num(p.get("Rejected")) or 0),
                stale=int(num(p.get("Stale")) or 0),
            )
        )
    return tuple(out)


def _model_and_firmware(version: Mapping[str, Any]) -> tuple[str, str]:
    model = str(version.get("Type") or version.get("PROD") or version.get("Model") or "").strip()
    for impl in ("CGMiner", "BMMiner", "BFGMiner", "SGMiner", "LUXminer", "BOSer"):
        if impl in version:
            return model or impl, str(version[impl])
    return model or "cgminer", str(version.get("Miner") or "")


@contextlib.contextmanager
def reply_content(host: str) -> Iterator[None]:
    """Turn a pure parser's surprise at a reply's content into a MalformedReplyError naming the host."""
    try:
        yield
    except (ValueError, TypeError, KeyError, AttributeError, ArithmeticError) as exc:
        raise MalformedReplyError(f"unexpected reply content: {exc}", host=host, command="parse") from None


class VersionProbe(abc.ABC):
    """Detection for the CGMiner family: one `version` reply decides, through the pure `from_version`.

    `fleetd.drivers.detect` reads `version` once per host and hands it to every such driver.
    """

    @classmethod
    async def probe(cls, endpoint: Endpoint) -> Identity | None:
        api = CGMinerAPI(endpoint.host, endpoint.api_port, timeouts=endpoint.timeouts)
        try:
            reply = await api.command("version")
        except CommandRejectedError:
            return None  # speaks the API but not `version`: not one of ours
        return cls.from_version(reply, host=endpoint.host)

    @classmethod
    @abc.abstractmethod
    def from_version(cls, reply: Mapping[str, Any], *, host: str = "") -> Identity | None:
        """Pure: the identity a `version` reply shows if this driver speaks to that miner, else None."""


class CGMinerDriver(VersionProbe, Driver):
    """Read-only driver for anything answering the CGMiner API: summary, devs and pools."""

    name = "cgminer"
    vendor = "generic"
    hardware = "any"
    firmware = "anything else that speaks the CGMiner API"
    models = ("any",)
    reads = "summary/devs/pools per poll"
    controls = "read-only"
    READS = ("version", "summary", "devs", "pools")

    def __init__(self, endpoint: Endpoint) -> None:
        super().__init__(endpoint)
        self.api = CGMinerAPI(endpoint.host, endpoint.api_port, timeouts=endpoint.timeouts)

    @classmethod
    def from_version(cls, reply: Mapping[str, Any], *, host: str = "") -> Identity | None:
        """Pure: the identity a `version` reply shows if it has a VERSION section, else None."""
        if not section(reply, "VERSION"):
            return None
        return cls.parse_identity({"rpc_version": reply}, host=host)

    @classmethod
    def parse_identity(cls, responses: Mapping[str, Any], *, host: str = "") -> Identity:
        version = first(responses.get("rpc_version"), "VERSION")
        model, firmware = _model_and_firmware(version)
        return Identity(
            vendor=cls.vendor,
            model=model,
            firmware=firmware,
            api_version=str(version.get("API") or ""),
            driver=cls.name,
            host=host,
            api="cgminer",
        )

    async def raw_responses(self) -> dict[str, Any]:
        replies = await self.api.commands(*self.READS, optional=("devs", "pools"))
        return {f"rpc_{cmd}": reply for cmd, reply in replies.items()}

    async def identity(self) -> Identity:
        return self.parse_identity({"rpc_version": await self.api.command("version")}, host=self.host)

    async def snapshot(self) -> Snapshot:
        return (await self.read()).snapshot

    async def read(self) -> Reading:
        return self.parse_responses(await self.raw_responses(), host=self.host, polled_at=time.time())

    @classmethod
    def parse_responses(
        cls, responses: Mapping[str, Any], *, host: str = "", polled_at: float = 0.0
    ) -> Reading:
        with reply_content(host):
            return Reading(cls.parse_identity(responses, host=host), cls._snapshot(responses, polled_at))

    @classmethod
    def _snapshot(cls, responses: Mapping[str, Any], polled_at: float) -> Snapshot:
        summary = first(responses.get("rpc_summary"), "SUMMARY")
        boards = []
        temps = []
        for i, dev in enumerate(section(responses.get("rpc_devs"), "DEVS")):
            temp = temperature_c(dev.get("Temperature"))
            if temp is not None:
                temps.append(temp)
            status = str(dev.get("Status") or "").lower()
            enabled = str(dev.get("Enabled", "Y")).upper() == "Y"
            boards.append(
                Hashboard(
                    index=i,
                    hashrate_ths=current_hashrate_ths(dev),
                    chip_temp_c=temp,
                    ok=status in ("alive", "") and enabled,
                    status=status if enabled else "disabled",
                )
            )
        rate = current_hashrate_ths(summary)
        if rate is None and boards and all(b.hashrate_ths is not None for b in boards):
            rate = round(sum(b.hashrate_ths or 0.0 for b in boards), 9)
        avg = hashrate_ths(summary, "av")
        if avg is None and boards:
            avgs = [hashrate_ths(d, "av") for d in section(responses.get("rpc_devs"), "DEVS")]
            avg = (
                round(sum(a for a in avgs if a is not None), 9) if all(a is not None for a in avgs) else None
            )
        errors = tuple(
            Fault(
                code="device_" + b.status,
                message=f"device {b.index} is {b.status}",
                component=Component.BOARD,
            )
            for b in boards
            if not b.ok and b.status
        )
        elapsed = num(summary.get("Elapsed"))
        return Snapshot(
            hashrate_ths=rate,
            hashrate_avg_ths=avg,
            is_mining=bool(rate and rate > 0),
            hashboards=tuple(boards),
            pools=parse_pools(responses.get("rpc_pools")),
            errors=errors,
            uptime_s=int(elapsed) if elapsed is not None else None,
            polled_at=polled_at,
            temp_c=max(temps) if temps else None,
        )
