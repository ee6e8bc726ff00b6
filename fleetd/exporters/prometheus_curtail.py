"""The fleetd_curtail_* series, rendered from the daemon's CurtailStatus (docs/curtailment-design.md).

Absent when curtailment is not configured (no status). Per-miner series carry the same miner labels as the
other fleetd_miner_* series and exist only with [metrics] per_miner. Gauges of counts list every target x
actual pair and every command kind, zeros included, so that dashboards show 0 rather than no data.
"""

from __future__ import annotations

from collections.abc import Iterable, Iterator, Mapping

from fleetd.curtail.model import Action, Actual
from fleetd.curtail.status import CurtailStatus, MinerCurtailStatus

# name -> (type, help); the order here is the order of the output
FAMILIES: dict[str, tuple[str, str]] = {
    "fleetd_curtail_enforce": ("gauge", "1 when curtailment commands are sent, 0 in dry run"),
    "fleetd_curtail_failsafe": ("gauge", "1 while a curtailment fail-safe applies"),
    "fleetd_curtail_miners": ("gauge", "Miners by desired target and verified state"),
    "fleetd_curtail_miner_target": ("gauge", "Desired curtailment target of a miner (value 1)"),
    "fleetd_curtail_miner_actual": ("gauge", "Verified curtailment state of a miner (value 1)"),
    "fleetd_curtail_commands_total": ("counter", "Curtailment commands sent, by kind"),
    "fleetd_curtail_commands_failed_total": ("counter", "Curtailment commands not verified, by kind"),
    "fleetd_curtail_commands_retried_total": ("counter", "Curtailment command retries sent, by kind"),
    "fleetd_curtail_unresponsive": ("gauge", "Miners flagged unresponsive to curtailment commands"),
    "fleetd_curtail_not_controllable": (
        "gauge",
        "Miners a rule wants changed whose driver cannot sleep or limit power",
    ),
    "fleetd_curtail_rule_active": ("gauge", "1 per curtailment rule in force (0: configured, not in force)"),
    "fleetd_curtail_shed_kw": ("gauge", "Load shed by verified sleeps and power limits, kW"),
    "fleetd_curtail_load_kw": ("gauge", "Fleet load now as curtailment sees it, kW"),
    "fleetd_curtail_target_kw": ("gauge", "Power-cap or demand-response target in force, kW"),
}
COMMAND_KINDS = ("sleep", "wake", "limit")
_MATCHES = {Action.RUN: Actual.RUNNING, Action.SLEEP: Actual.SLEEPING, Action.LIMIT: Actual.LIMITED}


def wants_change(m: MinerCurtailStatus) -> bool:
    """Whether the miner's target differs from what it is doing (never verified: taken to be running)."""
    actual = Actual.RUNNING if m.actual is Actual.UNKNOWN else m.actual
    return actual is not _MATCHES[m.target.action]


def _num(value: float) -> str:
    return repr(float(value)) if value == value and abs(value) != float("inf") else "NaN"


def _esc(value: str) -> str:
    return value.replace("\\", "\\\\").replace('"', '\\"').replace("\n", "\\n")


def _fleet(status: CurtailStatus, rules: Iterable[str]) -> dict[str, list[str]]:
    out: dict[str, list[str]] = {}

    def add(name: str, labels: str, value: float | int | None) -> None:
        if value is None:
            return
        text = str(value) if isinstance(value, int) else _num(value)
        out.setdefault(name, []).append(f"{name}{{{labels}}} {text}" if labels else f"{name} {text}")

    add("fleetd_curtail_enforce", "", int(status.enforce))
    add("fleetd_curtail_failsafe", "", int(bool(status.failsafe)))
    pairs = {(a.value, s.value): 0 for a in Action for s in Actual}
    unresponsive = not_controllable = 0
    for m in status.miners.values():
        pairs[m.target.action.value, m.actual.value] += 1
        unresponsive += m.actual is Actual.UNRESPONSIVE
        not_controllable += not m.controllable and wants_change(m)
    for (target, actual), n in pairs.items():
        add("fleetd_curtail_miners", f'target="{target}",actual="{actual}"', n)
    for name, counts in (
        ("fleetd_curtail_commands_total", status.sent),
        ("fleetd_curtail_commands_failed_total", status.failed),
        ("fleetd_curtail_commands_retried_total", status.retried),
    ):
        kinds = list(COMMAND_KINDS) + sorted(k for k in counts if k not in COMMAND_KINDS)
        for kind in kinds:
            add(name, f'kind="{_esc(kind)}"', int(counts.get(kind, 0)))
    add("fleetd_curtail_unresponsive", "", unresponsive)
    add("fleetd_curtail_not_controllable", "", not_controllable)
    active = set(status.active_rules)
    for rule in dict.fromkeys([*status.active_rules, *rules]):
        add("fleetd_curtail_rule_active", f'rule="{_esc(rule)}"', int(rule in active))
    add("fleetd_curtail_shed_kw", "", status.shed_kw)
    add("fleetd_curtail_load_kw", "", status.load_kw)
    add("fleetd_curtail_target_kw", "", status.target_kw)
    return out


def _miner_labels(miner_id: str, labels: Mapping[str, str]) -> str:
    """The miner's common label set; a miner the fleet state does not know gets its id and empty labels."""
    known = labels.get(miner_id)
    if known is not None:
        return known
    return f'miner="{_esc(miner_id)}",host="",site="",rack="",model="",vendor=""'


def chunks(
    status: CurtailStatus | None,
    miner_labels: Mapping[str, str] | None = None,
    rules: Iterable[str] = (),
) -> Iterator[str]:
    """The exposition text of the curtailment families, one family at a time; nothing without a status.

    `miner_labels` maps miner id -> its label set (as the fleetd_miner_* series have it); None: no
    per-miner series ([metrics] per_miner = false). `rules`: the configured rule names, exported as 0
    while not in force."""
    if status is None:
        return
    lines = _fleet(status, rules)
    if miner_labels is not None:
        targets, actuals = [], []
        for mid, m in status.miners.items():
            lb = _miner_labels(mid, miner_labels)
            targets.append(f'fleetd_curtail_miner_target{{{lb},target="{m.target.action.value}"}} 1')
            actuals.append(f'fleetd_curtail_miner_actual{{{lb},actual="{m.actual.value}"}} 1')
        lines["fleetd_curtail_miner_target"] = targets
        lines["fleetd_curtail_miner_actual"] = actuals
    for name, (kind, help_) in FAMILIES.items():
        samples = lines.get(name)
        if samples:
            yield f"# HELP {name} {help_}\n# TYPE {name} {kind}\n" + "\n".join(samples) + "\n"


def rule_names(config: object) -> tuple[str, ...]:
    """The rule names of a Config's [curtailment] section; () without one or when it does not validate."""
    curtailment_config = getattr(config, "curtailment_config", None)
    if curtailment_config is None:
        return ()
    try:
        section = curtailment_config()
    except ValueError:  # pydantic's ValidationError; check-config reports it, metrics carry on
        return ()
    return tuple(r.name for r in section.rules) if section is not None else ()
