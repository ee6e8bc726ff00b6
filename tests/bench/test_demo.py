"""`fleetd demo`: the emulated fleet, the daemon and the API from one command; the live view's text."""

from __future__ import annotations

import json
import re
import subprocess
import sys
import time
import urllib.request

from fleetd.api.views import fleet_totals
from fleetd.cli.demo_view import plain_line, render
from fleetd.daemon.state import CycleStats, FleetState, Health, MinerRecord
from fleetd.model import Identity, Snapshot


def test_demo_runs_serves_the_api_and_exits_cleanly():
    proc = subprocess.Popen(
        [
            *(sys.executable, "-m", "fleetd", "demo", "--miners", "6", "--duration", "3"),
            *("--listen", "127.16.80.1:0", "--base", "127.16.80.10"),
        ],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )
    try:
        assert proc.stdout is not None
        url = None
        lines = []
        for line in proc.stdout:
            lines.append(line)
            m = re.search(r"API:\s+(http://\S+)/api/fleet", line)
            if m:
                url = m.group(1)
                break
        if not url:
            proc.wait(30)
            raise AssertionError("".join(lines) + (proc.stderr.read() if proc.stderr else ""))
        deadline = time.monotonic() + 10
        while True:  # the first cycle ends within a second or two
            with urllib.request.urlopen(f"{url}/api/fleet", timeout=5) as resp:
                fleet = json.load(resp)
            if fleet["up"] == 6 or time.monotonic() > deadline:
                break
            time.sleep(0.2)
        assert fleet["up"] == 6 and fleet["hashrate_ths"] > 0
        assert {m["model"] for m in fleet["by_model"]} >= {"Antminer S19 Pro", "Antminer S21"}
        # the demo's prices: a static hashprice and a flat tariff, so every model has a profit figure
        assert fleet["economics"]["miners"] == 6
        assert all(m["profit_per_day"] is not None for m in fleet["by_model"])
        with urllib.request.urlopen(f"{url}/api/prices", timeout=5) as resp:
            prices = json.load(resp)
        assert prices["hashprice"]["value"] == 35.0 and prices["electricity"]["value"] == 60.0
        out, err = proc.communicate(timeout=30)
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait()
    assert proc.returncode == 0, err
    lines += out.splitlines(keepends=True)
    # not a terminal: plain periodic lines, no screen redraws
    assert "\x1b[" not in "".join(lines)
    plain = [ln for ln in lines if re.match(r"\d\d:\d\d:\d\d miners=6 ", ln)]
    assert plain and all(
        re.search(r"up=\d down=\d unknown=\d hashrate_ths=[\d.]+ power_kw=", ln) for ln in plain
    )
    assert any(re.search(r" profit_usd_per_day=-?[\d.]+ .*Antminer_S21=-?[\d.]+", ln) for ln in plain)
    assert any("static hashprice $35/PH/day" in ln for ln in lines)
    assert "stopping" in lines[-1]


def test_demo_bad_listen_is_a_one_line_error():
    res = subprocess.run(
        [sys.executable, "-m", "fleetd", "demo", "--listen", "127.0.0.1:notaport"],
        capture_output=True,
        text=True,
        timeout=30,
        check=False,
    )
    assert res.returncode == 2 and "port" in res.stderr and "Traceback" not in res.stderr


def _state() -> FleetState:
    st = FleetState()
    ident = Identity(vendor="antminer", model="Antminer S19 Pro")
    for i in range(3):
        rec = MinerRecord(id=f"h{i}", host=f"h{i}", nominal_power_w=3250.0, identity=ident)
        rec.snapshot = Snapshot(hashrate_ths=100.0, expected_hashrate_ths=110.0, is_mining=True)
        rec.health = Health.UP if i else Health.DOWN
        st.miners[rec.id] = rec
    now = time.time()
    st.last_cycle = CycleStats(now - 1.5, now - 1.0, 3, 2, 1, False)
    return st


def test_live_view_text():
    totals = fleet_totals(_state())
    screen = render(totals, header="HEADER")
    assert screen.startswith("HEADER\n")
    assert "200.0 TH/s" in screen and "6.50 kW" in screen  # nominal power stands in for the unreported
    assert "estimated, not measured: 6.50 kW configured" in screen
    assert "Profit" not in screen  # no economics configured: no money columns
    assert "2 up, 1 down" in screen
    assert re.search(r"Antminer S19 Pro\s+3\s+2\s+1\s+200\.0\s+6\.50", screen), screen
    line = plain_line(totals)
    assert "miners=3 up=2 down=1" in line and "power_kw=6.50" in line and "\n" not in line


def test_demo_busy_port_is_a_one_line_error():
    import socket

    with socket.socket() as busy:
        busy.bind(("127.16.81.1", 0))
        busy.listen()
        port = busy.getsockname()[1]
        res = subprocess.run(
            [
                *(sys.executable, "-m", "fleetd", "demo", "--miners", "2", "--duration", "1"),
                *("--listen", f"127.16.81.1:{port}", "--base", "127.16.81.10"),
            ],
            capture_output=True,
            text=True,
            timeout=60,
            check=False,
        )
    assert res.returncode == 2, res.stderr
    assert "--listen" in res.stderr and "Traceback" not in res.stderr
    assert len(res.stderr.strip().splitlines()) == 1


def _priced_state() -> FleetState:
    from fleetd.economics.unit import economics, fleet_economics

    st = FleetState()
    for i, (model, ths, watts) in enumerate(
        [("Antminer S19 Pro", 110.0, 3250.0), ("Antminer S21", 200.0, 3500.0)]
    ):
        rec = MinerRecord(id=f"h{i}", host=f"h{i}", identity=Identity(vendor="antminer", model=model))
        rec.snapshot = Snapshot(hashrate_ths=ths, power_w=watts, is_mining=True)
        rec.health = Health.UP
        rec.economics = economics(ths, watts, 35.0, 60.0, power_source="measured", model=model)
        st.miners[rec.id] = rec
    st.economics = fleet_economics(r.economics for r in st.miners.values() if r.economics)
    return st


def test_live_view_shows_prices_and_profit():
    from fleetd.api.views import prices
    from fleetd.economics.config import EconomicsConfig
    from fleetd.economics.service import EconomicsService

    service = EconomicsService(
        EconomicsConfig.model_validate(
            {
                "hashprice": [{"kind": "static", "per_ph_day": 35.0}],
                "tariff": {"kind": "flat", "price_per_kwh": 0.06},
            }
        )
    )
    totals = fleet_totals(_priced_state())
    # nothing fetched yet: the hashprice is unknown and stale, the view says so rather than inventing one
    screen = render(totals, header="H", prices=prices(service, time.time()))
    assert "hashprice unknown" in screen and "$0.060/kWh (flat)" in screen and "STALE" in screen
    s19 = 0.11 * 35 - 3.25 * 24 * 0.06  # -0.83: loses money at these prices
    s21 = 0.2 * 35 - 3.5 * 24 * 0.06  # 1.96
    assert f"Profit     ${s19 + s21:,.2f}/day" in screen
    assert "1 of 2 miners losing money" in screen
    assert re.search(r"Antminer S19 Pro\s+1\s+1\s+0\s+110\.0\s+3\.25\s+-\$0\.83\s+1", screen), screen
    assert re.search(r"Antminer S21\s+1\s+1\s+0\s+200\.0\s+3\.50\s+\$1\.96\s+0", screen), screen
    line = plain_line(totals)
    assert f"profit_usd_per_day={s19 + s21:.2f} unprofitable=1" in line
    assert "Antminer_S19_Pro=-0.83 Antminer_S21=1.96" in line
