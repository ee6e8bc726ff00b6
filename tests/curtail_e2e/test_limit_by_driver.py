"""A power cap met by power limits, not sleep, on drivers that report their limit range (Whatsminer over
btminer v2 and v3, Braiins OS): a daemon with enforcement on, emulated miners over loopback, verified from
the miners' re-read telemetry (an emulator's power follows its limit).

Load ~10.1 kW (M50S 3276 W at 26 J/TH, M60S 3330 W at 18.5 J/TH, S21 Pro on BOS 3480 W at 14.2 J/TH) under
a 4.5 kW cap: the two Whatsminers go to their 1000 W floor, highest J/TH first, and the S21 Pro's power
target takes the rest (within its 1500-4000 W constraints); nobody sleeps.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

from fleetd.drivers.before_limit import forget_all
from fleetd.drivers.whatsminer.driver import MIN_POWER_LIMIT_W

from fleetd.config import parse_config
from fleetd.curtail.model import Action, Actual
from fleetd.daemon import Daemon
from fleetd.sim.ercot import ErcotEmulator, PriceScenario
from fleetd.sim.fleet import Fleet, Group
from tests.conftest import loopback_host, web_port
from tests.curtail_e2e.test_daemon_curtailment import BLOCK, actual, until

MODELS = ("Whatsminer M50S_VH50", "Whatsminer M60S_VK40", "Antminer S21 Pro")
CAP_KW = 4.5


def _config(hosts: list[str], port: int, prices_url: str, cap_kw: float = CAP_KW) -> Any:
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


async def test_a_power_cap_limits_whatsminers_and_braiins_instead_of_sleeping_them(tmp_path: Path) -> None:
    hosts = [loopback_host(BLOCK) for _ in MODELS]
    port = web_port()
    fleet = Fleet(
        [Group(m, 1, h, {"web": port}, ramp_s=0, jitter=0) for m, h in zip(MODELS, hosts, strict=True)]
    )
    prices = ErcotEmulator(loopback_host(BLOCK), 0, scenario=PriceScenario(low=25.0, price_now=25.0))
    async with fleet, prices:
        d = Daemon(_config(hosts, port, prices.base_url), state_dir=tmp_path)
        await d.start()
        try:
            await until(lambda: all(actual(d, h) is Actual.LIMITED for h in hosts), 40.0, "all three limited")
            st = d.curtail_status
            assert st is not None
            targets = {h: st.miners[h].target for h in hosts}
            assert all(t.action is Action.LIMIT for t in targets.values()), targets
            wm50, wm60, bos = hosts
            assert targets[wm50].power_limit_w == targets[wm60].power_limit_w == MIN_POWER_LIMIT_W
            assert 1500 <= (targets[bos].power_limit_w or 0) < 3480
            assert not any(fleet.state(h).sleeping for h in hosts)

            def polled(h: str) -> Any:
                return d.state.miners[h].snapshot

            def limits_seen() -> bool:  # the daemon's own later polls, not the commands' verification
                return all(polled(h) and polled(h).power_limit_w == targets[h].power_limit_w for h in hosts)

            await until(limits_seen, 10.0, "the polls to show the limits")
            for h in hosts:  # the firmware's limit is fleetd's, and the re-read power is within it
                snap = polled(h)
                assert snap is not None and snap.is_mining and snap.hashrate_ths
                assert fleet.state(h).power_limit_w == targets[h].power_limit_w
                assert snap.power_limit_w == targets[h].power_limit_w
                assert snap.power_w is not None and snap.power_w <= targets[h].power_limit_w + 1.0
            load_kw = sum(d.state.miners[h].snapshot.power_w or 0.0 for h in hosts) / 1000.0
            assert load_kw <= CAP_KW
        finally:
            await d.stop()

        # A restarted daemon under a cap that fits everyone wakes them back to their own limits (from the
        # drivers' journal in state_dir), verified, and at full power again.
        forget_all()  # a new process: only the journal remembers
        d = Daemon(_config(hosts, port, prices.base_url, cap_kw=100.0), state_dir=tmp_path)
        await d.start()
        try:
            own = dict(zip(hosts, (3600.0, 3600.0, 3480.0), strict=True))  # reported before the limits

            def restored() -> bool:
                snaps = [d.state.miners[h].snapshot for h in hosts]
                return all(actual(d, h) is Actual.RUNNING for h in hosts) and all(
                    s is not None and s.power_limit_w == own[h] for h, s in zip(hosts, snaps, strict=True)
                )

            await until(restored, 20.0, "all back at their own limits")
            assert {h: fleet.state(h).power_limit_w for h in hosts} == own
            assert sum(d.state.miners[h].snapshot.power_w or 0.0 for h in hosts) > 10_000.0
        finally:
            await d.stop()
