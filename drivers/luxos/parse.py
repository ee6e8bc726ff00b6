"""Pure parsers: LuxOS replies (CGMiner-compatible plus `power`, `profiles`, `config`, `tempctrl`, `atm`) in,
normalized model out."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any

from fleetd.drivers.antminer.parse import parse_boards, parse_fans
from fleetd.drivers.cgminer import first, hashrate_ths, num, parse_pools, section

from fleetd.model import Component, Fault, Identity, Mode, Snapshot

__all__ = [
    "Profile",
    "Thermal",
    "is_luxos",
    "parse_identity",
    "parse_profiles",
    "parse_snapshot",
    "parse_thermal",
    "pick_profile",
    "sane_watts",
]

MAX_WATTS = 20_000.0  # no single air or hydro miner draws more
MAX_THS = 5_000.0
IDLE_MAX_W = 150.0  # a curtailed Antminer draws its control board and fans only


@dataclass(frozen=True, slots=True)
class Profile:
    """One LuxOS power profile: its name and the nominal figures the firmware lists for it."""

    name: str
    watts: float | None
    hashrate_ths: float | None
    frequency_mhz: float | None


@dataclass(frozen=True, slots=True)
class Thermal:
    """LuxOS temperature control (`tempctrl`) and automatic thermal management (`atm`) settings."""

    mode: str = ""
    target_c: float | None = None
    hot_c: float | None = None
    dangerous_c: float | None = None
    atm_enabled: bool | None = None


def sane_watts(value: Any) -> float | None:
    """A power reading in W, or None when it is not a finite, physically possible value."""
    v = num(value)
    return v if v is not None and 0 <= v <= MAX_WATTS else None


def _sane_ths(value: float | None) -> float | None:
    return value if value is not None and 0 <= value <= MAX_THS else None


def is_luxos(version_reply: Mapping[str, Any] | None) -> bool:
    """Whether a `version` reply is LuxOS's (it names its miner `LUXminer`)."""
    return "LUXminer" in first(version_reply, "VERSION")


def parse_identity(responses: Mapping[str, Any], *, host: str = "") -> Identity:
    version = first(responses.get("rpc_version"), "VERSION")
    config = first(responses.get("rpc_config"), "CONFIG")
    return Identity(
        vendor="antminer",
        model=str(version.get("Type") or version.get("PROD") or "").strip(),
        firmware=str(version.get("LUXminer") or version.get("Miner") or "").strip(),
        api_version=str(version.get("API") or ""),
        serial=str(config.get("SerialNumber") or ""),
        mac=str(config.get("MACAddr") or "").lower(),
        hostname=str(config.get("Hostname") or ""),
        driver="luxos",
        host=host,
        api="cgminer",
    )


def parse_profiles(reply: Mapping[str, Any] | None) -> tuple[Profile, ...]:
    """The profiles a `profiles` reply lists, in the firmware's order; nameless entries are left out."""
    out = []
    for p in section(reply, "PROFILES"):
        name = str(p.get("Profile Name") or "").strip()
        if not name:
            continue
        out.append(
            Profile(
                name, sane_watts(p.get("Watts")), _sane_ths(num(p.get("Hashrate"))), num(p.get("Frequency"))
            )
        )
    return tuple(out)


def pick_profile(profiles: Sequence[Profile], watts: float) -> Profile | None:
    """The profile with the most power that stays within `watts`; None when even the lowest exceeds it."""
    fitting = [p for p in profiles if p.watts is not None and p.watts <= watts]
    return max(fitting, key=lambda p: (p.watts, p.hashrate_ths or 0.0), default=None)


def parse_thermal(responses: Mapping[str, Any]) -> Thermal:
    ctrl = first(responses.get("rpc_tempctrl"), "TEMPCTRL")
    atm = first(responses.get("rpc_atm"), "ATM")
    enabled = atm.get("Enabled")
    return Thermal(
        mode=str(ctrl.get("Mode") or ""),
        target_c=num(ctrl.get("Target")),
        hot_c=num(ctrl.get("Hot")),
        dangerous_c=num(ctrl.get("Dangerous")),
        atm_enabled=enabled if isinstance(enabled, bool) else None,
    )


def _profile_watts(responses: Mapping[str, Any], name: str) -> float | None:
    for p in parse_profiles(responses.get("rpc_profiles")):
        if p.name == name:
            return p.watts
    return None


def _idle_mode(watts: float | None, limit_w: float | None) -> Mode:
    """Not hashing: asleep (curtailed) when the miner draws idle power, else unknown (booting, failed)."""
    if watts is None:
        return Mode.UNKNOWN
    idle = max(IDLE_MAX_W, 0.1 * limit_w) if limit_w else IDLE_MAX_W
    return Mode.SLEEP if watts <= idle else Mode.UNKNOWN


def parse_snapshot(
    responses: Mapping[str, Any], *, polled_at: float = 0.0, limit_w: float | None = None
) -> Snapshot:
    """The snapshot; `limit_w` is the active profile's watts when the caller knows them from elsewhere."""
    summary = first(responses.get("rpc_summary"), "SUMMARY")
    stats_reply = responses.get("rpc_stats")
    power = first(responses.get("rpc_power"), "POWER")
    config = first(responses.get("rpc_config"), "CONFIG")
    rate = _sane_ths(hashrate_ths(summary, "5s"))
    avg = _sane_ths(hashrate_ths(summary, "av"))
    mining = bool(rate and rate > 0)
    boards = parse_boards(stats_reply, mining=mining) if section(stats_reply, "STATS") else ()
    fans = parse_fans(stats_reply) if section(stats_reply, "STATS") else ()
    watts = sane_watts(power.get("Watts"))
    profile = str(config.get("Profile") or "")
    if limit_w is None and profile:
        limit_w = _profile_watts(responses, profile)
    mode = Mode.NORMAL if mining else _idle_mode(watts, limit_w)
    errors = [
        Fault(code="board", message=f"board {b.index}: {b.status}", component=Component.BOARD)
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
    expected = sum(b.expected_hashrate_ths or 0.0 for b in boards) or None
    return Snapshot(
        hashrate_ths=rate,
        hashrate_avg_ths=avg,
        expected_hashrate_ths=_sane_ths(expected),
        power_w=watts,
        power_limit_w=limit_w if limit_w and limit_w >= 1 else None,
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
