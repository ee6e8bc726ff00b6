"""Power cap and demand response: J/TH ordering both ways, hysteresis, power limits, DR events."""

from __future__ import annotations

from fleetd.curtail.model import Action, Controls, DemandEvent, RuleKind, Target

from .helpers import T0, Runner, config, miner

CAP = {"kind": "power_cap", "target_kw": 10.0}


def fleet(**kw: object) -> list:
    # 3 kW each, J/TH 20 (a) .. 35 (d); ids deliberately not in J/TH order for two of them
    effs = {"a": 20.0, "b": 25.0, "c": 30.0, "d": 35.0}
    return [miner(i, power_w=3000.0, efficiency_j_per_th=e, **kw) for i, e in effs.items()]


def actions(d: dict) -> dict[str, str]:
    return {k: str(v.target) for k, v in d.items()}


def test_sheds_highest_j_per_th_first_and_only_as_much_as_needed() -> None:
    r = Runner(config(CAP))
    d = r.step(fleet())
    assert actions(d) == {"a": "run", "b": "run", "c": "run", "d": "sleep"}
    assert d["d"].reason.kind is RuleKind.POWER_CAP and d["d"].reason.values["target_kw"] == 10.0
    assert r.last is not None and r.last.target_kw == 10.0 and r.last.load_kw == 9.0
    assert "power_cap" in r.last.active_rules


def test_no_flapping_at_the_edge_then_restore_lowest_j_per_th_first() -> None:
    r = Runner(config(dict(CAP, target_kw=6.5)))
    assert actions(r.step(fleet())) == {"a": "run", "b": "run", "c": "sleep", "d": "sleep"}
    for _ in range(3):  # restoring c would take the load to 9 kW > 6.5: both stay shed
        d = r.step(fleet())
        assert actions(d) == {"a": "run", "b": "run", "c": "sleep", "d": "sleep"}
        assert not d["c"].changed and "over the cap" in d["c"].reason.text
    r.config = config(dict(CAP, target_kw=9.2))
    d = r.step(fleet())
    assert actions(d) == {"a": "run", "b": "run", "c": "run", "d": "sleep"} and d["c"].changed
    r.config = config(dict(CAP, target_kw=100.0))
    assert set(actions(r.step(fleet())).values()) == {"run"}


def test_sleep_power_counts_and_margin_applies() -> None:
    r = Runner(config(dict(CAP, target_kw=9.1, margin_kw=0.2)))
    d = r.step([m for m in fleet(sleep_power_w=100.0)])
    # 12 kW, limit 8.9: shedding d gives 9.1 (3000 - 100 shed), still over: c too
    assert actions(d) == {"a": "run", "b": "run", "c": "sleep", "d": "sleep"}
    assert r.last is not None and abs(r.last.load_kw - 6.2) < 1e-9


def test_power_limit_instead_of_sleep_as_little_as_needed() -> None:
    limitable = {"can_limit": True, "min_power_limit_w": 2000, "max_power_limit_w": 3500}
    r = Runner(config(dict(CAP, target_kw=11.5)))
    d = r.step(fleet(**limitable))
    assert d["d"].target == Target(Action.LIMIT, 2500) and actions(d)["c"] == "run"
    # more than one limit can give: d to its minimum, then c
    r = Runner(config(dict(CAP, target_kw=10.0)))
    d = r.step(fleet(**limitable))
    assert d["d"].target == Target(Action.LIMIT, 2000) and d["c"].target == Target(Action.LIMIT, 2000)
    # prefer_power_limit off: sleep
    r = Runner(config(dict(CAP, target_kw=11.5, prefer_power_limit=False)))
    assert r.step(fleet(**limitable))["d"].target.action is Action.SLEEP


def test_limit_needs_a_known_minimum_and_sleeps_limited_ones_when_still_over() -> None:
    r = Runner(config(dict(CAP, target_kw=11.5)))
    assert r.step(fleet(can_limit=True))["d"].target.action is Action.SLEEP  # no min limit known
    r = Runner(config(dict(CAP, target_kw=3.0)))
    d = r.step(fleet(can_limit=True, min_power_limit_w=2500))
    # a 2.5 kW minimum sheds 0.5 kW of 9 kW needed: sleeping d, c and b loses less than limiting them
    # and then a; a, the most efficient, keeps running
    assert actions(d) == {"a": "run", "b": "sleep", "c": "sleep", "d": "sleep"}


def test_a_minimum_limit_close_to_full_power_sleeps_when_that_loses_less() -> None:
    # x: 3 kW at 30 J/TH (100 TH/s), minimum limit 2.7 kW; y: 3 kW at 15 J/TH (200 TH/s), minimum 1 kW.
    def two(x_min: int) -> list:
        lim = {"can_limit": True, "max_power_limit_w": 3000}
        return [
            miner("x", power_w=3000.0, efficiency_j_per_th=30.0, min_power_limit_w=x_min, **lim),
            miner("y", power_w=3000.0, efficiency_j_per_th=15.0, min_power_limit_w=1000, **lim),
        ]

    # Shedding 2 kW: x at 2.7 kW and y at 1.3 kW would lose 10 + 113 TH/s; sleeping x loses its 100.
    d = Runner(config(dict(CAP, target_kw=4.0))).step(two(2700))
    assert d["x"].target.action is Action.SLEEP and d["y"].target.action is Action.RUN
    # A low minimum, 2.1 kW to shed: x at 1 kW and y at 2.9 kW lose 67 + 7 TH/s, less than sleeping x.
    d = Runner(config(dict(CAP, target_kw=3.9))).step(two(1000))
    assert d["x"].target == Target(Action.LIMIT, 1000) and d["y"].target == Target(Action.LIMIT, 2900)
    # 3 kW to shed: x at 1 kW and y at 2 kW would lose 67 + 67 TH/s; sleeping x loses 100.
    d = Runner(config(dict(CAP, target_kw=3.0))).step(two(1000))
    assert d["x"].target.action is Action.SLEEP and d["y"].target.action is Action.RUN
    # The limit alone covers the need: limited however close its minimum is.
    d = Runner(config(dict(CAP, target_kw=5.8))).step(two(2700))
    assert d["x"].target == Target(Action.LIMIT, 2800) and d["y"].target.action is Action.RUN


def test_limit_only_miner_is_limited_and_sleep_only_is_slept() -> None:
    ms = [
        miner(
            "x",
            power_w=3000.0,
            efficiency_j_per_th=40.0,
            can_sleep=False,
            can_limit=True,
            min_power_limit_w=1500,
        ),
        miner("y", power_w=3000.0, efficiency_j_per_th=30.0),
    ]
    d = Runner(config(dict(CAP, target_kw=4.5))).step(ms)
    assert d["x"].target == Target(Action.LIMIT, 1500) and d["y"].target.action is Action.RUN


def test_uncontrollable_and_unknown_power_miners() -> None:
    ms = [*fleet(), miner("z", power_w=3000.0, efficiency_j_per_th=50.0, can_sleep=False)]
    r = Runner(config(CAP))
    d = r.step([*ms, miner("w", power_w=float("nan"), efficiency_j_per_th=99.0)])
    assert d["z"].target.action is Action.RUN and d["z"].controllable is False  # counted, not shed
    assert actions(d)["d"] == "sleep" and actions(d)["c"] == "sleep"  # 15 kW -> 9
    assert d["w"].target.action is Action.RUN  # unknown power: never shed by the cap


def test_demand_response_event_tightest_wins_and_expires() -> None:
    events = (
        DemandEvent(9.5, T0 - 60, T0 + 600, "api", (), "e1"),
        DemandEvent(6.5, T0 - 60, T0 + 120, "mqtt", (), "e2"),
        DemandEvent(1.0, T0 + 3600, T0 + 7200, "api", (), "future"),
    )
    r = Runner(config(CAP), controls=Controls(events=events))
    d = r.step(fleet(), dt=300)
    assert actions(d)["c"] == "sleep" and "e2" in str(d["c"].reason.values["source"])
    assert r.last is not None and r.last.target_kw == 6.5
    d = r.step(fleet(), dt=600)  # e2 ended: 9.5 kW; c (30 J/TH) fits again, d does not
    assert actions(d) == {"a": "run", "b": "run", "c": "run", "d": "sleep"}
    d = r.step(fleet())  # every event over: the config target (10 kW) still holds d
    assert actions(d)["d"] == "sleep" and r.last is not None and r.last.target_kw == 10.0


def test_demand_response_without_a_power_cap_rule_and_by_site() -> None:
    ev = DemandEvent(3.0, T0 - 1, T0 + 600, "api", ("tx1",), "dr")
    ms = [*fleet(), miner("e", site="ok1", power_w=3000.0, efficiency_j_per_th=60.0)]
    r = Runner(config(), controls=Controls(events=(ev,)))
    d = r.step(ms)
    assert actions(d) == {"a": "run", "b": "sleep", "c": "sleep", "d": "sleep", "e": "run"}
    assert r.last is not None and "demand_response" in r.last.active_rules
    assert Runner(config()).step(ms)["d"].target.action is Action.RUN


def test_cap_windows_apply_the_config_target_only_inside() -> None:
    rule = dict(CAP, windows=[{"start": "00:00", "end": "01:00"}], timezone="UTC")
    midnight = T0 - T0 % 86400
    assert Runner(config(rule), now=midnight + 60).step(fleet())["d"].target.action is Action.SLEEP
    assert Runner(config(rule), now=midnight + 7200).step(fleet())["d"].target.action is Action.RUN


def test_other_stops_count_before_the_cap_sheds() -> None:
    strike = {"kind": "price_strike", "strike_usd_per_mwh": 80.0, "scope": {"miners": ["d"]}}
    from .helpers import prices

    d = Runner(config(strike, CAP)).step(fleet(), prices(history=[100]))
    assert actions(d) == {"a": "run", "b": "run", "c": "run", "d": "sleep"}
    assert d["d"].reason.kind is RuleKind.PRICE_STRIKE
