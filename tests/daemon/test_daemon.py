"""The Daemon end to end: emulated miners, storage, discovery, restart, reload."""

from __future__ import annotations

from pathlib import Path

import pytest

from fleetd.config import parse_config
from fleetd.daemon.core import Daemon
from fleetd.daemon.events import EventKind
from fleetd.daemon.state import Health
from fleetd.sim.fleet import Fleet, Group

from .conftest import config, subnet, until


async def test_restart_keeps_inventory_and_history(ports: dict[str, int], tmp_path: Path) -> None:
    net = subnet()
    groups = [
        Group("Antminer S19 Pro", 2, net + "1", ports, ramp_s=0, jitter=0),
        Group("Antminer S21", 1, net + "5", ports, ramp_s=0, jitter=0),  # only found by discovery
    ]
    async with Fleet(groups) as miners:
        static = [m.host for m in miners[:2]]
        found = miners[2].host
        cfg = config(static, discovery=[f"{net}4-{net}6"])
        d = Daemon(cfg, state_dir=tmp_path)
        await d.start()
        await until(lambda: d.state.up() == 3, what="3 miners up")
        assert d.state.miners[found].identity.model == "Antminer S21"  # type: ignore[union-attr]
        assert d.state.last_cycle is not None and d.progressing()
        assert "3 up, 0 down of 3 miners" in d.status_line()
        await d.stop()
        assert (tmp_path / "fleetd.db").exists()

        d2 = Daemon(cfg, state_dir=tmp_path)
        await d2.start()
        try:
            # The discovered miner is back before any scan, with its identity, labels and port.
            assert set(d2.state.miners) == {*static, found}
            assert d2.state.miners[found].identity is not None
            await until(lambda: d2.state.up() == 3, what="3 miners up after restart")
            assert d2.storage is not None
            assert d2.storage.flush(10)
            inventory = {m["id"]: m for m in d2.storage.miners()}
            assert set(inventory) == {*static, found}
            assert inventory[found]["source"] == "discovery" and inventory[found]["model"] == "Antminer S21"
            for mid in inventory:  # identity recorded once, not again after the restart
                assert len(d2.storage.identity_history(mid)) == 1
            kinds = [e["kind"] for e in d2.storage.events(limit=100)]
            assert kinds.count("started") == 2 and kinds.count("stopped") == 1
            assert "miner_added" in kinds
            latest = {r["miner_id"]: r for r in d2.storage.latest()}
            assert latest[found]["health"] == "up" and latest[found]["hashrate_ths"] > 0
        finally:
            await d2.stop()


async def test_identity_change_is_recorded_in_history(ports: dict[str, int], tmp_path: Path) -> None:
    host = subnet() + "1"
    cfg = config([host])
    d = Daemon(cfg, state_dir=tmp_path)
    async with Fleet([Group("Antminer S19 Pro", 1, host, ports, ramp_s=0, jitter=0)]):
        await d.start()
        await until(lambda: d.state.up() == 1, what="miner up")
    async with Fleet([Group("Antminer S21", 1, host, ports, ramp_s=0, jitter=0)]):
        rec = d.state.miners[host]
        await until(lambda: rec.identity is not None and rec.identity.model == "Antminer S21", what="swap")
        await d.stop()
    d2 = Daemon(cfg, state_dir=tmp_path)
    await d2.start()
    try:
        assert d2.storage is not None
        history = d2.storage.identity_history(host)
        assert [h["model"] for h in history] == ["Antminer S19 Pro", "Antminer S21"]
        assert d2.storage.miners()[0]["model"] == "Antminer S21"
        assert d2.storage.events(kind="identity_changed")
    finally:
        await d2.stop()


async def test_rollups_integrate_energy_and_hashes(ports: dict[str, int], tmp_path: Path) -> None:
    host = subnet() + "1"
    # Stock Antminers do not report their power: energy comes from the configured nominal power.
    d = Daemon(config([host], interval_s=0.2, miner={"nominal_power_w": 3250}), state_dir=tmp_path)
    async with Fleet([Group("Antminer S19 Pro", 1, host, ports, ramp_s=0, jitter=0)]):
        await d.start()
        await until(lambda: d.poller.cycles >= 6, what="a few cycles")
        await d.stop()  # stop writes the partial hour
    d2 = Daemon(config([host]), state_dir=tmp_path)
    await d2.start()
    try:
        assert d2.storage is not None
        rows = d2.storage.rollups(miner_id=host)
        assert rows and sum(r["samples"] for r in rows) >= 4
        uptime = sum(r["uptime_s"] for r in rows)
        energy_kwh = sum(r["energy_kwh"] for r in rows)
        hashes = sum(r["hashes_th"] for r in rows)
        assert 0.5 < uptime < 10
        assert energy_kwh == pytest.approx(3250 * uptime / 3.6e6, rel=0.2)
        assert hashes == pytest.approx(110 * uptime, rel=0.2)
    finally:
        await d2.stop()


async def test_reload_adds_and_removes_miners(ports: dict[str, int], tmp_path: Path) -> None:
    net = subnet()
    async with Fleet([Group("Antminer S19 Pro", 3, net + "1", ports, ramp_s=0, jitter=0)]) as miners:
        hosts = [m.host for m in miners]
        d = Daemon(config(hosts[:2]), state_dir=tmp_path, storage=False)
        await d.start()
        try:
            await until(lambda: d.state.up() == 2, what="2 up")
            later = await d.reload(config(hosts[1:], interval_s=0.3))
            assert later == []
            assert set(d.state.miners) == set(hosts[1:])
            assert d.poller.polling.interval_s == 0.3
            await until(lambda: d.state.miners[hosts[2]].health is Health.UP, what="new miner up")
            kinds = [e.kind for e in d.events]
            assert EventKind.MINER_REMOVED in kinds and EventKind.MINER_ADDED in kinds
            assert EventKind.CONFIG_RELOADED in kinds
            moved = parse_config({"api": {"listen": "127.0.0.1:9999"}, "miners": [{"host": hosts[1]}]})
            assert await d.reload(moved) == ["api.listen"]
        finally:
            await d.stop()


async def test_no_miners_no_config_starts_sensibly(tmp_path: Path) -> None:
    d = Daemon(parse_config({}), state_dir=tmp_path / "state")
    await d.start()
    try:
        await until(lambda: d.state.last_cycle is not None, what="a cycle")
        assert d.progressing() and d.state.miners == {}
        assert (tmp_path / "state" / "fleetd.db").exists()
    finally:
        await d.stop()


async def test_economics_prices_the_rollups(ports: dict[str, int], tmp_path: Path) -> None:
    host = subnet() + "1"
    cfg = config([host], interval_s=0.2, miner={"nominal_power_w": 3250})
    economics = {
        "pool_fee": 0.0,
        "hashprice": [{"kind": "static", "per_ph_day": 50.0}],
        "tariff": {"kind": "flat", "price_per_kwh": 0.05},
    }
    cfg = cfg.model_copy(update={"economics": economics})
    d = Daemon(cfg, state_dir=tmp_path)
    async with Fleet([Group("Antminer S19 Pro", 1, host, ports, ramp_s=0, jitter=0)]):
        await d.start()
        assert d.economics is not None and d.scheduler is not None
        assert any(j.id.startswith("economics.") for j in d.scheduler.get_jobs())
        await until(lambda: d.economics.hashprice().value is not None, what="hashprice")  # type: ignore[union-attr]
        await until(lambda: d.poller.cycles >= 5, what="a few cycles")
        await d.stop()
    d2 = Daemon(parse_config({}), state_dir=tmp_path)
    await d2.start()
    try:
        assert d2.storage is not None
        rows = d2.storage.rollups(miner_id=host)
        energy = sum(r["energy_kwh"] for r in rows)
        hashes = sum(r["hashes_th"] for r in rows)
        assert energy > 0 and hashes > 0
        assert sum(r["cost"] for r in rows) == pytest.approx(energy * 0.05, rel=0.01)
        assert sum(r["revenue"] for r in rows) == pytest.approx(hashes / 1000 / 86400 * 50.0, rel=0.01)
        assert {r["currency"] for r in rows} == {"USD"}
    finally:
        await d2.stop()


async def test_storage_unavailable_at_start_polling_goes_on(
    ports: dict[str, int], tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    from fleetd.daemon import storage_handoff

    monkeypatch.setattr(storage_handoff, "STORAGE_RETRY_S", 0.2)
    blocker = tmp_path / "db"
    blocker.write_text("a file where the database directory should be")
    host = subnet() + "1"
    cfg = config([host]).model_copy(update={"storage": parse_config({}).storage.model_copy(
        update={"url": f"sqlite:///{blocker / 'fleetd.db'}"})})  # fmt: skip
    d = Daemon(cfg, state_dir=tmp_path)
    async with Fleet([Group("Antminer S19 Pro", 1, host, ports, ramp_s=0, jitter=0)]):
        await d.start()
        try:
            assert d.storage is None
            assert any(e.kind is EventKind.STORAGE_ERROR for e in d.events)
            await until(lambda: d.state.up() == 1, what="polling without storage")
            blocker.unlink()  # the database becomes available
            await until(lambda: d.storage is not None, what="storage attached")
            assert d.storage is not None and d.storage.flush(10)
            (m,) = d.storage.miners()
            assert m["id"] == host and m["model"] == "Antminer S19 Pro"
            assert len(d.storage.identity_history(host)) == 1
        finally:
            await d.stop()


async def test_secrets_never_reach_logs_events_or_storage(
    ports: dict[str, int], tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    import logging

    secret = "hunter2-do-not-print"
    net = subnet()
    cfg = parse_config(
        {
            "allow_inline_secrets": True,
            "polling": {"interval_s": 0.2, "jitter_s": 0, "timeout_s": 1, "down_after": 1},
            "credentials": {"default": {"username": "root", "password": secret}},
            "miners": [
                {"host": net + "1", "web_port": ports["web"]},
                {"host": net + "2", "web_port": ports["web"]},
            ],
        }
    )
    caplog.set_level(logging.DEBUG)
    groups = [Group("Antminer S19 Pro", 1, net + "1", ports, faults={"wrong_password": 1.0}, ramp_s=0)]
    async with Fleet(groups):  # net.2 has no miner: it goes down
        d = Daemon(cfg, state_dir=tmp_path)
        await d.start()
        await until(lambda: d.poller.cycles >= 3 and d.state.down() == 1, what="a few cycles")
        texts = [repr(d.config), repr(d.poller.targets()), *(repr(r) for r in d.state.miners.values())]
        await d.stop()
    texts += [r.getMessage() for r in caplog.records] + [e.message for e in d.events]
    assert not [t for t in texts if secret in t]
    assert secret.encode() not in (tmp_path / "fleetd.db").read_bytes()
