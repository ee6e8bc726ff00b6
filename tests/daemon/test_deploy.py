"""The shipped systemd unit: notify type, watchdog, state directory, credentials, reload, hardening."""

from __future__ import annotations

import shutil
import subprocess
from pathlib import Path

UNIT = Path(__file__).resolve().parents[2] / "deploy" / "fleetd.service"


def _settings() -> dict[str, list[str]]:
    out: dict[str, list[str]] = {}
    for line in UNIT.read_text().splitlines():
        if "=" in line and not line.startswith(("#", "[")):
            key, value = line.split("=", 1)
            out.setdefault(key.strip(), []).append(value.strip())
    return out


def test_unit_runs_fleetd_as_a_notify_service() -> None:
    s = _settings()
    assert s["Type"] == ["notify"] and s["WatchdogSec"] and s["ExecReload"] == ["/bin/kill -HUP $MAINPID"]
    assert any("fleetd run --config /etc/fleetd/fleetd.toml" in v for v in s["ExecStart"])
    assert s["StateDirectory"] == ["fleetd"] and s["LoadCredential"]
    for key in ("NoNewPrivileges", "ProtectSystem", "ProtectHome", "PrivateTmp", "RestrictAddressFamilies"):
        assert key in s, key


def test_unit_passes_systemd_analyze() -> None:
    if shutil.which("systemd-analyze") is None:
        return
    res = subprocess.run(["systemd-analyze", "verify", str(UNIT)], capture_output=True, text=True, timeout=60)
    problems = [ln for ln in res.stderr.splitlines() if ln.strip() and "is not executable" not in ln]
    assert not problems, problems
