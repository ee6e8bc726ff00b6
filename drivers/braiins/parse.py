"""Pure parsers: Braiins OS replies in, normalized model out.

Two sources: BOSer's CGMiner-compatible API (`version`, `summary`, `devs`, `pools`, `fans`, and
`tunerstatus` with the approximated consumption and the power limit) and the public REST API
(`/api/v1/miner/stats`, `/api/v1/miner/details`, `/api/v1/configuration/miner`), whose JSON is the
gRPC `braiins.bos.v1` messages with their snake_case field names (a GetMinerStats reply is the same
message over gRPC and REST).
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from fleetd.drivers.cgminer import (
    current_hashrate_ths,
    first,
    hashrate_ths,
    num,
    parse_pools,
    section,
    temperature_c,
)

from fleetd.model import Component, Fan, Fault, Hashboard, Identity, Mode, Snapshot

__all__ = [
    "DETAILS",
    "MINER_CONFIG",
    "MINER_STATS",
    "MinerStats",
    "is_braiins",
    "parse_fans",
    "parse_identity",
    "parse_miner_stats",
    "parse_power_target",
    "parse_snapshot",
    "parse_tuner",
]

# Keys of the REST replies in a responses mapping (and the files `fleetd dump-device` writes).
MINER_STATS = "web_api-v1-miner-stats"
DETAILS = "web_api-v1-miner-details"
MINER_CONFIG = "web_api-v1-configuration-miner"
CONSTRAINTS = "web_api-v1-configuration-constraints"

MAX_THS = 5_000.0
MAX_WATTS = 20_000.0
IDLE_MAX_W = 150.0  # a paused Antminer on BOS draws its control board and fans only
_REAL_WINDOWS = ("last_5s", "last_15s", "last_30s", "last_1m", "last_5m")


def is_braiins(version_reply: Mapping[str, Any] | None) -> bool:
    """Whether a `version` reply is BOSer's (Braiins OS names its miner `BOSer`, older ones `BOSminer`)."""
    version = first(version_reply, "VERSION")
    return "BOSer" in version or "BOSminer" in version or "BOSminer+" in version


def _ths(value: Any) -> float | None:
    """TH/s from a {"gigahash_per_second": x} / {"terahash_per_second": x} / {"megahash_per_second": x}."""
    if not isinstance(value, Mapping):
        return None
    for key, scale in (
        ("terahash_per_second", 1.0),
        ("gigahash_per_second", 1e-3),
        ("megahash_per_second", 1e-6),
    ):
        v = num(value.get(key))
        if v is not None:
            return round(v * scale, 9) if 0 <= v * scale <= MAX_THS else None
    return None


def _watt(value: Any) -> float | None:
    v = num(value.get("watt")) if isinstance(value, Mapping) else None
    return v if v is not None and 0 <= v <= MAX_WATTS else None


class MinerStats:
    """The figures of one GetMinerStats message (REST /api/v1/miner/stats), units in the names."""

    __slots__ = (
        "accepted",
        "efficiency_j_per_th",
        "hashrate_avg_ths",
        "hashrate_ths",
        "nominal_hashrate_ths",
        "power_w",
        "rejected",
        "stale",
    )

    def __init__(self, reply: Mapping[str, Any] | None) -> None:
        reply = reply if isinstance(reply, Mapping) else {}
        miner = reply.get("miner_stats") or {}
        pool = reply.get("pool_stats") or {}
        power = reply.get("power_stats") or {}
        real = miner.get("real_hashrate") or {}
        self.hashrate_ths = next(
            (r for r in (_ths(real.get(w)) for w in _REAL_WINDOWS) if r is not None), None
        )
        self.hashrate_avg_ths = _ths(real.get("since_restart"))
        self.nominal_hashrate_ths = _ths(miner.get("nominal_hashrate"))
        self.power_w = _watt(power.get("approximated_consumption"))
        eff = power.get("efficiency") or {}
        self.efficiency_j_per_th = num(eff.get("joule_per_terahash")) if isinstance(eff, Mapping) else None
        self.accepted = int(num(pool.get("accepted_shares")) or 0)
        self.rejected = int(num(pool.get("rejected_shares")) or 0)
        self.stale = int(num(pool.get("stale_shares")) or 0)


def parse_miner_stats(reply: Mapping[str, Any] | None) -> MinerStats:
    """Pure: the figures of a GetMinerStats message."""
    return MinerStats(reply)


def parse_power_target(config: Mapping[str, Any] | None) -> float | None:
    """The tuner's power target (W) from GetMinerConfiguration; None when the tuner is off or unset."""
    tuner = (config or {}).get("tuner") or {}
    if not isinstance(tuner, Mapping) or tuner.get("enabled") is False:
        return None
    return _watt(tuner.get("power_target"))


def parse_power_target_bounds(constraints: Mapping[str, Any] | None) -> tuple[int, int] | None:
    """The lowest and highest tuner power target (W) from GetConstraints (`tuner_constraints.power_target`,
    Braiins OS public API `PowerConstraints` min/max); None when absent or inconsistent."""
    tuner = constraints.get("tuner_constraints") if isinstance(constraints, Mapping) else None
    bounds = tuner.get("power_target") if isinstance(tuner, Mapping) else None
    if not isinstance(bounds, Mapping):
        return None
    lo, hi = _watt(bounds.get("min")), _watt(bounds.get("max"))
    if lo is None or hi is None or not 0 < lo < hi:
        return None
    return int(lo), int(hi)


def parse_tuner(reply: Mapping[str, Any] | None) -> tuple[float | None, float | None]:
    """(approximated consumption W, power limit W) from a `tunerstatus` reply; None where absent."""
    tuner = first(reply, "TUNERSTATUS")
    watts = num(tuner.get("ApproximateMinerPowerConsumption"))
    limit = num(tuner.get("PowerLimit"))
    return (
        watts if watts is not None and 0 <= watts <= MAX_WATTS else None,
        limit if limit is not None and 1 <= limit <= MAX_WATTS else None,
    )


def parse_fans(reply: Mapping[str, Any] | None) -> tuple[Fan, ...]:
    """The fans of a `fans` reply (`FANS[]`: `ID`, `RPM`, `Speed` %); impossible speeds are None."""
    out = []
    for i, fan in enumerate(section(reply, "FANS")):
        fan_id, rpm = num(fan.get("ID")), num(fan.get("RPM"))
        out.append(
            Fan(
                index=int(fan_id) if fan_id is not None and fan_id >= 0 else i,
                rpm=int(rpm) if rpm is not None and 0 <= rpm <= 30_000 else None,
            )
        )
    return tuple(out)


def parse_identity(responses: Mapping[str, Any], *, host: str = "") -> Identity:
    version = first(responses.get("rpc_version"), "VERSION")
    details = responses.get(DETAILS) or {}
    ident = details.get("miner_identity") or {}
    bos = details.get("bos_version") or {}
    model = str(ident.get("miner_model") or ident.get("name") or version.get("Type") or "").strip()
    firmware = str(bos.get("current") or version.get("BOSer") or version.get("BOSminer") or "").strip()
    return Identity(
        vendor="antminer" if not model or model.lower().startswith("antminer") else "braiins",
        model=model or "Braiins OS miner",
        firmware=firmware,
        api_version=str(version.get("API") or ""),
        serial=str(details.get("serial_number") or ""),
        mac=str(details.get("mac_address") or "").lower(),
        hostname=str(details.get("hostname") or ""),
        driver="braiins",
        host=host,
        api="cgminer+rest",
    )


def _boards(devs_reply: Mapping[str, Any] | None, mining: bool) -> tuple[Hashboard, ...]:
    out = []
    for i, dev in enumerate(section(devs_reply, "DEVS")):
        enabled = str(dev.get("Enabled", "Y")).upper() == "Y"
        status = str(dev.get("Status") or "").strip().lower()
        rate = current_hashrate_ths(dev)
        nominal_mhs = num(dev.get("Nominal MHS"))
        nominal = round(nominal_mhs * 1e-6, 9) if nominal_mhs is not None else None
        ok = enabled and status in ("alive", "") and not (mining and rate == 0.0)
        dev_id = num(dev.get("ID"))
        out.append(
            Hashboard(
                index=int(dev_id) if dev_id is not None else i,
                hashrate_ths=rate,
                expected_hashrate_ths=nominal,
                chip_temp_c=temperature_c(dev.get("Chip Temp") or dev.get("Temperature")),
                board_temp_c=temperature_c(dev.get("Board Temp")),
                ok=ok,
                status=status if enabled else "disabled",
            )
        )
    return tuple(out)


MINER_STATUS_PAUSED = 3  # braiins.bos.v1.MinerStatus: 1 not started, 2 normal, 3 paused, 4 suspended


def _user_paused(responses: Mapping[str, Any]) -> bool:
    """Whether fresh details (read together with the REST stats) say the user paused the miner: the
    MinerStatus enum (`status`, what BOS 26.04 sends), or a `detailed_status` stopped by user_pause."""
    if MINER_STATS not in responses:
        return False  # the poll's details are cached: too old to tell the state
    details = responses.get(DETAILS) or {}
    if num(details.get("status")) == MINER_STATUS_PAUSED:
        return True
    status = (details.get("detailed_status") or {}).get("status") or {}
    stopped = status.get("stopped") if isinstance(status, Mapping) else None
    reason = (stopped or {}).get("reason") if isinstance(stopped, Mapping) else None
    return isinstance(reason, Mapping) and "user_pause" in reason


def parse_snapshot(responses: Mapping[str, Any], *, polled_at: float = 0.0) -> Snapshot:
    """The snapshot from the CGMiner replies; the REST stats and configuration, when present, take over
    hashrate, consumption and power target (they are what a fresh read after a command looks at)."""
    summary = first(responses.get("rpc_summary"), "SUMMARY")
    stats = MinerStats(responses.get(MINER_STATS))
    tuner_watts, tuner_limit = parse_tuner(responses.get("rpc_tunerstatus"))
    rate = stats.hashrate_ths
    if rate is None:
        rate = current_hashrate_ths(summary)
    avg = stats.hashrate_avg_ths if stats.hashrate_avg_ths is not None else hashrate_ths(summary, "av")
    mining = bool(rate and rate > 0)
    boards = _boards(responses.get("rpc_devs"), mining)
    limit = parse_power_target(responses.get(MINER_CONFIG)) if MINER_CONFIG in responses else tuner_limit
    watts = stats.power_w if stats.power_w is not None else tuner_watts
    if mining:
        mode = Mode.NORMAL
    elif (watts is not None and watts <= IDLE_MAX_W) or _user_paused(responses):
        mode = Mode.SLEEP  # paused: BOS keeps only the control board and fans going
    else:
        mode = Mode.UNKNOWN
    fans = parse_fans(responses.get("rpc_fans"))
    errors = [
        Fault(
            code="board", message=f"board {b.index}: {b.status or 'no hashrate'}", component=Component.BOARD
        )
        for b in boards
        if not b.ok
    ]
    if mining:
        errors += [
            Fault(code="fan_stopped", message=f"fan {f.index} stopped", component=Component.FAN)
            for f in fans
            if f.rpm == 0
        ]
    temps = [t for b in boards for t in (b.chip_temp_c, b.board_temp_c) if t is not None and -40 <= t <= 150]
    elapsed = num(summary.get("Elapsed"))
    expected = stats.nominal_hashrate_ths
    if expected is None:
        expected = sum(b.expected_hashrate_ths or 0.0 for b in boards) or None
    return Snapshot(
        hashrate_ths=rate,
        hashrate_avg_ths=avg,
        expected_hashrate_ths=expected,
        power_w=watts,
        power_limit_w=limit,
        is_mining=mining,
        mode=mode,
        hashboards=boards,
        fans=fans,
        pools=parse_pools(responses.get("rpc_pools")),
        errors=tuple(errors),
        uptime_s=int(elapsed) if elapsed is not None and elapsed >= 0 else None,
        polled_at=polled_at,
        temp_c=max(temps) if temps else None,
    )
