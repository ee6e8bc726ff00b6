"""Nothing held is lost: a daemon killed (SIGKILL) while PostgreSQL refuses leaves a spool for the next run.

Two real `fleetd run` processes on one state directory against the real PostgreSQL: the first runs while
its role may not log in and is killed; the second starts with the role allowed again. Every spooled event,
identity change and rollup is stored exactly once.
"""

from __future__ import annotations

import asyncio
import signal
import sys
from collections import Counter
from pathlib import Path

import orjson
import pytest

from fleetd.storage.store import Storage
from tests.conftest import web_port

from .conftest import PgRole, until
from .helpers import fleet

pytestmark = pytest.mark.postgres

_RUN = (
    "import sys, fleetd.daemon.jobs as j; j.ROLLUP_FLUSH_S = float(sys.argv[1]); from fleetd.cli import main;"
    " raise SystemExit(main(['run', '--no-api', '--config', sys.argv[2], '--state-dir', sys.argv[3]]))"
)


def _spooled(state: Path) -> list[dict[str, object]]:
    out = []
    for name in ("unstored.jsonl.replaying", "unstored.jsonl"):
        p = state / name
        if p.exists():
            out += [orjson.loads(line) for line in p.read_bytes().splitlines() if line.strip()]
    return out


async def _run(rollup_flush_s: float, cfg: Path, state: Path) -> asyncio.subprocess.Process:
    return await asyncio.create_subprocess_exec(
        sys.executable, "-c", _RUN, str(rollup_flush_s), str(cfg), str(state),
        stdout=asyncio.subprocess.DEVNULL, stderr=asyncio.subprocess.DEVNULL,
    )  # fmt: skip


async def _kill(proc: asyncio.subprocess.Process) -> None:
    if proc.returncode is None:
        proc.send_signal(signal.SIGKILL)
    await proc.wait()


async def test_killed_while_postgresql_refuses_then_restarted_loses_and_duplicates_nothing(
    pg_role: PgRole, tmp_path: Path
) -> None:
    state = tmp_path / "state"
    pg_role.refuse()
    async with fleet(2, block=81) as (_f, hosts):
        cfg = tmp_path / "fleetd.toml"
        miners = "".join(f'[[miners]]\nhost = "{h}"\nweb_port = {web_port()}\n\n' for h in hosts)
        cfg.write_text(
            "[polling]\ninterval_s = 0.3\njitter_s = 0.0\ntimeout_s = 1.0\nconnect_timeout_s = 0.5\n\n"
            f'[storage]\nurl = "{pg_role.url}"\nlatest_state_every_s = 0\n\n{miners}'
        )

        def spooled_enough() -> bool:
            items = _spooled(state)
            idents = {i["miner_id"] for i in items if i["k"] == "identity"}
            return idents == set(hosts) and sum(1 for i in items if i["k"] == "rollup") >= 4

        first = await _run(0.5, cfg, state)
        try:
            await until(spooled_enough, 30, "identities and rollups spooled")
        finally:
            await _kill(first)
        spooled = _spooled(state)
        events = Counter(
            (i["kind"], i["message"], round(float(i["at"]), 3)) for i in spooled if i["k"] == "event"
        )
        assert {k for k, _m, _a in events} >= {"started", "storage_error"}
        rollup_samples: Counter[tuple[str, float]] = Counter()
        for i in spooled:
            if i["k"] == "rollup":
                rollup_samples[(str(i["miner_id"]), float(i["hour_start"]))] += int(i["samples"])  # type: ignore[call-overload]

        pg_role.accept()
        second = await _run(
            3600.0, cfg, state
        )  # its own rollups stay in memory: only spooled ones are stored
        reader = Storage(pg_role.url)
        try:
            await until(lambda: not _spooled(state), 60, "the spool replayed")
            reader.open()
            await until(lambda: len(reader.latest()) == 2, 30, "the second run writing its own rows")
            await asyncio.sleep(1.0)  # several more poll cycles: any identity re-recorded would show
        finally:
            await _kill(second)
        try:
            for h in hosts:
                assert len(reader.identity_history(h)) == 1, h
            stored = Counter(
                (
                    e["kind"],
                    e["message"],
                    round(_ts(e["at"]), 3),
                )
                for e in reader.events(limit=10_000)
            )
            for key, n in events.items():
                assert stored[key] == n, (key, [s for s in stored if s[0] == key[0]])
            got = {(r["miner_id"], _ts(r["hour_start"])): r["samples"] for r in reader.rollups()}
            assert got == dict(rollup_samples)
            assert "miner_added" not in {k for k, _m, _a in stored}
        finally:
            reader.close()


def _ts(v: object) -> float:
    return v.timestamp() if hasattr(v, "timestamp") else float(v)  # type: ignore[attr-defined,arg-type]
