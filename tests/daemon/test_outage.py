"""Outages: many miners down at once are one log line; storage away keeps events for later."""

from __future__ import annotations

import logging
from pathlib import Path

import pytest
from fleetd.drivers import Endpoint, Timeouts

from fleetd.config import parse_config
from fleetd.daemon.core import Daemon
from fleetd.daemon.events import Event, EventKind
from fleetd.daemon.poller import MinerTarget, Poller
from fleetd.daemon.state import FleetState, Health
from fleetd.sim.fleet import Fleet, Group
from tests.conftest import web_port

from .conftest import until


async def test_mass_outage_is_one_log_line_and_one_event_per_miner(caplog: pytest.LogCaptureFixture) -> None:
    hosts = [f"127.22.50.{i}" for i in range(1, 16)]  # nothing listens there: a switch has failed
    cfg = parse_config(
        {"polling": {"interval_s": 2, "timeout_s": 1, "connect_timeout_s": 0.5, "down_after": 1}}
    )
    events: list[Event] = []
    poller = Poller(FleetState(), cfg.polling, on_event=events.append)
    t = Timeouts(connect_s=0.5, read_s=1.0)
    for h in hosts:
        poller.add(MinerTarget(h, Endpoint(h, web_port=web_port(), timeouts=t)))
    caplog.set_level(logging.INFO, "fleetd")
    await poller.cycle()
    await poller.close()
    assert all(r.health is Health.DOWN for r in poller.state.miners.values())
    down = [e for e in events if e.kind is EventKind.MINER_DOWN]
    assert sorted(e.miner_id for e in down) == sorted(hosts)  # type: ignore[type-var]
    loud = [r.getMessage() for r in caplog.records if r.levelno >= logging.WARNING]
    assert len(loud) == 1, loud
    assert loud[0].startswith("15 miners went down: 127.22.50.") and "(+5 more)" in loud[0]
    assert ": 15 of them)" in loud[0]  # the common reason, with its count


async def test_mass_recovery_is_one_log_line(caplog: pytest.LogCaptureFixture) -> None:
    port = web_port()
    fleet = Fleet([Group("Antminer S19 Pro", 12, "127.22.52.1", {"web": port}, ramp_s=0, jitter=0)])
    async with fleet as miners:
        cfg = parse_config({"polling": {"interval_s": 2, "timeout_s": 1, "down_after": 1}})
        events: list[Event] = []
        poller = Poller(FleetState(), cfg.polling, on_event=events.append)
        for m in miners:
            poller.add(MinerTarget(m.host, Endpoint(m.host, web_port=port, timeouts=Timeouts(0.5, 1.0))))
        await poller.cycle()
        for m in miners:
            await fleet.emulators[m.host].stop()
            poller.state.miners[m.host].next_poll_at = 0.0
        await poller.cycle()
        assert poller.state.down() == 12
        for m in miners:
            await fleet.emulators[m.host].start()
        for rec in poller.state.miners.values():
            rec.next_poll_at = 0.0
        caplog.set_level(logging.INFO, "fleetd")
        await poller.cycle()
        await poller.close()
    assert poller.state.up() == 12
    assert [e.kind for e in events].count(EventKind.MINER_UP) == 12
    lines = [r.getMessage() for r in caplog.records if "back up" in r.getMessage()]
    assert len(lines) == 1 and lines[0].startswith("12 miners are back up: ") and "(+2 more)" in lines[0]


async def test_events_and_identities_while_storage_is_down_are_written_later(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    from fleetd.daemon import storage_handoff

    monkeypatch.setattr(storage_handoff, "STORAGE_RETRY_S", 0.2)
    blocker = tmp_path / "db"
    blocker.write_text("a file where the database directory should be")
    port = web_port()
    a, b = "127.22.51.1", "127.22.51.2"
    cfg = parse_config(
        {
            "polling": {"interval_s": 0.2, "jitter_s": 0, "timeout_s": 1, "down_after": 1},
            "storage": {"url": f"sqlite:///{blocker / 'fleetd.db'}"},
            "miners": [{"host": h, "web_port": port} for h in (a, b)],
        }
    )
    fleet = Fleet([Group("Antminer S19 Pro", 2, a, {"web": port}, ramp_s=0, jitter=0)])
    async with fleet:
        d = Daemon(cfg, state_dir=tmp_path)
        await d.start()
        try:
            await until(lambda: d.state.up() == 2, what="both up without storage")
            await fleet.emulators[b].stop()
            await until(lambda: d.state.down() == 1, what="one down without storage")
            assert d.storage is None and any(item[0] == "identity" for item in d._spool.items())
            blocker.unlink()  # the database comes back
            await until(lambda: d.storage is not None, what="storage attached")
            assert d.storage is not None and d.storage.flush(10)
            kinds = [e["kind"] for e in d.storage.events(limit=50)]
            assert {"started", "storage_error", "miner_down"} <= set(kinds)
            assert [e["miner_id"] for e in d.storage.events(kind="miner_down")] == [b]
            for h in (a, b):  # identity recorded once: from the buffer, not derived a second time
                assert len(d.storage.identity_history(h)) == 1
            assert not d._spool.items() and len(d._spool) == 0
        finally:
            await d.stop()
