"""The poller against emulated miners over real sockets: up, down, back, identity, slow/dead, overrun."""

from __future__ import annotations

import asyncio
import logging
import time

import pytest
from fleetd.drivers import Endpoint, Timeouts

from fleetd.daemon.events import Event, EventKind
from fleetd.daemon.poller import MinerTarget, Poller
from fleetd.daemon.state import FleetState, Health, Labels
from fleetd.sim.fleet import Fleet, Group

from .conftest import config, subnet


def _poller(hosts: list[str], web: int, **polling: object) -> tuple[Poller, list[Event]]:
    cfg = config(hosts, **polling)
    events: list[Event] = []
    poller = Poller(FleetState(), cfg.polling, on_event=events.append)
    t = Timeouts(connect_s=cfg.polling.connect_timeout_s, read_s=cfg.polling.timeout_s)
    for h in hosts:
        poller.add(MinerTarget(h, Endpoint(h, web_port=web, timeouts=t), labels=Labels("hall", "A1", h[-1])))
    return poller, events


async def test_miners_appear_with_identity_and_snapshot(ports: dict[str, int]) -> None:
    net = subnet()
    groups = [
        Group("Antminer S19 Pro", 2, net + "1", ports, ramp_s=0, jitter=0),
        Group("Antminer S21", 1, net + "3", ports, ramp_s=0, jitter=0),
    ]
    async with Fleet(groups) as miners:
        poller, _ = _poller([m.host for m in miners], ports["web"])
        stats = await poller.cycle()
        assert (stats.polled, stats.ok, stats.failed, stats.overran) == (3, 3, 0, False)
        recs = poller.state.miners
        assert [recs[m.host].identity.model for m in miners] == [m.model for m in miners]  # type: ignore[union-attr]
        for m in miners:
            rec = recs[m.host]
            assert rec.health is Health.UP and rec.driver == "antminer" and rec.failures == 0
            assert rec.snapshot is not None and rec.snapshot.hashrate_ths and rec.snapshot.hashrate_ths > 50
            assert rec.labels.site == "hall"
        drivers = [poller.driver(m.host) for m in miners]
        assert all(drivers)
        # Drivers are cached: the next cycle detects nothing again.
        for rec in recs.values():
            rec.next_poll_at = 0.0
        await poller.cycle()
        assert [poller.driver(m.host) for m in miners] == drivers
        await poller.close()


async def test_down_is_backed_off_logged_once_and_comes_back(
    ports: dict[str, int], caplog: pytest.LogCaptureFixture
) -> None:
    net = subnet()
    fleet = Fleet([Group("Antminer S19 Pro", 2, net + "1", ports, ramp_s=0, jitter=0)])
    async with fleet as miners:
        hosts = [m.host for m in miners]
        poller, events = _poller(hosts, ports["web"], down_after=2, max_backoff_s=0.8, interval_s=0.2)
        await poller.cycle()
        a, b = (poller.state.miners[h] for h in hosts)
        assert a.health is Health.UP and b.health is Health.UP

        await fleet.emulators[b.host].stop()  # the miner goes away: connection refused
        caplog.set_level(logging.DEBUG, "fleetd")
        await asyncio.sleep(0.21)
        await poller.cycle()
        assert b.failures == 1 and b.health is Health.UP  # one miss is not "down" yet
        await poller.cycle()  # failed polls are due again at once
        assert b.health is Health.DOWN and b.last_error
        assert poller.state.down() == 1 and poller.state.up() == 1
        now = time.time()
        assert b.next_poll_at > now  # backed off
        await asyncio.sleep(0.21)
        stats = await poller.cycle()  # the down miner is not due: only the healthy one is polled
        assert stats.polled == 1 and a.health is Health.UP
        for _ in range(6):  # a few more failures while backed off
            b.next_poll_at = 0.0
            await poller.cycle()
        loud = [r for r in caplog.records if r.levelno >= logging.WARNING and b.host in r.getMessage()]
        assert len(loud) == 1 and "down" in loud[0].getMessage()  # loudly once, then quietly
        assert [e.kind for e in events].count(EventKind.MINER_DOWN) == 1
        assert b.next_poll_at - time.time() <= 0.8 * 1.1 + 0.1  # capped backoff

        await fleet.emulators[b.host].start()  # back
        b.next_poll_at = 0.0
        await poller.cycle()
        assert b.health is Health.UP and b.failures == 0 and b.last_error == ""
        up = [e for e in events if e.kind is EventKind.MINER_UP]
        assert len(up) == 1 and up[0].miner_id == b.host
        await poller.close()


async def test_identity_change_behind_the_same_address(ports: dict[str, int]) -> None:
    host = subnet() + "1"
    seen: list[tuple[str | None, str]] = []
    async with Fleet([Group("Antminer S19 Pro", 1, host, ports, ramp_s=0, jitter=0)]):
        poller, events = _poller([host], ports["web"])
        poller.on_identity = lambda rec, old, new: seen.append((old.model if old else None, new.model))
        await poller.cycle()
        await poller.cycle()
    async with Fleet([Group("Antminer S21", 1, host, ports, ramp_s=0, jitter=0)]):  # swapped
        rec = poller.state.miners[host]
        for _ in range(4):
            rec.next_poll_at = 0.0
            await poller.cycle()
            if rec.identity and rec.identity.model == "Antminer S21":
                break
        assert rec.health is Health.UP and rec.identity is not None and rec.identity.model == "Antminer S21"
    assert seen == [(None, "Antminer S19 Pro"), ("Antminer S19 Pro", "Antminer S21")]
    changed = [e for e in events if e.kind is EventKind.IDENTITY_CHANGED]
    assert len(changed) == 1
    assert "'Antminer S19 Pro' -> 'Antminer S21'" in changed[0].message
    await poller.close()


async def test_slow_and_dead_miners_do_not_delay_the_others(ports: dict[str, int]) -> None:
    net = subnet()
    groups = [
        Group("Antminer S19 Pro", 4, net + "1", ports, ramp_s=0, jitter=0),
        Group("Antminer S19 Pro", 1, net + "10", ports, faults={"dead": 1.0}),
        Group("Antminer S19 Pro", 1, net + "20", ports, faults={"slow": 1.0}, slow_s=5.0),
    ]
    async with Fleet(groups) as miners:
        hosts = [m.host for m in miners]
        poller, _ = _poller(hosts, ports["web"], timeout_s=1.0, interval_s=5.0, concurrency=16)
        await poller.cycle()  # detection
        for rec in poller.state.miners.values():
            rec.next_poll_at = 0.0  # all due again now
        stats = await poller.cycle()
        took = stats.ended_at - stats.started_at
        assert (stats.polled, stats.ok, stats.failed) == (6, 4, 2)
        # Bounded by one poll timeout, not by the sum of the bad miners' delays (2 x timeout, or 5 s).
        assert took < 1.9 and not stats.overran
        for h in hosts[:4]:
            rec = poller.state.miners[h]
            assert rec.last_ok_at is not None and rec.last_ok_at - stats.started_at < 0.9
        for h in hosts[4:]:
            assert poller.state.miners[h].last_error == "no answer within the poll timeout"
        await poller.close()


async def test_overrun_is_reported_and_leftovers_go_first(
    ports: dict[str, int], caplog: pytest.LogCaptureFixture
) -> None:
    net = subnet()
    groups = [Group("Antminer S19 Pro", 6, net + "1", ports, faults={"slow": 1.0}, slow_s=0.3)]
    async with Fleet(groups) as miners:
        hosts = [m.host for m in miners]
        poller, events = _poller(hosts, ports["web"], concurrency=1, interval_s=1.0, timeout_s=3.0)
        caplog.set_level(logging.WARNING, "fleetd")
        stats = await poller.cycle()
        assert stats.overran and 0 < stats.polled < 6  # stopped taking miners at the deadline
        assert stats.skipped == 6 - stats.polled
        first = list(poller.polled_ids)
        assert [e.kind for e in events].count(EventKind.CYCLE_OVERRAN) == 1
        assert any("overran" in r.getMessage() for r in caplog.records)
        stats2 = await poller.cycle()
        left = [h for h in hosts if h not in first]
        assert poller.polled_ids[: len(left)] == [h for h in poller.polled_ids if h in left][: len(left)]
        assert set(poller.polled_ids[: min(len(left), stats2.polled)]) <= set(left)
        assert [e.kind for e in events].count(EventKind.CYCLE_OVERRAN) == 1  # not repeated every cycle
        await poller.close()
