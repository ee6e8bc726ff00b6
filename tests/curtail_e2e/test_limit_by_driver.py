"""A power cap met by power limits, not sleep, on drivers that report their limit range (Whatsminer over
btminer v2 and v3, Braiins OS): a daemon with enforcement on, emulated miners over loopback, verified from
the miners' re-read telemetry (an emulator's power follows its limit); a restarted daemon under a cap
that fits everyone wakes them back to their own limits, remembered in state_dir.

M50S 3276 W at 26 J/TH, M60S 3330 W at 18.5 J/TH (both limited down to a 1000 W floor), S21 Pro on BOS
3480 W at 14.2 J/TH (power target 1500-4000 W). Under a 7.3 kW cap (2.8 kW to shed) the M50S goes to its
floor and the M60S takes the rest; with more to shed the policy would sleep the M50S instead (its 1000 W
floor keeps 38 TH/s, more than the M60S would lose for the rest), see tests/curtail/test_power_cap.py.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest
from fleetd.drivers.before_limit import forget_all
from fleetd.drivers.whatsminer.driver import MIN_POWER_LIMIT_W

from fleetd.config import parse_config
from fleetd.curtail.model import Action, Actual
from fleetd.daemon import Daemon
from fleetd.sim.ercot import ErcotEmulator, PriceScenario
from fleetd.sim.fleet import Fleet, Group
from tests.conftest import loopback_host, web_port
from tests.curtail_e2e.test_daemon_curtailment import BLOCK, actual, until

M50S, M60S, S21PRO_BOS = "Whatsminer M50S_VH50", "Whatsminer M60S_VK40", "Antminer S21 Pro"
OWN_LIMIT_W = {M50S: 3600.0, M60S: 3600.0, S21PRO_BOS: 3480.0}  # as reported before any limit


def _config(hosts: list[str], port: int, prices_url: str, cap_kw: float) -> Any:
    return parse_config(
        {
            "polling": {"interval_s": 0.5, "jitter_s": 0.0, "timeout_s": 2.0, "connect_timeout_s": 0.5},
            "miners": [{"host": h, "web_port": port} for h in hosts],
            "economics": {
                "hashprice": [{"kind": "static", "per_ph_day": 35.0}],
                "tariff": {"kind": "ercot", "base_url": prices_url, "refresh_s": 0.3},
            },
            "curtailment": {
                "enforce": True,
                "interval_s": 1.0,
                "ramp": {"max_miners": 1, "step_s": 0.4},
                "dwell": {"min_on_s": 0.0, "min_off_s": 0.0},
                "retry": {"attempts": 2, "backoff_s": 0.3, "max_backoff_s": 1.0, "verify_timeout_s": 4.0},
                "rules": [{"kind": "power_cap", "name": "cap", "target_kw": cap_kw}],
            },
        }
    )


@pytest.mark.parametrize(
    ("models", "cap_kw", "limits"),
    [
        ((M50S, M60S, S21PRO_BOS), 7.3, (MIN_POWER_LIMIT_W, (2700, 2900), None)),
        ((S21PRO_BOS,), 2.5, ((2500, 2500),)),
    ],
    ids=["whatsminers", "braiins"],
)
async def test_a_power_cap_limits_instead_of_sleeping_and_a_restart_restores_own_limits(
    tmp_path: Path, models: tuple[str, ...], cap_kw: float, limits: tuple[Any, ...]
) -> None:
    hosts = [loopback_host(BLOCK) for _ in models]
    port = web_port()
    fleet = Fleet(
        [Group(m, 1, h, {"web": port}, ramp_s=0, jitter=0) for m, h in zip(models, hosts, strict=True)]
    )
    prices = ErcotEmulator(loopback_host(BLOCK), 0, scenario=PriceScenario(low=25.0, price_now=25.0))
    limited = [h for h, w in zip(hosts, limits, strict=True) if w is not None]
    async with fleet, prices:
        d = Daemon(_config(hosts, port, prices.base_url, cap_kw), state_dir=tmp_path)
        await d.start()
        try:
            await until(lambda: all(actual(d, h) is Actual.LIMITED for h in limited), 40.0, "limits verified")
            st = d.curtail_status
            assert st is not None
            targets = {h: st.miners[h].target for h in hosts}
            for h, want in zip(hosts, limits, strict=True):
                t = targets[h]
                if want is None:
                    assert t.action is Action.RUN and fleet.state(h).power_commands == 0
                    continue
                lo, hi = want if isinstance(want, tuple) else (want, want)
                assert t.action is Action.LIMIT and lo <= (t.power_limit_w or 0) <= hi, t
            assert not any(fleet.state(h).sleeping for h in hosts)

            def polled(h: str) -> Any:
                return d.state.miners[h].snapshot

            def limits_seen() -> bool:  # the daemon's own later polls, not the commands' verification
                return all(polled(h) and polled(h).power_limit_w == targets[h].power_limit_w for h in limited)

            await until(limits_seen, 10.0, "the polls to show the limits")
            for h in limited:  # the firmware's limit is fleetd's, and the re-read power is within it
                snap, w = polled(h), targets[h].power_limit_w or 0
                assert snap.is_mining and snap.hashrate_ths and fleet.state(h).power_limit_w == w
                assert snap.power_w is not None and snap.power_w <= w + 1.0
            assert sum(polled(h).power_w or 0.0 for h in hosts) / 1000.0 <= cap_kw
        finally:
            await d.stop()

        forget_all()  # a new process: only the journal in state_dir remembers the limits to restore
        d = Daemon(_config(hosts, port, prices.base_url, cap_kw=100.0), state_dir=tmp_path)
        await d.start()
        try:
            own = {h: OWN_LIMIT_W[m] for h, m in zip(hosts, models, strict=True)}

            def restored() -> bool:
                snaps = {h: d.state.miners[h].snapshot for h in hosts}
                return all(actual(d, h) is Actual.RUNNING for h in hosts) and all(
                    s is not None and s.power_limit_w == own[h] for h, s in snaps.items()
                )

            await until(restored, 20.0, "all back at their own limits")
            assert all(fleet.state(h).power_limit_w == own[h] for h in limited)
            full = sum(fleet.state(h).spec.power_w for h in hosts)
            assert sum(d.state.miners[h].snapshot.power_w or 0.0 for h in hosts) >= full - 1.0
        finally:
            await d.stop()
