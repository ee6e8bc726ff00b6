"""`fleetd scan/probe/sleep/wake` on a mixed Antminer + Whatsminer fleet (CLI in-process)."""

from __future__ import annotations

import asyncio
import json
import threading
from collections.abc import Iterator

import pytest

from fleetd.cli import main
from fleetd.sim.fleet import Fleet, Group, SimMiner
from tests.conftest import loopback_host, web_port

from .conftest import BLOCK, M50S, M60S

S19 = "Antminer S19 Pro"


@pytest.fixture
def mixed() -> Iterator[tuple[list[SimMiner], Fleet, asyncio.AbstractEventLoop]]:
    """One S19 Pro, one M50S (API v2), one M60S (API v3) on consecutive 127.12.x.y addresses."""
    base = loopback_host(BLOCK)
    for _ in range(2):
        loopback_host(BLOCK)
    a, b, c, d = (int(x) for x in base.split("."))
    hosts = [f"{a}.{b}.{c}.{d + i}" for i in range(3)]
    groups = [
        Group(S19, 1, hosts[0], ports={"web": web_port()}, jitter=0.0, ramp_s=0.2),
        Group(M50S, 1, hosts[1], jitter=0.0, ramp_s=0.2),
        Group(M60S, 1, hosts[2], jitter=0.0, ramp_s=0.2),
    ]
    loop = asyncio.new_event_loop()
    thread = threading.Thread(target=loop.run_forever, daemon=True)
    thread.start()
    fleet = Fleet(groups)
    miners = asyncio.run_coroutine_threadsafe(fleet.__aenter__(), loop).result(30)
    try:
        yield miners, fleet, loop
    finally:
        asyncio.run_coroutine_threadsafe(fleet.__aexit__(None, None, None), loop).result(30)
        loop.call_soon_threadsafe(loop.stop)
        thread.join(10)
        loop.close()


def cli(capsys: pytest.CaptureFixture[str], *argv: str) -> tuple[int, str, str]:
    code = main(list(argv))
    out, err = capsys.readouterr()
    return code, out, err


def test_scan_identifies_a_mixed_fleet(mixed, capsys) -> None:
    miners, _, _ = mixed
    targets = ",".join(m.host for m in miners)
    code, out, err = cli(capsys, "scan", targets, "--json", "--web-port", str(web_port()), "--timeout", "2")
    assert code == 0, err
    rows = {r["host"]: r for r in map(json.loads, out.splitlines())}
    got = {h: (r["vendor"], r["model"], r["api"]) for h, r in rows.items()}
    assert got == {
        miners[0].host: ("antminer", "Antminer S19 Pro", "cgminer"),
        miners[1].host: ("whatsminer", "Whatsminer M50S_VH50", "btminer-v2"),
        miners[2].host: ("whatsminer", "Whatsminer M60S_VK40", "btminer-v3"),
    }


@pytest.mark.parametrize("index", [1, 2], ids=["v2", "v3"])
def test_probe_sleep_wake_on_whatsminers(mixed, capsys, index: int) -> None:
    miners, fleet, loop = mixed
    host = miners[index].host
    code, out, err = cli(capsys, "probe", host, "--json", "--timeout", "2")
    assert code == 0, err
    reading = json.loads(out)
    assert reading["identity"]["vendor"] == "whatsminer" and reading["snapshot"]["is_mining"]
    code, out, err = cli(capsys, "sleep", host, "--timeout", "2", "--verify-timeout", "5")
    assert code == 0, err
    assert "asleep, verified" in out + err

    async def sleeping() -> bool:
        return fleet.state(host).sleeping

    assert asyncio.run_coroutine_threadsafe(sleeping(), loop).result(5)
    code, out, err = cli(capsys, "wake", host, "--timeout", "2", "--verify-timeout", "5")
    assert code == 0, err
    assert "awake, verified" in out + err
    assert not asyncio.run_coroutine_threadsafe(sleeping(), loop).result(5)
