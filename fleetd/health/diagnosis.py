"""Diagnosis of one snapshot against its model's limits: pure, cheap (10,000 miners per poll cycle).

Readings are distrusted: NaN, infinities, negatives and wrong types are treated as not reported, so one
miner's bad numbers never produce findings about anything but missing data.
"""

from __future__ import annotations

from typing import Any

from fleetd.health.findings import Finding, Severity
from fleetd.health.limits import DEFAULT, Limits
from fleetd.health.vendor_codes import finding_for
from fleetd.model import Component, Fault, Hashboard, Mode, Snapshot
from fleetd.numbers import number

WARN_MARGIN_C = 5.0  # a temperature this close to its limit is a warning; at the limit it is critical
HASHRATE_LOW = 0.85  # below this share of expected hashrate (whole miner)
BOARD_BEHIND = 0.70  # a board below this share of its expected hashrate is degraded
FAN_AT_LIMIT = 0.97  # share of fan_max_rpm
REJECT_RATIO = 0.05
REJECT_MIN_SHARES = 200  # fewer shares than this say nothing about the reject ratio
RESTARTS_WARN = 3  # self-restarts within the tracker's window


def num(v: Any) -> float | None:
    """A finite, non-negative number, else None (bad or missing reading)."""
    t = type(v)
    if t is float:  # the common case first: called ~30 times per miner per cycle
        return v if 0 <= v < 1e9 else None  # NaN fails every comparison, infinities the range
    return number(v, 0.0, 1e9)  # ints and the rest: the shared check


def _temp(v: Any) -> float | None:
    if type(v) is float:
        return v if 0 <= v < 200 else None  # 200 C and above is a broken sensor, not heat
    f = num(v)
    return f if f is not None and f < 200 else None


def _over(value: float | None, limit: float) -> Severity | None:
    if value is None:
        return None
    if value >= limit:
        return Severity.CRITICAL
    return Severity.WARNING if value >= limit - WARN_MARGIN_C else None


def _temps(snap: Snapshot, lim: Limits, out: list[Finding]) -> None:
    checks = (("chip", "chip_temp_c", lim.chip_temp_max_c), ("board", "board_temp_c", lim.board_temp_max_c))
    for part, attr, limit in checks:
        worst: tuple[float, int] | None = None
        for b in snap.hashboards:
            t = _temp(getattr(b, attr))
            if t is not None and (worst is None or t > worst[0]):
                worst = (t, b.index)
        if part == "chip" and worst is None and not snap.hashboards:
            t = _temp(snap.temp_c)
            worst = (t, -1) if t is not None else None
        sev = _over(worst[0] if worst else None, limit)
        if sev is not None and worst is not None:
            out.append(
                Finding(
                    "overheating",
                    sev,
                    Component.TEMPERATURE,
                    f"{part.capitalize()} temperature {worst[0]:g} C"
                    f" {'at' if sev is Severity.CRITICAL else 'near'} the model's limit of {limit:g} C",
                    "Check intake temperature, airflow and fans; clean dust filters; consider low-power mode",
                    part,  # not the board: the hottest one may change between polls
                    ((f"{part}_temp_c", worst[0]), ("limit_c", limit), ("board", float(worst[1]))),
                )
            )
    inlet = _temp(snap.env_temp_c)
    if inlet is None:
        inlets = [t for b in snap.hashboards if (t := _temp(b.inlet_temp_c)) is not None]
        inlet = max(inlets) if inlets else None
    sev = _over(inlet, lim.inlet_temp_max_c)
    if sev is not None and inlet is not None:
        out.append(
            Finding(
                "inlet_hot",
                sev,
                Component.TEMPERATURE,
                f"Intake air at {inlet:g} C (limit {lim.inlet_temp_max_c:g} C): the site is too hot",
                "Check the room's cooling and hot-aisle recirculation; curtail the hottest racks first",
                "inlet",
                (("inlet_temp_c", inlet), ("limit_c", lim.inlet_temp_max_c)),
            )
        )


def _board_share(b: Hashboard, expected: float | None, n: int) -> float | None:
    exp = num(b.expected_hashrate_ths)
    if exp is None and expected is not None and n > 0:
        exp = expected / n
    return exp if exp else None


def _boards(snap: Snapshot, lim: Limits, expected: float | None, out: list[Finding]) -> None:
    boards = snap.hashboards
    n_expected = lim.boards or len(boards)
    present = {b.index for b in boards}
    if lim.boards and len(boards) < lim.boards and boards:
        missing = sorted(set(range(lim.boards)) - present)[: lim.boards - len(boards)]
        for i in missing:
            out.append(
                Finding(
                    "board_absent",
                    Severity.CRITICAL,
                    Component.BOARD,
                    f"Hashboard {i} is not detected (the model has {lim.boards})",
                    "Reseat the board's data (ribbon) and power cables; if still absent, send it for repair",
                    f"board {i}",
                    (("boards", len(boards)), ("expected_boards", lim.boards)),
                )
            )
    for b in boards:
        rate = num(b.hashrate_ths)
        chips = num(b.chips)
        exp_chips = num(b.expected_chips) or (float(lim.chips_per_board) if lim.chips_per_board else None)
        subject = f"board {b.index}"
        # A board the firmware flags but that hashes is not dead: the checks below (chips, share) and the
        # driver's fault for it say what is wrong.
        if chips == 0 or rate == 0 or (not b.ok and rate is None):
            out.append(
                Finding(
                    "board_dead",
                    Severity.CRITICAL,
                    Component.BOARD,
                    f"Hashboard {b.index} is not hashing"
                    + (f" ({b.status})" if b.status and b.status not in ("ok", "alive") else ""),
                    "Reboot once; if the board stays dead, check its power connector and send it for repair",
                    subject,
                    tuple((k, v) for k, v in (("hashrate_ths", rate), ("chips", chips)) if v is not None),
                )
            )
            continue
        if chips is not None and exp_chips and chips < exp_chips:
            sev = Severity.CRITICAL if chips < exp_chips / 2 else Severity.WARNING
            out.append(
                Finding(
                    "board_missing_chips",
                    sev,
                    Component.BOARD,
                    f"Hashboard {b.index} reports {chips:g} of {exp_chips:g} chips (failed chips)",
                    "Send the board for repair (chip replacement); until then it hashes below spec",
                    subject,
                    (("chips", chips), ("expected_chips", exp_chips)),
                )
            )
            continue
        share = _board_share(b, expected, n_expected)
        if rate is not None and share and rate < BOARD_BEHIND * share:
            out.append(
                Finding(
                    "board_degraded",
                    Severity.WARNING,
                    Component.BOARD,
                    f"Hashboard {b.index} makes {rate:.1f} TH/s, {rate / share:.0%} of {share:.1f} TH/s",
                    "Check the board's temperature and chip count; reseat its cables; repair if it persists",
                    subject,
                    (("hashrate_ths", rate), ("expected_ths", share)),
                )
            )


def _fans(snap: Snapshot, lim: Limits, out: list[Finding]) -> None:
    for f in snap.fans:
        rpm = num(f.rpm)
        if rpm == 0 and snap.is_mining:
            out.append(
                Finding(
                    "fan_failed",
                    Severity.CRITICAL,
                    Component.FAN,
                    f"Fan {f.index} is not turning while the miner hashes",
                    "Replace the fan (or reseat its connector) before the boards overheat",
                    f"fan {f.index}",
                    (("rpm", 0.0),),
                )
            )
        elif rpm is not None and lim.fan_max_rpm and rpm >= FAN_AT_LIMIT * lim.fan_max_rpm:
            out.append(
                Finding(
                    "fan_at_limit",
                    Severity.WARNING,
                    Component.FAN,
                    f"Fan {f.index} at {rpm:g} RPM, its top speed ({lim.fan_max_rpm:g}): no headroom",
                    "Check intake temperature and dust filters; a worn fan also runs fast for less airflow",
                    f"fan {f.index}",
                    (("rpm", rpm), ("max_rpm", lim.fan_max_rpm)),
                )
            )


def _pools(snap: Snapshot, out: list[Finding]) -> None:
    pools = [p for p in snap.pools if p.status != "disabled"]
    if pools and not any(p.status == "alive" for p in pools):
        out.append(
            Finding(
                "pool_down",
                Severity.CRITICAL,
                Component.POOL,
                f"None of the {len(pools)} configured pools is reachable",
                "Check the site's uplink, DNS and the pool URLs and worker names",
                "",
                (("pools", float(len(pools))),),
            )
        )
    for p in snap.pools:
        acc, rej = num(p.accepted) or 0.0, num(p.rejected) or 0.0
        if acc + rej >= REJECT_MIN_SHARES and rej / (acc + rej) > REJECT_RATIO:
            out.append(
                Finding(
                    "pool_rejects_high",
                    Severity.WARNING,
                    Component.POOL,
                    f"Pool {p.index} rejects {rej / (acc + rej):.1%} of shares (normal < {REJECT_RATIO:.0%})",
                    "Check latency to the pool (use a closer endpoint) and the hashboards' hardware errors",
                    f"pool {p.index}",
                    (("reject_ratio", rej / (acc + rej)), ("accepted", acc), ("rejected", rej)),
                )
            )


def _hashrate(snap: Snapshot, nominal_ths: float | None, out: list[Finding]) -> float | None:
    expected = num(snap.expected_hashrate_ths) or nominal_ths
    if snap.mode in (Mode.LOW, Mode.SLEEP):
        expected = num(snap.expected_hashrate_ths)  # the catalog's normal figure would misjudge low mode
    rate = num(snap.hashrate_avg_ths) or num(snap.hashrate_ths)
    if not snap.is_mining or not expected or rate is None:
        return expected
    if rate < HASHRATE_LOW * expected:
        out.append(
            Finding(
                "hashrate_low",
                Severity.CRITICAL if rate < 0.5 * expected else Severity.WARNING,
                Component.BOARD,
                f"Hashing {rate:.1f} TH/s, {rate / expected:.0%} of the expected {expected:.1f} TH/s",
                "See the board findings; otherwise check temperatures (throttling) and the power mode",
                "",
                (("hashrate_ths", rate), ("expected_ths", expected)),
            )
        )
    return expected


def diagnose(
    snap: Snapshot,
    limits: Limits = DEFAULT,
    *,
    vendor: str = "",
    nominal_ths: float | None = None,
    restarts: int = 0,
) -> tuple[Finding, ...]:
    """Findings for one snapshot. `nominal_ths`: the catalog's figure when the miner reports none;
    `restarts`: self-restarts (uptime resets) the caller counted over its window."""
    out: list[Finding] = []
    nominal = num(nominal_ths)
    asleep = snap.mode is Mode.SLEEP
    if not asleep:
        expected = _hashrate(snap, nominal, out)
        if snap.is_mining:
            _boards(snap, limits, expected, out)
        _fans(snap, limits, out)
        _pools(snap, out)
    _temps(snap, limits, out)
    if restarts >= RESTARTS_WARN:
        out.append(
            Finding(
                "restarts_frequent",
                Severity.WARNING,
                Component.CONTROL_BOARD,
                f"The miner restarted itself {restarts} times recently (uptime reset)",
                "Check the PSU and input power (brown-outs), then the control board and firmware logs",
                "",
                (("restarts", float(restarts)),),
            )
        )
    if snap.errors:
        out += _faults(snap.errors, out, vendor)
    return tuple(out)


def _faults(faults: tuple[Fault, ...], found: list[Finding], vendor: str) -> list[Finding]:
    """The miner's own faults, once each, less those the drivers derive from readings diagnosed above."""
    fans_failed = any(f.code == "fan_failed" for f in found)
    boards_found = {f.subject for f in found if f.component is Component.BOARD}
    seen: set[str] = set()
    out: list[Finding] = []
    for fault in faults:
        if fault.code == "fan_stopped" and fans_failed:  # from the same 0 rpm reading as fan_failed
            continue
        f = finding_for(fault, vendor)
        if fault.code == "board" and f.subject in boards_found:  # from the board's own readings
            continue
        if f.key not in seen:
            seen.add(f.key)
            out.append(f)
    return out
