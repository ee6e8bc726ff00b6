"""`fleetd scan/probe/sleep/wake` on a mixed Antminer + Whatsminer fleet (CLI in-process)."""

from __future__ import annotations

import asyncio
import contextlib
import ipaddress
import json
import threading
from collections.abc import Iterator
from typing import Any

import pytest

from fleetd.cli import build_parser, main
from fleetd.cli.sim import build_groups
from fleetd.sim.fleet import Fleet, Group, SimMiner
from fleetd.sim.models import MODELS
from fleetd.sim.whatsminer import QUIRKS as WHATSMINER_QUIRKS
from tests.conftest import loopback_host, web_port

from .conftest import BLOCK, M50S, M60S

S19 = "Antminer S19 Pro"


@contextlib.contextmanager
def running(
    models: list[str], **extra: Any
) -> Iterator[tuple[list[SimMiner], Fleet, asyncio.AbstractEventLoop]]:
    """One miner of each model, on consecutive 127.18.x.y addresses, served from a thread.

    `extra`: more Group fields for every group (faults, options).
    """
    base = loopback_host(BLOCK)
    for _ in models[1:]:
        loopback_host(BLOCK)
    first = ipaddress.IPv4Address(base)
    groups = [
        Group(
            m,
            1,
            str(first + i),
            ports={"web": web_port()} if m.startswith("Antminer") else {},
            jitter=0.0,
            ramp_s=0.2,
            **extra,
        )
        for i, m in enumerate(models)
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


@pytest.fixture
def mixed() -> Iterator[tuple[list[SimMiner], Fleet, asyncio.AbstractEventLoop]]:
    """One S19 Pro, one M50S (API v2), one M60S (API v3)."""
    with running([S19, M50S, M60S]) as out:
        yield out


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


def test_sim_takes_the_names_scan_reports(capsys) -> None:
    """For every emulated model, `fleetd sim --model` accepts the name `fleetd scan` reports for it."""
    models = sorted(MODELS)
    with running(models) as (miners, _, _):
        targets = ",".join(m.host for m in miners)
        code, out, err = cli(
            capsys, "scan", targets, "--json", "--web-port", str(web_port()), "--timeout", "2"
        )
    assert code == 0, err
    reported = {r["host"]: r["model"] for r in map(json.loads, out.splitlines())}
    for miner in miners:
        args = build_parser().parse_args(["sim", "--model", reported[miner.host]])
        (group,) = build_groups(args)
        assert group.model == miner.model, (reported[miner.host], miner.model)


@pytest.mark.parametrize(
    ("name", "model"),
    [("Whatsminer M50S", M50S), ("whatsminer  m60s", M60S), ("Whatsminer M60S_VK40", M60S), (M50S, M50S)],
)
def test_sim_takes_family_names(name: str, model: str) -> None:
    (group,) = build_groups(build_parser().parse_args(["sim", "--model", name]))
    assert group.model == model


def test_sim_quirks_go_to_the_vendors_that_have_them() -> None:
    args = build_parser().parse_args(
        ["sim", "--model", "Whatsminer M50S", "--model", S19, "--quirks", "no_joined,trailing_comma,brace"]
    )
    wm, am = build_groups(args)
    assert wm.quirks == {"no_joined", "trailing_comma"} and am.quirks == {"trailing_comma", "brace"}
    wm, am = build_groups(build_parser().parse_args(["sim", "--model", M60S, "--model", S19, "--quirks"]))
    assert wm.quirks == WHATSMINER_QUIRKS and "no_joined" not in am.quirks and "brace" in am.quirks


def test_sim_unknown_quirk_is_one_line(capsys) -> None:
    code, out, err = cli(capsys, "sim", "--model", M50S, "--quirks", "sparkles")
    assert code == 2 and out == ""
    assert err.startswith("fleetd sim: unknown quirk 'sparkles'") and "no_joined" in err


# (model, Group fields, command and options, what the one-line error must say)
BAD_INPUTS = {
    "v2-wrong-password": (M50S, {"faults": {"wrong_password": 1.0}}, ["sleep"], "--password"),
    "v3-wrong-password": (M60S, {"faults": {"wrong_password": 1.0}}, ["sleep"], "--user/--password"),
    "v2-token-cap": (M50S, {"options": {"max_tokens": 0}}, ["sleep"], "retry when older tokens expire"),
    "v2-write-disabled": (
        M50S,
        {"options": {"write_access": False}},
        ["wake"],
        "enable it in WhatsMinerTool",
    ),
    "v3-write-disabled": (
        M60S,
        {"options": {"write_access": False}},
        ["sleep"],
        "enable it in WhatsMinerTool",
    ),
    "v3-port-unreachable": (M60S, {}, ["sleep", "--v3-port", "14999"], "check that port (--v3-port)"),
    "garbage": (M50S, {"faults": {"malformed": 1.0}}, ["probe"], "check that this is a supported miner"),
    "v3-garbage": (M60S, {"faults": {"malformed": 1.0}}, ["wake"], "check that this is a supported miner"),
    "dead": (M50S, {"faults": {"dead": 1.0}}, ["probe"], "allow it longer with --timeout"),
    "v3-dead": (M60S, {"faults": {"dead": 1.0}}, ["sleep"], "allow it longer with --timeout"),
    "nothing-there": (M50S, {}, ["probe", "--api-port", "14998", "--v3-port", "14999"], "check the address"),
}


@pytest.mark.parametrize("case", BAD_INPUTS)
def test_bad_input_is_one_line_naming_host_and_remedy(case: str, capsys) -> None:
    model, extra, argv, remedy = BAD_INPUTS[case]
    verify = ["--verify-timeout", "2", "-q"] if argv[0] in ("sleep", "wake") else []
    with running([model], **extra) as (miners, fleet, _):
        host = miners[0].host
        code, out, err = cli(capsys, argv[0], host, *argv[1:], "--timeout", "0.5", *verify)
        asleep = fleet.state(host).sleeping
    assert code == 1 and out == "" and not asleep, (out, err)
    lines = err.strip().splitlines()
    assert len(lines) == 1 and "Traceback" not in err, err
    assert lines[0].startswith(f"fleetd {argv[0]}: {host}") and remedy in lines[0], lines[0]


def test_v3_only_miner_through_the_cli(capsys) -> None:
    """A miner whose v2 port is closed is found, read, put to sleep and woken over API v3 alone."""
    with running([M60S]) as (miners, _, _):
        host = miners[0].host
        v3_only = ["--api-port", "14998", "--timeout", "2"]
        code, out, err = cli(capsys, "probe", host, "--json", *v3_only)
        assert code == 0, err
        assert json.loads(out)["identity"]["api"] == "btminer-v3"
        for command, word in (("sleep", "asleep"), ("wake", "awake")):
            code, out, err = cli(capsys, command, host, *v3_only, "--verify-timeout", "5")
            assert code == 0 and f"{word}, verified" in out, err


def test_cli_user_and_password_apply_to_a_whatsminer_v3(capsys) -> None:
    """--user/--password apply to whatever vendor is detected: here the v3 account and its password."""
    with running([M60S], faults={"wrong_password": 1.0}) as (miners, fleet, _):
        host = miners[0].host
        opts = ["--timeout", "2", "--verify-timeout", "3", "-q"]
        code, _, err = cli(capsys, "sleep", host, "--user", "super", "--password", "super-changed", *opts)
        assert code == 0 and fleet.state(host).sleeping, err
        code, _, err = cli(capsys, "wake", host, "--user", "root", "--password", "super-changed", *opts)
        assert code == 1 and fleet.state(host).sleeping and "account" in err, err  # "root" is no v3 account
        code, _, err = cli(capsys, "wake", host, "--password", "super-changed", *opts)
        assert code == 0 and not fleet.state(host).sleeping, err  # no --user: the factory account "super"
