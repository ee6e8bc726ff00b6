"""Curtailment end to end: a daemon polling emulated miners over loopback, prices from an ERCOT emulator.

At a $35/PH/day hashprice an S19 Pro (29.5 J/TH) breaks even near $48/MWh and an S21 (17.5 J/TH) near
$82/MWh, so a $70/MWh spike must put exactly the S19 Pros to sleep.
"""

from __future__ import annotations

import asyncio
import itertools
import time
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from pathlib import Path
from typing import Any

import aiohttp

from fleetd.api.app import ApiServer
from fleetd.config import parse_config
from fleetd.curtail.model import Actual
from fleetd.daemon import Daemon
from fleetd.daemon.events import EventKind
from fleetd.sim.ercot import ErcotEmulator, PriceScenario
from fleetd.sim.fleet import Fleet, Group
from tests.conftest import loopback_host, web_port

BLOCK = 120
OLD = "Antminer S19 Pro"
NEW = "Antminer S21"
TOKEN = "e2e-token-0123456789"


def _hosts(n: int) -> list[str]:
    return [loopback_host(BLOCK) for _ in range(n)]


def _config(hosts: list[str], prices_url: str, **curtailment: Any) -> Any:
    port = web_port()
    section = {
        "enforce": True,
        "interval_s": 1.0,
        "ramp": {"max_miners": 1, "step_s": 0.4},
        "dwell": {"min_on_s": 0.0, "min_off_s": 0.0},
        "retry": {"attempts": 2, "backoff_s": 0.3, "max_backoff_s": 1.0, "verify_timeout_s": 3.0},
        "rules": [
            {"kind": "economic", "name": "unprofitable", "confirm": 1, "resume_confirm": 1},
        ],
    } | curtailment
    return parse_config(
        {
            "api": {"token": TOKEN},
            "allow_inline_secrets": True,
            "polling": {"interval_s": 0.5, "jitter_s": 0.0, "timeout_s": 2.0, "connect_timeout_s": 0.5},
            "miners": [{"host": h, "web_port": port} for h in hosts],
            "economics": {
                "hashprice": [{"kind": "static", "per_ph_day": 35.0}],
                "tariff": {"kind": "ercot", "base_url": prices_url, "refresh_s": 0.3},
            },
            "curtailment": section,
        }
    )


@asynccontextmanager
async def farm(
    old: int = 2, new: int = 2, ignoring: int = 0
) -> AsyncIterator[tuple[Fleet, list[str], ErcotEmulator]]:
    """`old` S19 Pros, `new` S21s, then `ignoring` S19 Pros that acknowledge power commands and do nothing."""
    hosts = _hosts(old + new + ignoring)
    ports = {"web": web_port()}
    models = [OLD] * old + [NEW] * new + [OLD] * ignoring
    groups = [
        Group(
            m,
            1,
            h,
            ports,
            ramp_s=0,
            jitter=0,
            faults={"ignore_power_commands": 1.0} if i >= old + new else {},
        )
        for i, (m, h) in enumerate(zip(models, hosts, strict=True))
    ]
    fleet = Fleet(groups)
    prices = ErcotEmulator(loopback_host(BLOCK), 0, scenario=PriceScenario(low=25.0, price_now=25.0))
    async with fleet, prices:
        yield fleet, hosts, prices


async def until(cond: Any, within: float = 20.0, what: str = "condition") -> None:
    deadline = time.monotonic() + within
    while not cond():
        if time.monotonic() > deadline:
            raise AssertionError(f"timed out after {within:g} s waiting for {what}")
        await asyncio.sleep(0.05)


def actual(d: Daemon, host: str) -> Actual | None:
    st = d.curtail_status
    return st.miners[host].actual if st is not None and host in st.miners else None


def events(d: Daemon, kind: EventKind, host: str | None = None) -> list[Any]:
    return [e for e in d.events if e.kind is kind and (host is None or e.miner_id == host)]


def commands(fleet: Fleet, hosts: list[str]) -> dict[str, int]:
    return {h: fleet.state(h).power_commands for h in hosts}


async def test_spike_sleeps_exactly_the_loss_makers_in_ramp_steps_and_the_fall_restores_them(
    tmp_path: Path,
) -> None:
    async with farm(old=3, new=2) as (fleet, hosts, prices):
        old, new = hosts[:3], hosts[3:]
        d = Daemon(_config(hosts, prices.base_url), state_dir=tmp_path)
        await d.start()
        try:
            await until(lambda: d.curtail_status is not None and len(d.curtail_status.miners) == 5)
            await until(lambda: all(actual(d, h) is Actual.RUNNING for h in hosts), what="all running")
            assert sum(commands(fleet, hosts).values()) == 0  # already right: nothing is sent

            prices.scenario.price_now = 70.0
            await until(lambda: all(actual(d, h) is Actual.SLEEPING for h in old), what="S19 Pros asleep")
            assert all(fleet.state(h).sleeping for h in old)
            assert not any(fleet.state(h).sleeping for h in new)
            assert commands(fleet, new) == {h: 0 for h in new}
            sent = sorted(e.at for e in events(d, EventKind.CURTAIL_COMMAND))
            assert len(sent) == 3
            assert all(b - a >= 0.35 for a, b in itertools.pairwise(sent))  # one per 0.4 s step
            assert {e.miner_id for e in events(d, EventKind.CURTAIL_VERIFIED)} == set(old)
            reasons = {d.curtail_status.miners[h].reason.rule for h in old}
            assert reasons == {"unprofitable"}
            assert d.curtail_status.shed_kw > 9.0  # three 3.25 kW units

            prices.scenario.price_now = 25.0
            await until(lambda: all(actual(d, h) is Actual.RUNNING for h in hosts), what="all woken")
            assert not any(fleet.state(h).sleeping for h in hosts)
            wakes = sorted(e.at for e in events(d, EventKind.CURTAIL_COMMAND) if "wake" in e.message)
            assert len(wakes) == 3
            assert all(b - a >= 0.35 for a, b in itertools.pairwise(wakes))  # staggered
            assert commands(fleet, hosts) == {h: 2 if h in old else 0 for h in hosts}
        finally:
            await d.stop()
        assert d.storage is None
    from fleetd.storage.store import Storage

    st = Storage(f"sqlite:///{tmp_path / 'fleetd.db'}")
    st.open()
    try:
        log = st.curtail_log(limit=100)
        kinds = {(r["miner_id"], r["kind"]) for r in log}
        assert all((h, k) in kinds for h in old for k in ("decision", "command", "verified"))
        rows = {r["miner_id"]: r for r in st.curtail_states()}
        assert {rows[h]["actual"] for h in hosts} == {"running"}
    finally:
        st.close()


async def test_a_miner_that_ignores_commands_is_retried_then_flagged(tmp_path: Path) -> None:
    async with farm(old=1, new=1, ignoring=1) as (fleet, hosts, prices):
        good, liar = hosts[0], hosts[2]
        d = Daemon(_config(hosts, prices.base_url), state_dir=tmp_path)
        await d.start()
        try:
            await until(lambda: d.curtail_status is not None and actual(d, liar) is Actual.RUNNING)
            prices.scenario.price_now = 70.0
            await until(lambda: actual(d, liar) is Actual.UNRESPONSIVE, within=30, what="flagged")
            assert actual(d, good) is Actual.SLEEPING
            assert len(events(d, EventKind.CURTAIL_FAILED, liar)) == 1
            (flag,) = events(d, EventKind.CURTAIL_UNRESPONSIVE, liar)
            assert "unresponsive" in flag.message and flag.level == "error"
            assert fleet.state(liar).power_commands >= 2  # the first try and one retry
            m = d.curtail_status.miners[liar]
            assert m.failures == 2 and m.last_error
            assert d.curtail_status.failed.get("sleep") == 2 and d.curtail_status.retried.get("sleep") == 1
        finally:
            await d.stop()


async def test_restart_mid_event_changes_nothing_that_was_right(tmp_path: Path) -> None:
    async with farm(old=2, new=2) as (fleet, hosts, prices):
        old = hosts[:2]
        prices.scenario.price_now = 70.0
        cfg = _config(hosts, prices.base_url)
        d = Daemon(cfg, state_dir=tmp_path)
        await d.start()
        try:
            await until(lambda: all(actual(d, h) is Actual.SLEEPING for h in old), what="S19 Pros asleep")
        finally:
            await d.stop()
        before = commands(fleet, hosts)
        d2 = Daemon(cfg, state_dir=tmp_path)
        await d2.start()
        try:
            assert d2.curtailment is not None
            assert {h: d2.curtailment.states[h].actual for h in old} == {h: Actual.SLEEPING for h in old}
            await until(lambda: d2.curtail_status is not None, what="first pass")
            passes = d2.curtail_status.decided_at
            await until(lambda: d2.curtail_status.decided_at >= passes + 2.0, what="three more passes")
            assert commands(fleet, hosts) == before
            assert all(actual(d2, h) is Actual.SLEEPING for h in old)
            assert not events(d2, EventKind.CURTAIL_COMMAND)
        finally:
            await d2.stop()


async def test_dry_run_decides_and_logs_and_sends_nothing(tmp_path: Path) -> None:
    async with farm(old=2, new=1) as (fleet, hosts, prices):
        old = hosts[:2]
        d = Daemon(_config(hosts, prices.base_url, enforce=False), state_dir=tmp_path)
        await d.start()
        try:
            await until(lambda: d.curtail_status is not None and actual(d, hosts[0]) is Actual.RUNNING)
            prices.scenario.price_now = 70.0
            await until(lambda: len(events(d, EventKind.CURTAIL_COMMAND)) == 2, what="both logged")
            assert all("dry run: would sleep" in e.message for e in events(d, EventKind.CURTAIL_COMMAND))
            st = d.curtail_status
            assert not st.enforce
            assert {st.miners[h].target.action.value for h in old} == {"sleep"}
            assert {st.miners[h].waiting for h in old} == {"dry run"}
            await asyncio.sleep(1.5)
            assert commands(fleet, hosts) == {h: 0 for h in hosts}
            assert not any(fleet.state(h).sleeping for h in hosts)
            assert len(events(d, EventKind.CURTAIL_COMMAND)) == 2  # logged once, not every pass
        finally:
            await d.stop()


async def test_writes_without_the_token_are_refused_and_change_nothing(tmp_path: Path) -> None:
    async with farm(old=1, new=1) as (fleet, hosts, prices):
        d = Daemon(_config(hosts, prices.base_url), state_dir=tmp_path)
        await d.start()
        api = ApiServer.for_daemon(d, listen=f"{loopback_host(BLOCK)}:0")
        await api.start()
        try:
            await until(lambda: d.curtail_status is not None and actual(d, hosts[0]) is Actual.RUNNING)
            url = f"http://{api.host}:{api.port}/api/curtailment/pins"
            pin = {"action": "sleep", "miners": [hosts[1]]}
            async with aiohttp.ClientSession() as s:
                for headers in ({}, {"Authorization": "Bearer wrong-token"}):
                    async with s.post(url, json=pin, headers=headers) as r:
                        assert r.status == 401
                await asyncio.sleep(1.5)
                assert d.curtail_controls is not None and not d.curtail_controls.pins()
                assert commands(fleet, hosts) == {h: 0 for h in hosts}
                async with s.post(url, json=pin, headers={"Authorization": f"Bearer {TOKEN}"}) as r:
                    assert r.status in (200, 201), await r.text()
            await until(lambda: actual(d, hosts[1]) is Actual.SLEEPING, what="pinned miner asleep")
            assert d.curtail_status.miners[hosts[1]].reason.kind.value == "override"
        finally:
            await api.stop()
            await d.stop()


async def test_a_miner_without_sleep_is_reported_not_controllable_never_skipped(tmp_path: Path) -> None:
    async with farm(old=2, new=0) as (fleet, hosts, prices):
        readonly = hosts[1]
        cfg = _config(hosts, prices.base_url)
        miners = [m.model_copy(update={"driver": "cgminer"}) if m.host == readonly else m for m in cfg.miners]
        cfg = cfg.model_copy(update={"miners": miners})
        d = Daemon(cfg, state_dir=tmp_path)
        await d.start()
        try:
            await until(lambda: d.curtail_status is not None and actual(d, hosts[0]) is Actual.RUNNING)
            prices.scenario.price_now = 70.0
            await until(lambda: actual(d, hosts[0]) is Actual.SLEEPING, what="the controllable one asleep")
            said = lambda: events(d, EventKind.CURTAIL_NOT_CONTROLLABLE, readonly)  # noqa: E731
            await until(lambda: bool(said()), what="reported")
            m = d.curtail_status.miners[readonly]
            assert not m.controllable and m.target.action.value == "sleep" and m.waiting == "not controllable"
            assert fleet.state(readonly).power_commands == 0 and not fleet.state(readonly).sleeping
            assert len(said()) == 1
        finally:
            await d.stop()


def test_one_miners_absurd_figures_stay_its_own() -> None:
    """NaN, inf and 1e300 from one miner give no running figures for it and leave the fleet load finite."""
    from types import SimpleNamespace

    from fleetd.curtail.ramp import ControlState
    from fleetd.daemon.curtail_inputs import running_figures
    from fleetd.daemon.curtailment import _load_kw
    from fleetd.daemon.state import FleetState, Health, MinerRecord
    from fleetd.model import Mode, Snapshot

    st = FleetState()
    good = Snapshot(hashrate_ths=100.0, power_w=3000.0, is_mining=True, mode=Mode.NORMAL)
    for i, (hr, pw) in enumerate([(100.0, 3000.0), (float("nan"), float("inf")), (1e300, 1e300)]):
        snap = good if i == 0 else Snapshot(hashrate_ths=hr, power_w=pw, is_mining=True, mode=Mode.NORMAL)
        st.miners[f"m{i}"] = MinerRecord(f"m{i}", f"m{i}", snapshot=snap, health=Health.UP)
    runs = [running_figures(r, ControlState()) for r in st.miners.values()]
    assert runs[0] is not None and runs[0].power_w == 3000.0
    assert runs[1] is None and runs[2] is None
    assert _load_kw(SimpleNamespace(state=st)) == 3.0  # type: ignore[arg-type]


async def test_a_price_feed_down_from_the_start_raises_the_fail_safe_sends_nothing(tmp_path: Path) -> None:
    async with farm(old=2, new=0) as (fleet, hosts, _prices):
        dead = f"http://{loopback_host(BLOCK)}:9"  # nothing listens there: every fetch is refused
        d = Daemon(_config(hosts, dead), state_dir=tmp_path)
        await d.start()
        try:
            said = lambda: events(d, EventKind.CURTAIL_FAILSAFE)  # noqa: E731
            await until(lambda: bool(said()), what="the stale-price fail-safe")
            assert "electricity price missing" in said()[0].message and said()[0].level == "warning"
            assert d.curtail_status is not None and d.curtail_status.failsafe
            await asyncio.sleep(1.5)
            assert commands(fleet, hosts) == {h: 0 for h in hosts} and len(said()) == 1
        finally:
            await d.stop()
