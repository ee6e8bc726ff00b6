"""[ha] configuration: off by default, validated, needs PostgreSQL; the lock key and the timings."""

from __future__ import annotations

import pytest

from fleetd.config import ConfigError, HaConfig, parse_config
from fleetd.daemon.ha import Timings, conninfo, session_settings, split_key

PG = {"url": "postgresql://fleetd@127.0.0.1:5432/fleetd"}


def _errors(data: dict) -> list[str]:
    with pytest.raises(ConfigError) as exc:
        parse_config(data)
    return exc.value.errors


def test_off_by_default_and_a_pg_pair_validates() -> None:
    assert parse_config({}).ha.enabled is False
    cfg = parse_config({"storage": PG, "ha": {"enabled": True, "heartbeat_s": 1, "takeover_s": 5}})
    assert cfg.ha.enabled and cfg.ha.takeover_s == 5


@pytest.mark.parametrize("storage", [{}, {"url": "sqlite:////var/lib/fleetd/fleetd.db"}])
def test_enabled_needs_postgresql(storage: dict) -> None:
    (err,) = _errors({"storage": storage, "ha": {"enabled": True}})
    assert err.startswith("ha.enabled: needs a PostgreSQL [storage] url")
    assert "SQLite" in err


def test_disabled_section_needs_nothing() -> None:
    assert parse_config({"ha": {"enabled": False, "takeover_s": 1}}).ha.takeover_s == 1


@pytest.mark.parametrize(
    ("section", "expected"),
    [
        (
            {"enabled": True, "heartbeat_s": 2, "takeover_s": 7},
            "ha.takeover_s: must be at least 4 x heartbeat_s (8)",
        ),
        ({"heartbeat_s": 0}, "ha.heartbeat_s"),
        ({"takeover_s": -1}, "ha.takeover_s"),
        ({"lock_key": 2**63}, "ha.lock_key"),
        ({"lock_name": "no spaces"}, "ha.lock_name"),
        ({"lock": "x"}, "ha.lock"),
    ],
)
def test_bad_values_name_the_key(section: dict, expected: str) -> None:
    errors = _errors({"storage": PG, "ha": section})
    assert any(e.startswith(expected) for e in errors), errors


def test_lock_key_is_stable_distinct_per_name_and_overridable() -> None:
    a, b = HaConfig(lock_name="hall-a"), HaConfig(lock_name="hall-b")
    assert a.key() == HaConfig(lock_name="hall-a").key() != b.key()
    assert -(2**63) <= a.key() < 2**63
    assert HaConfig(lock_name="hall-a", lock_key=-5).key() == -5


def test_key_splits_as_pg_locks_shows_it() -> None:
    assert split_key(1) == (0, 1)
    assert split_key((7 << 32) | 9) == (7, 9)
    assert split_key(-1) == (0xFFFF_FFFF, 0xFFFF_FFFF)


def test_timings_leave_the_active_time_to_step_down_before_the_lease_ends() -> None:
    t = Timings.of(2.0, 15.0)
    assert t.lease_s == 13.0 and t.fence_s == 4.0
    assert t.fence_s < t.lease_s  # the active fences itself before the server frees its lock
    assert t.lease_s + t.heartbeat_s <= 15.0  # and the standby retries within the takeover time
    settings = session_settings(t)
    assert "SET idle_session_timeout = 13000" in settings
    assert "SET statement_timeout = 2000" in settings


def test_conninfo_drops_the_sqlalchemy_driver() -> None:
    assert conninfo("postgresql+psycopg://u@h:5432/d?x=1") == "postgresql://u@h:5432/d?x=1"
    assert conninfo("postgresql://u@h/d") == "postgresql://u@h/d"
