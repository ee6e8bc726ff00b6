"""`fleetd sim --reply KEY=FILE` and Faults.replies: emulated miners serve the given bytes as a reply."""

from __future__ import annotations

from pathlib import Path

import pytest
from fleetd.drivers import driver_class
from fleetd.drivers.plausible import IMPLAUSIBLE

from fleetd.cli import build_parser
from fleetd.cli.sim import build_groups
from fleetd.sim.fleet import Fleet, plan
from fleetd.transport.cgminer import CGMinerAPI
from tests.conftest import loopback_host

from .conftest import BLOCK, FAST, endpoint

BODY = b'{"STATUS":[{"STATUS":"S","Code":11}],"SUMMARY":[{"GHS 5s":1e300,"Elapsed":-1}],"id":1}'


def test_reply_option_reaches_every_miner_of_every_group(tmp_path: Path) -> None:
    (tmp_path / "summary.json").write_bytes(BODY)
    argv = ["sim", "--model", "Antminer S19 Pro", "--model", "Antminer S21", "--count", "2"]
    args = build_parser().parse_args([*argv, "--reply", f"summary={tmp_path / 'summary.json'}"])
    groups = build_groups(args)
    assert all(g.replies == {"summary": BODY} for g in groups)
    assert all(p.faults.replies == {"summary": BODY} for p in plan(groups))


@pytest.mark.parametrize("bad", ["summary", "=x", "summary=/no/such/file"])
def test_reply_option_errors(bad: str, capsys: pytest.CaptureFixture[str]) -> None:
    with pytest.raises(SystemExit):
        build_parser().parse_args(["sim", "--reply", bad])
    assert "--reply" in capsys.readouterr().err


async def test_served_as_is_and_read_as_implausible(tmp_path: Path) -> None:
    host = loopback_host(BLOCK)
    (tmp_path / "summary.json").write_bytes(BODY)
    reply = f"summary={tmp_path / 'summary.json'}"
    args = build_parser().parse_args(["sim", "--model", "Antminer S19 Pro", "--base", host, "--reply", reply])
    async with Fleet(build_groups(args)):
        served = await CGMinerAPI(host, timeouts=FAST).command("summary")
        assert served["SUMMARY"][0]["GHS 5s"] == 1e300
        drv = driver_class("antminer")(endpoint(host))
        try:
            snap = (await drv.read()).snapshot
        finally:
            await drv.close()
    assert snap.hashrate_ths is None and snap.uptime_s is None
    assert sorted(f.message for f in snap.errors if f.code == IMPLAUSIBLE) == [
        "hashrate_ths: 1e+297 out of range [0, 10000]",
        "uptime_s: -1 out of range [0, 6.3072e+08]",
    ]
