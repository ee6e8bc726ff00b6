"""The shipped Prometheus alerting rules: promtool accepts them, their unit tests pass, each is complete."""

from __future__ import annotations

import re
import subprocess
from pathlib import Path

import pytest

from fleetd.exporters.prometheus import FAMILIES
from tests.conftest import require_binary

DEPLOY = Path(__file__).resolve().parents[2] / "deploy"
RULES = DEPLOY / "alerts.yml"
UNIT_TESTS = DEPLOY / "alerts.test.yml"
# Series other parts of fleetd export (docs/curtailment-design.md "Views contract") or Prometheus itself.
ELSEWHERE = {
    "fleetd_curtail_commands_failed_total",
    "fleetd_curtail_unresponsive",
}


def _alerts() -> dict[str, str]:
    """Alert name -> its block of text in alerts.yml."""
    text = RULES.read_text()
    blocks = re.split(r"\n(?=      - alert: )", text)
    return {m.group(1): b for b in blocks if (m := re.match(r"\s*- alert: (\w+)", b))}


@pytest.mark.prometheus
def test_promtool_checks_the_rules_and_runs_their_unit_tests() -> None:
    promtool = require_binary("promtool")
    check = subprocess.run([promtool, "check", "rules", str(RULES)], capture_output=True, text=True)
    assert check.returncode == 0, check.stdout + check.stderr
    assert f"SUCCESS: {len(_alerts())} rules found" in check.stdout
    test = subprocess.run(
        [promtool, "test", "rules", UNIT_TESTS.name], capture_output=True, text=True, cwd=DEPLOY
    )
    assert test.returncode == 0, test.stdout + test.stderr
    assert "SUCCESS" in test.stdout


def test_every_alert_has_for_severity_runbook_and_a_unit_test() -> None:
    alerts = _alerts()
    required = {
        "FleetdMinerDown",
        "FleetdHashrateBelowExpected",
        "FleetdMinerOverheating",
        "FleetdFanFailure",
        "FleetdDeadBoard",
        "FleetdCurtailCommandFailed",
        "FleetdCurtailUnresponsive",
        "FleetdPriceStale",
        "FleetdPollCycleOverrun",
        "FleetdStorageDown",
        "FleetdStorageBuffering",
    }
    assert required <= set(alerts)
    tested = set(re.findall(r"alertname: (\w+)", UNIT_TESTS.read_text()))
    assert set(alerts) <= tested, sorted(set(alerts) - tested)
    for name, block in alerts.items():
        assert re.search(r"\n\s+for: \d+[smh]", block), name
        assert re.search(r"severity: (warning|critical)\n", block), name
        assert re.search(r'runbook: ".{20,}"', block), name
        # only series fleetd exports (or the curtailment contract names) are used
        used = set(re.findall(r"\bfleetd_[a-z0-9_]+", block.split("annotations:")[0]))
        assert used <= set(FAMILIES) | ELSEWHERE, (name, used)
