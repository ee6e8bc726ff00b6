"""The shipped Grafana dashboards: structure, datasource input, and only metric names fleetd exports."""

from __future__ import annotations

import pytest

from fleetd.exporters.prometheus import FAMILIES, Extras, render
from fleetd.exporters.prometheus_curtail import FAMILIES as CURTAIL_FAMILIES
from fleetd.health.findings import Severity
from fleetd.health.trends import TrendWarning
from fleetd.model import Component

from .curtail import status
from .dashboards import ALL, load, metric_names, panels, queries
from .synthetic import fleet


def _warning() -> TrendWarning:
    return TrendWarning(
        "10.0.0.1", "fan_rpm_rising", Severity.WARNING, Component.FAN, "fan_rpm", 400.0, 0.0, 3600.0, 6000.0,
        5800.0, 0.0, limit=6600.0, time_to_limit_h=36.0,
    )  # fmt: skip


def _exported_names() -> set[str]:
    st = fleet(3)
    extras = Extras(
        cycles=1,
        overruns=0,
        storage=(True, 0, 0, 0),
        mqtt=(True, 0, 1, 0),
        currency="USD",
        prices=[("hashprice", 50.0, 10.0, False), ("electricity", 45.0, 5.0, False)],
        curtail=status(st.miners),
        health=({("fan_failed", "fan", "critical"): 1}, {"10.0.0.1": [("fan_failed", "fan 0", "critical")]}),
        warnings=({("fan_rpm_rising", "fan", "warning"): 1}, [("10.0.0.1", _warning())], 1.0, 0.1),
    )
    text = render(st, extras=extras, render_s=0.1)
    return {line.split("{")[0].split(" ")[0] for line in text.splitlines() if not line.startswith("#")}


@pytest.mark.parametrize("name", ALL)
def test_dashboard_structure(name: str) -> None:
    dash = load(name)
    assert dash["uid"] == name.removesuffix(".json") and dash["title"].startswith("fleetd")
    assert dash["schemaVersion"] >= 36  # Grafana 10 era
    assert [i["name"] for i in dash["__inputs"]] == ["DS_PROMETHEUS"]
    variables = {v["name"]: v for v in dash["templating"]["list"]}
    assert (
        variables["DS_PROMETHEUS"]["type"] == "datasource"
    )  # provisioned files resolve ${DS_PROMETHEUS} too
    if name == "fleetd-miner.json":
        assert variables["miner"]["type"] == "query" and not variables["miner"]["multi"]
    ids = [p["id"] for p in panels(dash)]
    assert len(ids) == len(set(ids))
    for p in panels(dash):
        assert {"x", "y", "w", "h"} <= set(p["gridPos"]) and p["gridPos"]["x"] + p["gridPos"]["w"] <= 24
        if p["type"] == "row":
            continue
        assert p["datasource"]["uid"] == "${DS_PROMETHEUS}" and p["targets"], p["title"]
        for t in p["targets"]:
            assert t["datasource"]["uid"] == "${DS_PROMETHEUS}" and t["expr"].strip()


@pytest.mark.parametrize("name", ALL)
def test_every_metric_a_dashboard_queries_is_exported(name: str) -> None:
    exported = _exported_names()
    used = set().union(*(metric_names(q) for q in queries(load(name))))
    assert used, "no fleetd metric in the dashboard"
    assert not used - exported, sorted(used - exported)


def test_the_miner_dashboard_covers_the_per_miner_series() -> None:
    used = set().union(*(metric_names(q) for q in queries(load("fleetd-miner.json"))))
    per_miner = {n for n in FAMILIES if n.startswith("fleetd_miner_")}
    assert per_miner <= used, sorted(per_miner - used)


def test_the_curtailment_dashboard_covers_every_curtailment_series() -> None:
    dash = load("fleetd-curtailment.json")
    used = set().union(*(metric_names(q) for q in queries(dash)))
    assert set(CURTAIL_FAMILIES) <= used, sorted(set(CURTAIL_FAMILIES) - used)
    titles = {p["title"] for p in panels(dash)}
    wanted = {"Mode", "Fail-safe", "Rules in force", "Load shed", "Unresponsive", "Not controllable"}
    wanted |= {"DR target vs measured load", "Miners by target", "Miners by verified state"}
    wanted |= {"Commands sent", "Commands failed", "Commands retried", "Per-miner targets"}
    assert wanted <= titles, sorted(wanted - titles)
