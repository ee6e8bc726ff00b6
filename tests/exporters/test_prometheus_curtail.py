"""The fleetd_curtail_* series from a hand-built CurtailStatus: names, labels, values, promtool, caching."""

from __future__ import annotations

import dataclasses
import subprocess
from collections import deque
from typing import Any

import pytest
from prometheus_client.parser import text_string_to_metric_families

from fleetd.config import parse_config
from fleetd.curtail.model import Actual
from fleetd.exporters.prometheus import FAMILIES, Exporter, Extras, render
from fleetd.exporters.prometheus_curtail import FAMILIES as CURTAIL_FAMILIES
from fleetd.exporters.prometheus_curtail import chunks, rule_names
from tests.conftest import require_binary

from .curtail import status
from .synthetic import fleet


def _samples(text: str) -> dict[str, list[tuple[dict[str, str], float]]]:
    out: dict[str, list[tuple[dict[str, str], float]]] = {}
    for fam in text_string_to_metric_families(text):
        for s in fam.samples:
            out.setdefault(s.name, []).append((s.labels, s.value))
    return out


def _one(samples: dict[str, list[tuple[dict[str, str], float]]], name: str) -> float:
    [(labels, value)] = samples[name]
    assert labels == {}
    return value


@pytest.mark.prometheus
def test_every_contract_series_rendered_and_promtool_accepts_it() -> None:
    st = fleet(8)
    text = render(st, extras=Extras(curtail=status(st.miners), curtail_rules=("economic", "cap")))
    promtool = require_binary("promtool")
    res = subprocess.run([promtool, "check", "metrics"], input=text, capture_output=True, text=True)
    assert res.returncode == 0, res.stdout + res.stderr
    samples = _samples(text)
    assert set(CURTAIL_FAMILIES) <= set(samples)
    assert not set(CURTAIL_FAMILIES) & set(FAMILIES)  # no name taken twice


def test_fleet_series_values() -> None:
    st = fleet(8)
    s = _samples(render(st, extras=Extras(curtail=status(st.miners), curtail_rules=("economic", "cap"))))
    assert _one(s, "fleetd_curtail_enforce") == 1 and _one(s, "fleetd_curtail_failsafe") == 0
    pairs = {(lb["target"], lb["actual"]): v for lb, v in s["fleetd_curtail_miners"]}
    assert len(pairs) == 3 * 5  # every target x actual pair, zeros included
    assert pairs["sleep", "sleeping"] == 1 and pairs["sleep", "running"] == 1
    assert pairs["limit", "limited"] == 1 and pairs["sleep", "unresponsive"] == 1
    n = len(st.miners)  # synthetic fleets carry one miner not polled yet
    assert pairs["sleep", "unknown"] == 1 and pairs["run", "running"] == n - 5
    assert sum(pairs.values()) == n
    sent = {lb["kind"]: v for lb, v in s["fleetd_curtail_commands_total"]}
    assert sent == {"sleep": 4, "wake": 2, "limit": 1}
    failed = {lb["kind"]: v for lb, v in s["fleetd_curtail_commands_failed_total"]}
    assert failed == {"sleep": 3, "wake": 0, "limit": 0}
    retried = {lb["kind"]: v for lb, v in s["fleetd_curtail_commands_retried_total"]}
    assert retried == {"sleep": 2, "wake": 0, "limit": 0}
    assert _one(s, "fleetd_curtail_unresponsive") == 1
    assert _one(s, "fleetd_curtail_not_controllable") == 1  # the fifth: sleep wanted, no capability
    rules = {lb["rule"]: v for lb, v in s["fleetd_curtail_rule_active"]}
    assert rules == {"economic": 1, "strike": 1, "cap": 0}
    assert _one(s, "fleetd_curtail_shed_kw") == 6.75
    assert _one(s, "fleetd_curtail_load_kw") == 12.5 and _one(s, "fleetd_curtail_target_kw") == 15.0


def test_per_miner_series_carry_the_miner_labels() -> None:
    st = fleet(8)
    text = render(st, extras=Extras(curtail=status(st.miners)))
    s = _samples(text)
    common = {lb["miner"]: lb for lb, _ in s["fleetd_miner_up"]}
    targets = {lb["miner"]: lb for lb, v in s["fleetd_curtail_miner_target"] if v == 1}
    actuals = {lb["miner"]: lb for lb, v in s["fleetd_curtail_miner_actual"] if v == 1}
    assert set(targets) == set(actuals) == set(st.miners)
    for mid, lb in targets.items():
        assert {k: v for k, v in lb.items() if k != "target"} == common[mid]
    ids = list(st.miners)
    assert targets[ids[0]]["target"] == "sleep" and actuals[ids[0]]["actual"] == "sleeping"
    assert targets[ids[2]]["target"] == "limit" and actuals[ids[2]]["actual"] == "limited"
    assert actuals[ids[3]]["actual"] == "unresponsive" and targets[ids[7]]["target"] == "run"


def test_per_miner_off_keeps_only_fleet_series() -> None:
    st = fleet(8)
    s = _samples(render(st, extras=Extras(curtail=status(st.miners)), per_miner=False))
    assert "fleetd_curtail_miner_target" not in s and "fleetd_curtail_miner_actual" not in s
    assert "fleetd_curtail_miners" in s and "fleetd_curtail_enforce" in s


def test_absent_without_status_and_optional_values() -> None:
    st = fleet(3)
    assert "fleetd_curtail_" not in render(st)
    assert list(chunks(None, {})) == []
    assert rule_names(object()) == () and rule_names(parse_config({})) == ()
    dry = status(st.miners, enforce=False, target_kw=None, load_kw=None, failsafe="electricity price stale")
    s = _samples(render(st, extras=Extras(curtail=dry)))
    assert _one(s, "fleetd_curtail_enforce") == 0 and _one(s, "fleetd_curtail_failsafe") == 1
    assert "fleetd_curtail_target_kw" not in s and "fleetd_curtail_load_kw" not in s


def test_miner_unknown_to_the_state_and_odd_names() -> None:
    st = fleet(5)
    cs = status([*st.miners, 'ghost"1'], sent={"sleep": 1, "reboot": 2}, active_rules=('a"b',))
    s = _samples(render(st, extras=Extras(curtail=cs)))
    ghost = next(lb for lb, _ in s["fleetd_curtail_miner_actual"] if lb["miner"] == 'ghost"1')
    assert ghost["host"] == "" and ghost["site"] == "" and ghost["actual"] == Actual.RUNNING.value
    assert {lb["kind"] for lb, _ in s["fleetd_curtail_commands_total"]} == {
        "sleep",
        "wake",
        "limit",
        "reboot",
    }
    assert [lb["rule"] for lb, _ in s["fleetd_curtail_rule_active"]] == ['a"b']


@dataclasses.dataclass
class _Holder:
    """The parts of a Daemon the exporter reads."""

    config: Any
    curtail_status: Any = None
    economics: Any = None
    on_cycle: list[Any] = dataclasses.field(default_factory=list)
    events: deque[Any] = dataclasses.field(default_factory=deque)

    def storage_status(self) -> None:
        return None


async def test_exporter_reads_the_daemon_status_and_renders_a_new_one_at_once() -> None:
    st = fleet(6)
    rules = [{"kind": "economic", "name": "economic"}, {"kind": "power_cap", "name": "cap"}]
    d = _Holder(parse_config({"curtailment": {"rules": rules}}))
    exp = Exporter(st)
    exp.bind(d)
    assert b"fleetd_curtail_" not in await exp.scrape()  # no status yet: no series
    d.curtail_status = status(st.miners)
    first = _samples((await exp.scrape()).decode())
    assert {lb["rule"]: v for lb, v in first["fleetd_curtail_rule_active"]} == {
        "economic": 1,
        "strike": 1,
        "cap": 0,
    }
    # a new pass between poll cycles: not the cached body of the previous one
    d.curtail_status = status(st.miners, enforce=False)
    assert _one(_samples((await exp.scrape()).decode()), "fleetd_curtail_enforce") == 0
    d.config = parse_config({})  # curtailment switched off: the next status would be None
    d.curtail_status = status(st.miners, active_rules=())
    assert "fleetd_curtail_rule_active" not in (await exp.scrape()).decode()
