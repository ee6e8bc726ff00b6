"""The bad-reply corpus (corpus.py) through `fleetd probe`, and through a daemon beside good miners.

Every kind is served by its own emulated miner. `fleetd probe` must print a clean one-line error or a
reading whose figures are all possible (with an "implausible" fault where figures were dropped),
never a traceback. Then one daemon (SQLite storage, MQTT to the real Mosquitto, the HTTP API and
/metrics) polls all of them beside good miners: the good miners' API rows, /api/fleet, /metrics
samples, MQTT messages and stored latest_state rows are intact and complete, and no impossible
figure of a bad miner shows anywhere.
"""

from __future__ import annotations

import contextlib
import json
import math
import re
import time
import uuid
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import aiohttp
import pytest

from fleetd.api import ApiServer
from fleetd.cli import main
from fleetd.config import parse_config
from fleetd.daemon.core import Daemon
from fleetd.sim.fleet import Group
from tests.cli.simthread import RunningFleet, running_fleet
from tests.conftest import loopback_host, require_service, web_port
from tests.exporters.test_mqtt import Listener

from .conftest import BLOCK, impossible_numbers
from .corpus import KINDS, M50S, S19, Kind

BROKER = ("127.0.0.1", 1883)
GOOD = ((S19, 110.0), (S19, 110.0), (S19, 110.0), (M50S, 126.0))  # model, nominal TH/s


def test_the_corpus_is_large_enough() -> None:
    assert len(KINDS) >= 25 and len({k.name for k in KINDS}) == len(KINDS)


class Site:
    def __init__(self, running: RunningFleet, good: dict[str, float], bad: dict[str, Kind]) -> None:
        self.running, self.good, self.bad = running, good, bad
        self.host_of = {k.name: h for h, k in bad.items()}


@pytest.fixture(scope="module")
def site() -> Iterator[Site]:
    good = {loopback_host(BLOCK): (model, ths) for model, ths in GOOD}
    bad = {loopback_host(BLOCK): kind for kind in KINDS}
    web = {"web": web_port()}
    groups = [Group(m, 1, h, web, ramp_s=0, jitter=0) for h, (m, _) in good.items()]
    groups += [Group(k.model, 1, h, web, ramp_s=0, jitter=0) for h, k in bad.items()]
    with running_fleet(*groups) as running:
        for host, kind in bad.items():
            emu = running.fleet.emulators[host]
            replies = running.call(kind.build, emu)
            running.call(setattr, emu.state.faults, "replies", replies)
        yield Site(running, {h: ths for h, (_, ths) in good.items()}, bad)


# --- probe ----------------------------------------------------------------------------------------


@pytest.mark.parametrize("kind", KINDS, ids=[k.name for k in KINDS])
def test_probe(kind: Kind, site: Site, capsys: pytest.CaptureFixture[str]) -> None:
    host = site.host_of[kind.name]
    argv = ["probe", host, "--json", "--timeout", "3", *(["--driver", kind.driver] if kind.driver else [])]
    code = main(argv)
    out, err = capsys.readouterr()
    assert "Traceback" not in out + err
    if code != 0:
        assert not kind.values, f"{kind.name}: decodable figures must give a reading, not {err!r}"
        lines = err.strip().splitlines()
        assert code == 1 and len(lines) == 1 and lines[0].startswith("fleetd probe: "), err
        assert "driver error" not in err
        return
    snapshot = json.loads(out)["snapshot"]
    assert not impossible_numbers(snapshot), impossible_numbers(snapshot)
    if kind.values:
        assert any(e["code"] == "implausible" for e in snapshot["errors"]) or not kind.fault, snapshot


# --- daemon ---------------------------------------------------------------------------------------


def _last(listener: Listener, topic: str) -> Any:
    payloads = listener.on(topic)
    return json.loads(payloads[-1]) if payloads else None


async def _until(cond: Any, within: float, what: str) -> None:
    import asyncio

    deadline = time.monotonic() + within
    while not cond():
        assert time.monotonic() < deadline, f"timed out waiting for {what}"
        await asyncio.sleep(0.1)


async def _get(http: aiohttp.ClientSession, path: str, failed: list[str]) -> Any:
    async with http.get(path) as r:
        if r.status != 200:
            failed.append(f"GET {path}: {r.status} {(await r.text())[:100]!r}")
            return None
        return await r.json() if r.content_type == "application/json" else await r.text()


def _samples(text: str, miner: str) -> dict[str, float]:
    out = {}
    for m in re.finditer(r"^(fleetd_miner_\w+)\{([^}]*)\} (\S+)$", text, re.M):
        if f'miner="{miner}"' in m.group(2):
            out[f"{m.group(1)}{{{m.group(2)}}}"] = float(m.group(3))
    return out


async def test_daemon_beside_good_miners(site: Site, tmp_path: Path) -> None:
    require_service("Mosquitto", *BROKER)
    prefix = f"h11p-corpus-{uuid.uuid4().hex[:10]}"
    forced = {h: k.driver for h, k in site.bad.items() if k.driver}
    cfg = parse_config(
        {
            "polling": {"interval_s": 0.5, "jitter_s": 0.0, "timeout_s": 3.0, "connect_timeout_s": 1.0},
            "storage": {"latest_state_every_s": 0},
            "mqtt": {"topic_prefix": prefix, "client_id": prefix, "retain": False, "full_every": 1},
            "miners": [
                {"host": h, "web_port": web_port(), **({"driver": forced[h]} if h in forced else {})}
                for h in [*site.good, *site.bad]
            ],
        }
    )
    listener = Listener(prefix)
    failed: list[str] = []  # API requests that did not answer 200
    d = Daemon(cfg, state_dir=tmp_path)
    await d.start()
    server = ApiServer.for_daemon(d, listen="127.0.0.1:0")
    await server.start()
    try:
        start = d.poller.cycles
        await _until(lambda: d.poller.cycles >= start + 4, 90, "four poll cycles")
        with contextlib.suppress(AssertionError):  # a missing MQTT state is reported with the rest below
            await _until(
                lambda: all(listener.on(f"{prefix}/miners/{h}/state") for h in site.good),
                30,
                "MQTT state of every good miner",
            )
        assert d.storage is not None
        flushed = d.storage.flush(30)
        latest = {r["miner_id"]: r for r in d.storage.latest()}
        async with aiohttp.ClientSession(server.url) as http:
            listing = await _get(http, "/api/miners", failed)
            rows = {m["id"]: m for m in (listing or {}).get("miners", ())}
            details = {h: await _get(http, f"/api/miners/{h}", failed) or {} for h in [*site.good, *site.bad]}
            fleet = await _get(http, "/api/fleet", failed) or {}
            metrics = await _get(http, "/metrics", failed) or ""
    finally:
        await server.stop()
        stopping = time.monotonic()
        await d.stop()
        print(f"daemon stopped in {time.monotonic() - stopping:.1f} s")  # measured, not asserted
        listener.close()

    problems: list[str] = [*failed, *([] if flushed else ["storage did not flush"])]
    # Good miners: complete and true everywhere.
    for h, ths in site.good.items():
        row, det = rows.get(h), details[h]
        if row is None or row.get("state") != "up":
            problems.append(f"good {h}: API row {row}")
        snap = det.get("snapshot") or {}
        if not (snap.get("hashrate_ths") and abs(snap["hashrate_ths"] - ths) < 0.1 * ths):
            problems.append(f"good {h}: hashrate {snap.get('hashrate_ths')} in /api/miners/{{id}}")
        if len(snap.get("hashboards") or ()) != 3 or any(
            e["code"] == "implausible" for e in snap.get("errors", ())
        ):
            problems.append(f"good {h}: boards or faults {snap.get('hashboards')} {snap.get('errors')}")
        samples = _samples(metrics, h)
        rate = next(
            (v for k, v in samples.items() if k.startswith("fleetd_miner_hashrate_hashes_per_second{")), None
        )
        if rate is None or abs(rate / 1e12 - ths) > 0.1 * ths:
            problems.append(f"good {h}: /metrics hashrate {rate}")
        state = _last(listener, f"{prefix}/miners/{h}/state")
        if not state or not state.get("hashrate_ths") or abs(state["hashrate_ths"] - ths) > 0.1 * ths:
            problems.append(f"good {h}: MQTT state {state}")
        stored = latest.get(h)
        if not stored or not stored.get("hashrate_ths") or abs(stored["hashrate_ths"] - ths) > 0.1 * ths:
            problems.append(f"good {h}: latest_state {stored}")
    # The fleet's totals: finite, and at least the good miners' hashrate.
    good_ths = sum(site.good.values())
    if not (isinstance(fleet.get("hashrate_ths"), float) and good_ths * 0.9 <= fleet["hashrate_ths"] < 1e5):
        problems.append(f"/api/fleet hashrate {fleet.get('hashrate_ths')}")
    problems += [f"/api/fleet: {x}" for x in impossible_numbers(fleet)]
    fleet_rate = re.search(r"^fleetd_fleet_hashrate_hashes_per_second(?:\{[^}]*\})? (\S+)$", metrics, re.M)
    if fleet_rate is None or not math.isfinite(float(fleet_rate.group(1))):
        problems.append(f"/metrics fleet hashrate {fleet_rate and fleet_rate.group(0)}")
    if fleet.get("up", 0) < len(site.good):
        problems.append(f"/api/fleet up {fleet.get('up')}")
    # Bad miners: nothing impossible anywhere, faults visible, no driver bug.
    for h, kind in site.bad.items():
        det = details[h]
        problems += [f"{kind.name}: /api/miners/{{id}} {x}" for x in impossible_numbers(det)]
        problems += [f"{kind.name}: /api/miners {x}" for x in impossible_numbers(rows.get(h))]
        problems += [f"{kind.name}: latest_state {x}" for x in impossible_numbers(latest.get(h))]
        mqtt = _last(listener, f"{prefix}/miners/{h}/state")
        problems += [f"{kind.name}: MQTT {x}" for x in impossible_numbers(mqtt)]
        problems += [
            f"{kind.name}: /metrics {k} {v}"
            for k, v in _samples(metrics, h).items()
            if not math.isfinite(v) or abs(v) > 1e17  # 10 PH/s in H/s is the most
        ]
        if "driver error" in str(det.get("last_error") or ""):
            problems.append(f"{kind.name}: reported as a driver bug: {det.get('last_error')}")
        if kind.values:
            if det.get("state") != "up":
                problems.append(f"{kind.name}: {det.get('state')} ({det.get('last_error')}), expected up")
            errors = (det.get("snapshot") or {}).get("errors") or ()
            if kind.fault and not any(e["code"] == "implausible" for e in errors):
                problems.append(f"{kind.name}: no implausible fault in the API: {errors}")
    assert not problems, "\n".join(problems)
