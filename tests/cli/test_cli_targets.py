"""Scan-target parsing: every accepted form, merging, the size guard, and one-line errors."""

from __future__ import annotations

import pytest

from fleetd.discovery import (
    MAX_ADDRESSES,
    Target,
    TargetError,
    ip_sort_key,
    max_concurrency,
    parse_host,
    parse_targets,
    split_port,
)


def hosts(*specs: str, **kw: bool) -> list[str]:
    return [t.host for t in parse_targets(specs, **kw)]


def test_cidr_leaves_out_network_and_broadcast() -> None:
    got = hosts("127.1.0.0/24")
    assert len(got) == 254
    assert got[0] == "127.1.0.1" and got[-1] == "127.1.0.254"


def test_small_cidrs_keep_every_address() -> None:
    assert hosts("10.0.0.4/31") == ["10.0.0.4", "10.0.0.5"]
    assert hosts("10.0.0.4/32") == ["10.0.0.4"]


def test_cidr_with_host_bits_set_means_its_network() -> None:
    assert hosts("10.0.0.77/30") == ["10.0.0.77", "10.0.0.78"]


def test_full_and_short_ranges() -> None:
    assert hosts("10.0.0.1-10.0.0.3") == ["10.0.0.1", "10.0.0.2", "10.0.0.3"]
    assert hosts("10.0.0.1-3") == ["10.0.0.1", "10.0.0.2", "10.0.0.3"]
    assert len(hosts("10.0.0.250-10.0.1.5")) == 12


def test_lists_with_commas_and_spaces_merge_overlaps_and_sort() -> None:
    assert hosts("10.0.0.5, 10.0.0.1-3", "10.0.0.2-6 10.0.0.1") == [f"10.0.0.{n}" for n in range(1, 7)]


def test_host_names_come_after_addresses_once_each() -> None:
    assert hosts("Miner-01.farm,10.0.0.9 miner-01.farm") == ["10.0.0.9", "miner-01.farm"]


def test_port_override_per_target() -> None:
    got = list(parse_targets(["10.0.0.1:14028", "10.0.0.2", "10.0.0.0/30:4029"]))
    assert Target("10.0.0.1", 14028) in got
    assert Target("10.0.0.2", None) in got
    assert Target("10.0.0.1", 4029) in got and Target("10.0.0.2", 4029) in got
    assert len(got) == 4


def test_ipv6_forms() -> None:
    assert split_port("[::1]:4028") == ("::1", 4028)
    assert split_port("::1") == ("::1", None)
    assert list(parse_targets(["[fd00::5]:14028"])) == [Target("fd00::5", 14028)]


def test_at_file_one_target_per_line_with_comments(tmp_path) -> None:
    f = tmp_path / "targets.txt"
    f.write_text("# rack 1\n10.0.0.1-2\n\n10.0.0.9  # spare\nminer-a\n")
    assert hosts(f"@{f}", "10.0.0.3") == ["10.0.0.1", "10.0.0.2", "10.0.0.3", "10.0.0.9", "miner-a"]


def test_count_is_exact_before_expanding() -> None:
    big = parse_targets(["10.0.0.0/8"], force=True)
    assert len(big) == 2**24 - 2
    assert next(iter(big)).host == "10.0.0.1"


def test_huge_scan_needs_force() -> None:
    assert len(parse_targets(["10.1.0.0/16"])) == 65534  # a /16 is allowed
    with pytest.raises(TargetError, match="--force"):
        parse_targets(["10.0.0.0/15"])
    with pytest.raises(TargetError, match="more than 65,536"):
        parse_targets([f"10.{n}.0.0/17" for n in range(3)])
    assert MAX_ADDRESSES == 65_536


@pytest.mark.parametrize(
    ("spec", "message"),
    [
        ("10.0.0.300", "not an address, range, CIDR or host name"),
        ("10.0.0", "not an address, range, CIDR or host name"),
        ("10.0.0.1-300", "last octet 300 is above 255"),
        ("10.0.0.9-10.0.0.1", "range end is before its start"),
        ("10.0.0.9-2", "range end is before its start"),
        ("10.0.0.1-10.0.0.x", "'10.0.0.x' is not an IP address"),
        ("10.0.0.1-::5", "range end is before its start"),
        ("1.2.3.4/33", "not a CIDR network"),
        ("10.0.0.1:0", "port must be 1-65535"),
        ("10.0.0.1:99999", "port must be 1-65535"),
        ("10.0.0.1:http", "port must be 1-65535"),
        ("[::1", "expected [IPv6]:PORT"),
        ("under_score", "not an address, range, CIDR or host name"),
        ("@/nonexistent/targets", "cannot read target file"),
        ("", "no targets given"),
        (" , ", "no targets given"),
    ],
)
def test_bad_targets_give_one_line_errors(spec: str, message: str) -> None:
    with pytest.raises(TargetError, match=message.replace("[", r"\[").replace("(", r"\(")) as info:
        parse_targets([spec])
    assert "\n" not in str(info.value)


def test_nested_at_file_is_refused(tmp_path) -> None:
    inner = tmp_path / "inner"
    inner.write_text("10.0.0.1\n")
    outer = tmp_path / "outer"
    outer.write_text(f"@{inner}\n")
    with pytest.raises(TargetError, match="inside a target file"):
        parse_targets([f"@{outer}"])


def test_parse_host_takes_exactly_one() -> None:
    assert parse_host("10.0.0.7:4029") == Target("10.0.0.7", 4029)
    assert parse_host("miner-7") == Target("miner-7", None)
    with pytest.raises(TargetError, match="expected one host"):
        parse_host("10.0.0.0/24")
    with pytest.raises(TargetError, match="expected one host"):
        parse_host("10.0.0.0/8")


def test_ip_sort_key_is_numeric() -> None:
    got = sorted(["10.0.0.10", "name", "10.0.0.9", "::1", "9.0.0.1"], key=ip_sort_key)
    assert got == ["9.0.0.1", "10.0.0.9", "10.0.0.10", "::1", "name"]


def test_concurrency_fits_the_open_files_limit() -> None:
    assert max_concurrency(20_000) == 4984
    assert max_concurrency(10) == 1
