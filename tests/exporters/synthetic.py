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


BIG = 10**30  # beyond any 64-bit column or JSON encoder
# Each kind of impossible figure a broken firmware (or a driver bug) might leave in a snapshot.
BAD_FLOATS: dict[str, object] = {
    "nan": float("nan"),
    "inf": float("inf"),
    "minus-inf": float("-inf"),
    "minus-1e308": -1e308,
    "1e300": 1e300,
    "negative": -5.0,
    "big-int": BIG,
    "text": "110.5",
}


class RaisingSnapshot(Snapshot):
    """A snapshot whose hashrate cannot even be read (a bug in whatever built it)."""

    __slots__ = ()

    @property  # type: ignore[override]
    def hashrate_ths(self) -> float:
        raise RuntimeError("hashrate unreadable")


def bad_snapshot(value: object, now: float) -> Snapshot:
    """Every figure of a snapshot set to `value` (ints where the model has ints: BIG or -5)."""
    whole = BIG if value == BIG or not isinstance(value, int | float) or value > 0 else -5
    if isinstance(value, str):
        whole = value  # type: ignore[assignment]
    boards = tuple(
        Hashboard(
            b,
            value,  # type: ignore[arg-type]
            value,  # type: ignore[arg-type]
            chips=whole,  # type: ignore[arg-type]
            expected_chips=whole,  # type: ignore[arg-type]
            chip_temp_c=value,  # type: ignore[arg-type]
            board_temp_c=value,  # type: ignore[arg-type]
        )
        for b in range(3)
    )
    return Snapshot(
        hashrate_ths=value,  # type: ignore[arg-type]
        hashrate_avg_ths=value,  # type: ignore[arg-type]
        expected_hashrate_ths=value,  # type: ignore[arg-type]
        power_w=value,  # type: ignore[arg-type]
        power_limit_w=value,  # type: ignore[arg-type]
        is_mining=True,
        mode=Mode.NORMAL,
        hashboards=boards,
        fans=tuple(Fan(f, whole) for f in range(4)),  # type: ignore[arg-type]
        pools=(Pool(0, "stratum+tcp://pool:3333", active=True, accepted=whole, rejected=whole, stale=whole),),  # type: ignore[arg-type]
        uptime_s=whole,  # type: ignore[arg-type]
        polled_at=now,
        temp_c=value,  # type: ignore[arg-type]
        env_temp_c=value,  # type: ignore[arg-type]
        hw_errors=whole,  # type: ignore[arg-type]
    )


def raising_snapshot(now: float) -> Snapshot:
    snap = Snapshot(hashrate_ths=100.0, power_w=3000.0, is_mining=True, polled_at=now)
    object.__setattr__(snap, "__class__", RaisingSnapshot)
    return snap


def bad_records(now: float, site: str = "site-0") -> list[MinerRecord]:
    """One up miner per kind of impossible figure (and one whose snapshot raises), with absurd economics."""
    out = []
    kinds: list[tuple[str, Snapshot]] = [(k, bad_snapshot(v, now)) for k, v in BAD_FLOATS.items()]
    kinds.append(("raising", raising_snapshot(now)))
    for name, snap in kinds:
        ident = Identity("antminer", "Antminer S19 Pro", firmware="2023-01-01", driver="antminer", host=name)
        rec = MinerRecord(
            id=f"bad-{name}",
            host=f"bad-{name}.example",
            labels=Labels(site=site, rack="r0"),
            driver="antminer",
            identity=ident,
            snapshot=snap,
            health=Health.UP,
            last_ok_at=now,
        )
        value = BAD_FLOATS.get(name, 1e300)
        if (isinstance(value, float) and abs(value) > 1e6) or value != value:  # absurd economics from them
            rec.economics = economics(value, value, 55.0, 45.0, power_source="measured", model=ident.model)
        out.append(rec)
    return out


def with_bad_miners(st: FleetState) -> list[str]:
    """Add bad_records() to `st` (its fleet economics left as the good miners' were); their ids."""
    bad = bad_records(time.time())
    for rec in bad:
        st.miners[rec.id] = rec
    return [r.id for r in bad]
