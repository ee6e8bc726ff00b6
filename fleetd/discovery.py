"""Finding miners: scan-target parsing (pure) and a bounded-concurrency scanner over `detect()`.

Targets are CIDRs (`10.0.0.0/24`), ranges (`10.0.0.1-10.0.0.50`, `10.0.0.1-50`), single addresses or
host names, comma/space separated, or `@file` with one target per line (`#` comments). Any target may
end in `:PORT` to override the API port for it (`[v6addr]:PORT` for IPv6). Addresses are merged into
disjoint ranges, so overlapping targets are scanned once and the count is exact before anything runs.
"""

from __future__ import annotations

import asyncio
import contextlib
import ipaddress
import re
from collections.abc import Callable, Iterable, Iterator
from dataclasses import dataclass, field, fields, replace
from pathlib import Path

from fleetd.drivers import Credentials, Driver, Endpoint, Timeouts, identify
from fleetd.model import Identity
from fleetd.transport.errors import DeviceError, DeviceTimeoutError, UnreachableError

MAX_ADDRESSES = 65_536  # a scan larger than this needs force=True (`--force`)
# Sockets one host may hold open at once while every driver probes it (API, web, v3 ports).
SOCKETS_PER_HOST = 4

_LABEL = r"[A-Za-z0-9](?:[A-Za-z0-9-]{0,61}[A-Za-z0-9])?"
_HOSTNAME = re.compile(rf"^(?=.{{1,253}}$){_LABEL}(?:\.{_LABEL})*\.?$")
_NUMERIC = set("0123456789.-")


class TargetError(ValueError):
    """A scan target that cannot be understood; the message is one line for the user."""


@dataclass(frozen=True, slots=True)
class Target:
    """One address to probe; `api_port` is None unless the target overrode it."""

    host: str
    api_port: int | None = None


@dataclass(slots=True)
class TargetSet:
    """Parsed targets: disjoint address ranges per port override, plus host names.

    Iterates addresses in numeric order within each port override, then host names.
    """

    # (version, port override) -> inclusive (first, last) integer ranges, merged on demand
    ranges: dict[tuple[int, int | None], list[tuple[int, int]]] = field(default_factory=dict)
    names: list[Target] = field(default_factory=list)
    _merged: bool = True

    def __len__(self) -> int:
        self._merge()
        return sum(b - a + 1 for spans in self.ranges.values() for a, b in spans) + len(self.names)

    def __iter__(self) -> Iterator[Target]:
        self._merge()
        for (version, port), spans in sorted(self.ranges.items(), key=lambda kv: (kv[0][0], kv[0][1] or 0)):
            make = ipaddress.IPv4Address if version == 4 else ipaddress.IPv6Address
            for a, b in spans:
                for n in range(a, b + 1):
                    yield Target(str(make(n)), port)
        yield from self.names

    def _add(self, version: int, port: int | None, first: int, last: int) -> None:
        self.ranges.setdefault((version, port), []).append((first, last))
        self._merged = False

    def _merge(self) -> None:
        if self._merged:
            return
        for spans in self.ranges.values():
            spans.sort()
            merged: list[tuple[int, int]] = []
            for a, b in spans:
                if merged and a <= merged[-1][1] + 1:
                    merged[-1] = (merged[-1][0], max(merged[-1][1], b))
                else:
                    merged.append((a, b))
            spans[:] = merged
        self._merged = True


def split_port(spec: str) -> tuple[str, int | None]:
    """`host:port` -> (host, port); `[v6]:port` for IPv6; a bare IPv6 address has no port."""
    if spec.startswith("["):
        host, sep, rest = spec[1:].partition("]")
        if not sep or (rest and not rest.startswith(":")):
            raise TargetError(f"bad target {spec!r}: expected [IPv6]:PORT")
        return host, _port(spec, rest[1:]) if rest else None
    if spec.count(":") == 1:
        host, _, port = spec.partition(":")
        return host, _port(spec, port)
    return spec, None


def _port(spec: str, text: str) -> int:
    if not text.isdigit() or not 0 < int(text) < 65536:
        raise TargetError(f"bad target {spec!r}: port must be 1-65535")
    return int(text)


def _tokens(specs: Iterable[str], *, _depth: int = 0) -> Iterator[str]:
    for spec in specs:
        for token in re.split(r"[,\s]+", spec.strip()):
            if not token:
                continue
            if token.startswith("@"):
                if _depth:
                    raise TargetError(f"bad target {token!r}: @file inside a target file")
                path = Path(token[1:])
                try:
                    text = path.read_text()
                except OSError as exc:
                    reason = exc.strerror or exc
                    raise TargetError(f"cannot read target file {str(path)!r}: {reason}") from None
                lines = (line.split("#", 1)[0] for line in text.splitlines())
                yield from _tokens(lines, _depth=_depth + 1)
            else:
                yield token


def _is_address(text: str) -> bool:
    try:
        ipaddress.ip_address(text)
    except ValueError:
        return False
    return True


def _address(spec: str, text: str) -> ipaddress.IPv4Address | ipaddress.IPv6Address:
    try:
        return ipaddress.ip_address(text)
    except ValueError:
        raise TargetError(f"bad target {spec!r}: {text!r} is not an IP address") from None


def parse_targets(specs: Iterable[str], *, limit: int = MAX_ADDRESSES, force: bool = False) -> TargetSet:
    """Parse target specs into a TargetSet; raise TargetError on a bad one or an oversized scan."""
    out = TargetSet()
    seen_names: set[Target] = set()
    for token in _tokens(specs):
        body, port = split_port(token)
        if "/" in body:
            try:
                net = ipaddress.ip_network(body, strict=False)
            except ValueError:
                raise TargetError(f"bad target {token!r}: not a CIDR network") from None
            hosts = net.num_addresses
            first, last = int(net.network_address), int(net.broadcast_address)
            if hosts > 2 and net.version == 4:  # leave out network and broadcast addresses
                first, last = first + 1, last - 1
            out._add(net.version, port, first, last)
        elif "-" in body and _is_address(body.partition("-")[0]):
            lo_text, _, hi_text = body.partition("-")
            lo = _address(token, lo_text)
            if hi_text.isdigit() and lo.version == 4:  # 10.0.0.1-50: last octet
                if int(hi_text) > 255:
                    raise TargetError(f"bad target {token!r}: last octet {hi_text} is above 255")
                hi = ipaddress.IPv4Address((int(lo) & ~0xFF) | int(hi_text))
            else:
                hi = _address(token, hi_text)
            if hi.version != lo.version or int(hi) < int(lo):
                raise TargetError(f"bad target {token!r}: range end is before its start")
            out._add(lo.version, port, int(lo), int(hi))
        elif _is_address(body):
            addr = ipaddress.ip_address(body)
            out._add(addr.version, port, int(addr), int(addr))
        else:
            # Digits, dots and dashes only means a mistyped address or range, not a host name.
            if not _HOSTNAME.match(body) or set(body) <= _NUMERIC:
                raise TargetError(f"bad target {token!r}: not an address, range, CIDR or host name")
            target = Target(body.lower(), port)
            if target not in seen_names:
                seen_names.add(target)
                out.names.append(target)
    # Ranges are never expanded here, so checking the size once, at the end, costs nothing.
    if not force and len(out) > limit:
        raise TargetError(f"targets cover more than {limit:,} addresses; narrow them or pass --force")
    if not len(out):
        raise TargetError("no targets given")
    return out


def parse_host(spec: str) -> Target:
    """One host for probe/sleep/wake/dump-device: an address or name, optionally `:PORT`."""
    targets = parse_targets([spec], force=True)
    if len(targets) != 1:
        raise TargetError(f"expected one host, got {spec!r}")
    return next(iter(targets))


def ip_sort_key(host: str) -> tuple[int, int, str]:
    """Addresses in numeric order (IPv4 before IPv6), host names after them."""
    try:
        addr = ipaddress.ip_address(host)
    except ValueError:
        return (2, 0, host)
    return (addr.version - 4 and 1, int(addr), "")


# --- scanning ----------------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class Found:
    """A miner a scan identified."""

    identity: Identity
    api_port: int
    web_port: int
    hashrate_ths: float | None = None


@dataclass(frozen=True, slots=True)
class Unidentified:
    """A host that answered on a miner port but that no driver identified, and why."""

    host: str
    api_port: int
    error: str


@dataclass(slots=True)
class ScanStats:
    addresses: int = 0
    done: int = 0
    found: int = 0
    errors: int = 0  # hosts whose probe failed in an unexpected way (driver bug, not "nothing there")
    # Hosts that answered but were not identified (garbage, an unknown firmware), sorted by address.
    unidentified: list[Unidentified] = field(default_factory=list)


def max_concurrency(open_files_limit: int, reserve: int = 64) -> int:
    """How many hosts may be probed at once without running out of file descriptors."""
    return max(1, (open_files_limit - reserve) // SOCKETS_PER_HOST)


async def _scan_one(
    target: Target,
    *,
    api_port: int,
    web_port: int,
    v3_port: int,
    timeout_s: float,
    credentials: Credentials,
    read_hashrate: bool,
    stats: ScanStats,
) -> Found | Unidentified | None:
    port = target.api_port or api_port
    endpoint = Endpoint(
        target.host,
        api_port=port,
        web_port=web_port,
        v3_port=v3_port,
        credentials=credentials,
        timeouts=Timeouts(connect_s=timeout_s, read_s=timeout_s),
    )
    try:
        async with asyncio.timeout(timeout_s):
            detected = await identify(endpoint)
    except (UnreachableError, DeviceTimeoutError, TimeoutError, OSError):
        return None
    except DeviceError as exc:
        return Unidentified(target.host, port, exc.message)
    except Exception:
        stats.errors += 1
        return None
    cls, identity = detected.driver, detected.identity
    if cls is None or identity is None:
        return Unidentified(target.host, port, detected.error) if detected.answered else None
    hashrate: float | None = None
    driver = cls(endpoint)
    try:
        # The full identity (MAC, serial, hostname) can need more than detection read; then telemetry.
        # Either failing keeps the miner with what is known.
        with contextlib.suppress(Exception):
            async with asyncio.timeout(timeout_s):
                identity = merge_identity(await driver.identity(), identity)
        if read_hashrate:
            with contextlib.suppress(Exception):
                async with asyncio.timeout(timeout_s):
                    reading = await driver.read()
                identity = merge_identity(reading.identity, identity)
                hashrate = reading.snapshot.hashrate_ths
    finally:
        await _close_quietly(driver)
    # host: the address this scan reached it at (a miner may report another one, e.g. behind NAT)
    identity = replace(identity, host=target.host, driver=identity.driver or cls.name)
    return Found(identity, port, web_port, hashrate)


def merge_identity(preferred: Identity, fallback: Identity) -> Identity:
    """`preferred` with its empty fields filled from `fallback`."""
    changes = {f.name: getattr(fallback, f.name) for f in fields(Identity) if not getattr(preferred, f.name)}
    return replace(preferred, **changes) if changes else preferred


async def _close_quietly(driver: Driver) -> None:
    with contextlib.suppress(Exception):
        await driver.close()


async def scan(
    targets: TargetSet,
    *,
    api_port: int = 4028,
    web_port: int = 80,
    v3_port: int = 4433,
    timeout_s: float = 3.0,
    concurrency: int = 256,
    credentials: Credentials | None = None,
    read_hashrate: bool = True,
    on_progress: Callable[[ScanStats], None] | None = None,
    on_found: Callable[[Found], None] | None = None,
) -> tuple[list[Found], ScanStats]:
    """Probe every target with at most `concurrency` hosts in flight; found miners sorted by address.

    Hosts that answered but were not identified are in the stats (`ScanStats.unidentified`).
    """
    stats = ScanStats(addresses=len(targets))
    found: list[Found] = []
    pending = iter(targets)
    creds = credentials or Credentials()

    async def worker() -> None:
        for target in pending:  # shared iterator: each worker takes the next address
            result = await _scan_one(
                target,
                api_port=api_port,
                web_port=web_port,
                v3_port=v3_port,
                timeout_s=timeout_s,
                credentials=creds,
                read_hashrate=read_hashrate,
                stats=stats,
            )
            stats.done += 1
            if isinstance(result, Unidentified):
                stats.unidentified.append(result)
            elif result is not None:
                found.append(result)
                stats.found += 1
                if on_found is not None:
                    on_found(result)
            if on_progress is not None:
                on_progress(stats)

    workers = max(1, min(concurrency, stats.addresses))
    async with asyncio.TaskGroup() as tg:
        for _ in range(workers):
            tg.create_task(worker())
    found.sort(key=lambda f: (ip_sort_key(f.identity.host), f.api_port))
    stats.unidentified.sort(key=lambda u: (ip_sort_key(u.host), u.api_port))
    return found, stats
