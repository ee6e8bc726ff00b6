"""Reading the shipped Grafana dashboards: their queries and the metric names these use."""

from __future__ import annotations

import json
import re
from collections.abc import Iterator
from pathlib import Path
from typing import Any

GRAFANA = Path(__file__).resolve().parents[2] / "grafana"
DASHBOARDS = ("fleetd-fleet.json", "fleetd-miner.json", "fleetd-curtailment.json")
HEALTH = "fleetd-health.json"  # its queries need findings and warnings: see test_grafana_health.py
ALL = (*DASHBOARDS, HEALTH)
_NAME = re.compile(r"\bfleetd_[a-z0-9_]+")


def load(name: str) -> dict[str, Any]:
    return json.loads((GRAFANA / name).read_text())


def panels(dash: dict[str, Any]) -> Iterator[dict[str, Any]]:
    for p in dash["panels"]:
        yield p
        yield from p.get("panels", [])


def queries(dash: dict[str, Any]) -> list[str]:
    """Every PromQL expression: panel targets and query variables."""
    out = [t["expr"] for p in panels(dash) for t in p.get("targets", [])]
    out += [v["definition"] for v in dash["templating"]["list"] if v["type"] == "query"]
    return out


def metric_names(expr: str) -> set[str]:
    return set(_NAME.findall(expr))


def concrete(expr: str, miner: str) -> str:
    """A dashboard query with its variables filled in, as Grafana would send it."""
    if expr.startswith("label_values("):  # a variable query: the metric selector inside
        expr = expr.removeprefix("label_values(").rsplit(",", 1)[0]
    expr = expr.replace("$__rate_interval", "1m")
    return expr.replace("$site", ".*").replace("$model", ".*").replace("$miner", miner)
