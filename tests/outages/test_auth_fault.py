"""A miner whose web password is wrong shows an auth fault in the API, in /metrics and as an event."""

from __future__ import annotations

import re
from pathlib import Path

import aiohttp

from fleetd.api import ApiServer
from fleetd.config import parse_config
from fleetd.daemon.core import Daemon
from fleetd.daemon.events import EventKind
from fleetd.sim.fleet import Fleet, Group
from tests.conftest import web_port

from .conftest import subnet, until


def test_driver_and_health_agree_on_the_fault_code() -> None:
    from fleetd.drivers.antminer import driver

    from fleetd.health import vendor_codes

    assert driver.WEB_AUTH_FAULT == vendor_codes.WEB_AUTH_FAULT


async def test_wrong_web_password_is_an_auth_fault_everywhere(tmp_path: Path) -> None:
    port = web_port()
    good, bad = subnet(83) + "1", subnet(83) + "1"
    groups = [
        Group("Antminer S19 Pro", 1, good, {"web": port}, ramp_s=0, jitter=0),
        Group("Antminer S19 Pro", 1, bad, {"web": port}, ramp_s=0, jitter=0, faults={"wrong_password": 1.0}),
    ]
    cfg = parse_config(
        {
            "polling": {"interval_s": 0.3, "jitter_s": 0.0, "timeout_s": 1.0, "connect_timeout_s": 0.5},
            "miners": [{"host": h, "web_port": port} for h in (good, bad)],
            "health": {"findings": {"min_duration_s": 0}},  # findings start at once (held 120 s by default)
        }
    )
    async with Fleet(groups):
        d = Daemon(cfg, state_dir=tmp_path, storage=False)
        await d.start()
        server = ApiServer.for_daemon(d, listen="127.0.0.1:0")
        await server.start()
        try:
            await until(lambda: d.health is not None and d.state.up() == 2, what="both up, health running")
            await until(
                lambda: any(e.kind is EventKind.FINDING_STARTED and e.miner_id == bad for e in d.events),
                what="the finding's event",
            )
            ev = next(e for e in d.events if e.kind is EventKind.FINDING_STARTED and e.miner_id == bad)
            assert "web_auth_failed" in ev.message and "password" in ev.message
            assert not any(e.kind is EventKind.FINDING_STARTED and e.miner_id == good for e in d.events)
            async with aiohttp.ClientSession(server.url) as http:
                async with http.get(f"/api/miners/{bad}") as r:
                    miner = await r.json()
                async with http.get(f"/api/miners/{good}") as r:
                    fine = await r.json()
                async with http.get("/metrics") as r:
                    text = await r.text()
        finally:
            await server.stop()
            await d.stop()
    assert miner["faults"] == 1 and fine["faults"] == 0
    codes = [f["code"] for f in miner["snapshot"]["errors"]]
    assert codes == ["web_auth_failed"]
    faults = {
        m.group(1): float(m.group(2))
        for m in re.finditer(r'^fleetd_miner_faults\{[^}]*miner="([^"]+)"[^}]*\} (\S+)$', text, re.M)
    }
    assert faults.get(bad) == 1 and faults.get(good) == 0, faults
