"""The daemon on each database: restart keeps inventory, identity history, events and rollups."""

from __future__ import annotations

from pathlib import Path

from fleetd.config import parse_config
from fleetd.daemon.core import Daemon
from fleetd.sim.fleet import Fleet, Group
from tests.conftest import web_port
from tests.daemon.conftest import subnet, until


async def test_daemon_restart_keeps_everything(db_url: str, tmp_path: Path) -> None:
    port = web_port()
    net = subnet()
    cfg = parse_config(
        {
            "polling": {"interval_s": 0.3, "jitter_s": 0, "timeout_s": 1},
            "storage": {"url": db_url},
            "miners": [{"host": net + "1", "web_port": port, "site": "hall", "nominal_power_w": 3250}],
            "discovery": [{"targets": [f"{net}2-{net}3"], "web_port": port}],
        }
    )
    async with Fleet([Group("Antminer S19 Pro", 2, net + "1", {"web": port}, ramp_s=0, jitter=0)]):
        d = Daemon(cfg, state_dir=tmp_path)
        await d.start()
        await until(lambda: d.state.up() == 2 and d.poller.cycles >= 4, what="2 miners up, a few cycles")
        await d.stop()

        d2 = Daemon(cfg, state_dir=tmp_path)
        await d2.start()
        try:
            assert set(d2.state.miners) == {net + "1", net + "2"}
            assert d2.storage is not None and d2.storage.flush(10)
            inventory = {m["id"]: m for m in d2.storage.miners()}
            assert inventory[net + "1"]["site"] == "hall" and inventory[net + "2"]["source"] == "discovery"
            assert all(len(d2.storage.identity_history(mid)) == 1 for mid in inventory)
            assert sum(r["energy_kwh"] for r in d2.storage.rollups(miner_id=net + "1")) > 0
            assert [e["kind"] for e in d2.storage.events(limit=50)].count("started") == 2
        finally:
            await d2.stop()
