"""Curtailment state and log through the storage writer, on SQLite and PostgreSQL."""

from __future__ import annotations

from fleetd.storage.store import Storage

T = 1_800_000_000.0


def test_state_upserts_and_log_appends(db_url: str) -> None:
    s = Storage(db_url)
    s.open()
    try:
        row = {
            "miner_id": "m1",
            "target": "sleep",
            "power_limit_w": None,
            "since": T,
            "reason": '{"kind": "economic"}',
            "streaks": '{"economic": 0}',
            "actual": "running",
            "commanded": "sleep",
            "commanded_limit_w": None,
            "verified_at": T - 10,
            "changed_at": 0.0,
            "failures": 1,
            "next_attempt_at": T + 60,
            "last_error": "acknowledged but not in effect",
        }
        s.set_curtail_state([row])
        s.set_curtail_state([row | {"actual": "sleeping", "failures": 0, "verified_at": T + 5}])
        s.add_curtail_log(
            [
                {
                    "at": T,
                    "miner_id": "m1",
                    "kind": "command",
                    "target": "sleep",
                    "rule": "economic",
                    "attempt": 1,
                    "message": "sleep sent",
                }
            ]
        )
        s.add_curtail_log(
            [
                {
                    "at": T + 5,
                    "miner_id": "m1",
                    "kind": "verified",
                    "target": "sleep",
                    "rule": "",
                    "attempt": 1,
                    "message": "asleep",
                }
            ]
        )
        assert s.flush(10)
        (st,) = s.curtail_states()
        assert st["actual"] == "sleeping" and st["failures"] == 0 and st["since"] == T
        assert st["verified_at"] == T + 5 and st["changed_at"] is None and st["next_attempt_at"] == T + 60
        log = s.curtail_log()
        assert [r["kind"] for r in log] == ["verified", "command"]
        assert s.curtail_log(kind="command")[0]["message"] == "sleep sent"
    finally:
        s.close()
