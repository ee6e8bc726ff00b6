"""`fleetd scan` counts and lists hosts that answered but were not identified (garbage replies)."""

from __future__ import annotations

import itertools
import json

import pytest
from simthread import running_fleet

from fleetd.cli import main
from fleetd.cli.scan import unidentified_note
from fleetd.discovery import Unidentified
from fleetd.sim.fleet import Group

S19 = "Antminer S19 Pro"
M50S = "Whatsminer M50S"
PORTS = {"api": 14028, "web": 18080}
ARGS = ["--api-port", "14028", "--web-port", "18080", "--timeout", "1"]
_subnets = itertools.count(1)


def subnet() -> str:
    """A fresh 127.23.N.0/24 prefix (this task's loopback block) for one test's miners."""
    return f"127.23.{next(_subnets)}."


def scan(capsys: pytest.CaptureFixture[str], *argv: str) -> tuple[int, str, str]:
    code = main(["scan", *argv, *ARGS])
    out, err = capsys.readouterr()
    return code, out, err


def test_garbage_hosts_are_counted_and_named_in_the_summary(capsys) -> None:
    net = subnet()
    groups = (
        Group(S19, 2, f"{net}1", ports=PORTS, jitter=0.0),
        Group(S19, 1, f"{net}3", ports=PORTS, faults={"malformed": 1.0}),
        Group(M50S, 1, f"{net}4", ports={"api": 14028}, faults={"malformed": 1.0}),
    )
    with running_fleet(*groups):
        code, out, err = scan(capsys, f"{net}1-6")
    assert code == 0, err
    lines = out.splitlines()
    assert [r.split()[0] for r in lines[1:-1]] == [f"{net}1", f"{net}2"]
    assert lines[-1].startswith("found 2 miners in 6 addresses (")
    assert lines[-1].endswith(f"s); 2 answered but were not identified: {net}3, {net}4"), lines[-1]


def test_garbage_hosts_are_json_lines_with_the_error(capsys) -> None:
    net = subnet()
    groups = (
        Group(S19, 1, f"{net}1", ports=PORTS, jitter=0.0),
        Group(S19, 1, f"{net}2", ports=PORTS, faults={"malformed": 1.0}),
        Group(M50S, 1, f"{net}3", ports={"api": 14028}, faults={"malformed": 1.0}),
        Group(S19, 1, f"{net}4", ports=PORTS, faults={"dead": 1.0}),  # never answers: not listed
    )
    with running_fleet(*groups):
        code, out, err = scan(capsys, f"{net}1-6", "--json")
    assert code == 0, err
    rows = [json.loads(line) for line in out.splitlines()]
    assert [(r["host"], r["identified"]) for r in rows] == [
        (f"{net}1", True),
        (f"{net}2", False),
        (f"{net}3", False),
    ]
    for r in rows[1:]:
        assert r["api_port"] == 14028 and r["error"], r
        assert set(r) == {"host", "api_port", "identified", "error"}
    assert err.strip().endswith(f"2 answered but were not identified: {net}2, {net}3"), err


@pytest.mark.parametrize("as_json", [False, True])
def test_only_garbage_exits_1_and_still_names_it(capsys, as_json: bool) -> None:
    net = subnet()
    with running_fleet(Group(S19, 1, f"{net}1", ports=PORTS, faults={"malformed": 1.0})):
        code, out, err = scan(capsys, f"{net}1-2", *(["--json"] if as_json else []))
    assert code == 1
    lines = err.strip().splitlines()
    assert len(lines) == 1 and "Traceback" not in err, err
    assert lines[0].startswith("fleetd scan: no miners found in 2 addresses (")
    assert lines[0].endswith(f"; 1 answered but was not identified: {net}1"), lines[0]
    if as_json:
        (row,) = [json.loads(line) for line in out.splitlines()]
        assert row["host"] == f"{net}1" and row["identified"] is False and row["error"]
    else:
        assert out == ""


def test_summary_names_the_first_few_and_counts_the_rest() -> None:
    hosts = [Unidentified(f"10.0.0.{i}", 4028, "garbage") for i in range(1, 9)]
    note = unidentified_note(hosts)
    named = ", ".join(f"10.0.0.{i}" for i in range(1, 6))
    assert note == f"; 8 answered but were not identified: {named}, ... (+3 more)"
    assert unidentified_note([]) == ""
