"""Per-vendor credentials through the daemon, and remembered sleep modes surviving a daemon restart."""

from __future__ import annotations

import itertools
from pathlib import Path
from typing import Any

import pytest
from fleetd.drivers.antminer import driver as antminer_driver
from fleetd.drivers.antminer import modes

from fleetd.config import parse_config
from fleetd.daemon.core import Daemon
from fleetd.daemon.state import Health
from fleetd.model import Mode
from fleetd.sim.fleet import Fleet, Group
from fleetd.transport.btminer import forget_tokens

from .conftest import until

BLOCK = 24
_subnets = itertools.count(1)
POLLING = {"interval_s": 60.0, "jitter_s": 0.0, "timeout_s": 2.0, "connect_timeout_s": 1.0}


def _subnet() -> str:
    return f"127.{BLOCK}.{next(_subnets)}."


def _verify_fast(d: Daemon, mid: str) -> Any:
    drv = d.poller.driver(mid)
    assert drv is not None, mid
    drv.endpoint = _fast(drv.endpoint)
    return drv


def _fast(ep: Any) -> Any:
    from dataclasses import replace

    return replace(ep, timeouts=replace(ep.timeouts, verify_s=5.0, verify_interval_s=0.1))


async def test_mixed_fleet_with_per_vendor_passwords(
    ports: dict[str, int], tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Antminer, Whatsminer v2 and v3, none with factory passwords, polled and commanded with one config."""
    net = _subnet()
    ant, wm2, wm3 = net + "1", net + "2", net + "3"
    # The Whatsminer emulators' `wrong_password` fault changes their passwords to "<default>-changed".
    monkeypatch.setenv("FLEETD_T24_COMMON", "admin-changed")
    monkeypatch.setenv("FLEETD_T24_ANT", "ant-secret")
    monkeypatch.setenv("FLEETD_T24_V3", "super-changed")
    cfg = parse_config(
        {
            "polling": POLLING,
            "credentials": {
                "default": {
                    "password": {"env": "FLEETD_T24_COMMON"},
                    "antminer": {"username": "root", "password": {"env": "FLEETD_T24_ANT"}},
                    "whatsminer": {"username": "super"},
                },
                # A common user name ("root") is an Antminer web user: it must not become the v3 account.
                "hall-b": {"username": "root", "whatsminer": {"password": {"env": "FLEETD_T24_V3"}}},
            },
            "miners": [
                {"host": ant, "web_port": ports["web"]},
                {"host": wm2},
                {"host": wm3, "credentials": "hall-b"},
            ],
        }
    )
    groups = [
        Group("Antminer S19 Pro", 1, ant, ports, ramp_s=0, jitter=0),
        Group("Whatsminer M50S_VH50", 1, wm2, faults={"wrong_password": 1.0}, ramp_s=0, jitter=0),
        Group("Whatsminer M60S_VK40", 1, wm3, faults={"wrong_password": 1.0}, ramp_s=0, jitter=0),
    ]
    fleet = Fleet(groups)
    async with fleet:
        fleet.state(ant).password = "ant-secret"
        d = Daemon(cfg, state_dir=tmp_path, storage=False)
        await d.start()
        try:
            await until(lambda: d.state.up() == 3, what="three miners up")
            drivers = {m.id: m.driver for m in d.state.miners.values()}
            assert drivers == {ant: "antminer", wm2: "whatsminer", wm3: "whatsminer"}
            assert d.state.miners[ant].snapshot.mode is Mode.NORMAL  # the web password worked in polls
            assert _verify_fast(d, wm2).api == "btminer-v2" and _verify_fast(d, wm3).api == "btminer-v3"
            for mid in (ant, wm2, wm3):  # privileged commands, each authenticated with its vendor's login
                drv = _verify_fast(d, mid)
                assert (await drv.sleep()).mode is Mode.SLEEP, mid
                assert fleet.state(mid).sleeping, mid
                await drv.wake()
                assert not fleet.state(mid).sleeping, mid
        finally:
            await d.stop()
            for h in (wm2, wm3):
                forget_tokens(h)


async def test_wake_after_a_daemon_restart_restores_low_power_mode(
    ports: dict[str, int], tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    host = _subnet() + "1"
    cfg = parse_config({"polling": POLLING, "miners": [{"host": host, "web_port": ports["web"]}]})
    fleet = Fleet([Group("Antminer S19 Pro", 1, host, ports, ramp_s=0, jitter=0)])
    async with fleet:
        fleet.state(host).mode = "low"
        first = Daemon(cfg, state_dir=tmp_path, storage=False)
        await first.start()
        try:
            await until(lambda: first.state.up() == 1, what="miner up")
            await _verify_fast(first, host).sleep()
        finally:
            await first.stop()
        journal = tmp_path / "drivers" / modes.MODES_FILE
        assert modes.read_journal(journal)[0] == {f"{host}:{ports['web']}": "3"}  # "3": low power

        # A new process remembers nothing in memory; only the state directory carries the mode over.
        monkeypatch.setattr(antminer_driver, "_MODE_BEFORE_SLEEP", {})
        monkeypatch.setattr(modes, "_JOURNALS", {})
        second = Daemon(cfg, state_dir=tmp_path, storage=False)
        await second.start()
        try:
            await until(lambda: second.state.miners[host].health is Health.UP, what="miner polled")
            woke = await _verify_fast(second, host).wake()
        finally:
            await second.stop()
        assert woke.mode is Mode.LOW and fleet.state(host).mode == "low"
        assert modes.read_journal(journal)[0] == {}
