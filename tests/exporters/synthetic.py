"""A synthetic FleetState with every field filled, for exporter tests and the scrape benchmark."""

from __future__ import annotations

import time

from fleetd.daemon.state import CycleStats, FleetState, Health, Labels, MinerRecord
from fleetd.economics.unit import economics, fleet_economics
from fleetd.model import Fan, Fault, Hashboard, Identity, Mode, Pool, Snapshot


def record(i: int, now: float) -> MinerRecord:
    host = f"10.{(i >> 16) & 255}.{(i >> 8) & 255}.{i & 255}"
    ident = Identity("antminer", "Antminer S19 Pro", firmware="2023-01-01", driver="antminer", host=host)
    boards = tuple(
        Hashboard(b, 36.5 + b, 36.6, chips=114, chip_temp_c=70.0 + b, board_temp_c=55.0 + b) for b in range(3)
    )
    snap = Snapshot(
        hashrate_ths=110.0 + i % 7,
        hashrate_avg_ths=109.5,
        expected_hashrate_ths=110.0,
        power_w=3250.0,
        power_limit_w=3500.0,
        is_mining=True,
        mode=Mode.NORMAL,
        hashboards=boards,
        fans=tuple(Fan(f, 5400 + f) for f in range(4)),
        pools=(Pool(0, "stratum+tcp://pool:3333", accepted=1000 + i, rejected=3),),
        errors=(Fault("E1", "fan slow"),) if i % 50 == 0 else (),
        uptime_s=86_400,
        polled_at=now,
        temp_c=73.0,
        env_temp_c=25.0,
    )
    rec = MinerRecord(
        id=host,
        host=host,
        labels=Labels(site=f"site-{i % 3}", rack=f"r{i % 40}"),
        driver="antminer",
        identity=ident,
        snapshot=snap,
        health=Health.UP,
        last_ok_at=now,
    )
    if i % 100 == 99:
        rec.health, rec.failures, rec.last_error = Health.DOWN, 3, "timeout"
    else:
        rec.economics = economics(
            snap.hashrate_avg_ths,
            snap.power_w,
            55.0,
            45.0,
            pool_fee=0.02,
            power_source="measured",
            model="Antminer S19 Pro",
        )
    return rec


def fleet(n: int) -> FleetState:
    now = time.time()
    st = FleetState()
    for i in range(n):
        rec = record(i, now)
        st.miners[rec.id] = rec
    st.miners['odd"id\\x'] = MinerRecord(id='odd"id\\x', host="odd.example", labels=Labels(site="a\nb"))
    st.economics = fleet_economics([r.economics for r in st.miners.values() if r.economics is not None])
    st.last_cycle = CycleStats(now - 3.2, now, polled=n, ok=n - n // 100, failed=n // 100, overran=False)
    return st
