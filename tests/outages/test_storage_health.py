"""Storage outages show in /metrics: fleetd_storage_up, dropped writes and spooled items tell the truth."""

from __future__ import annotations

from pathlib import Path

import pytest

from fleetd.daemon.core import Daemon
from fleetd.daemon.events import Event, EventKind

from .conftest import PgRole, TinyFs
from .helpers import config, daemon, fleet, metrics, until

FAST = {"latest_state_every_s": 0, "queue_size": 100}


def _writing(d: Daemon) -> bool:
    return d.storage is not None and d.storage.failing_since is None


def _noise(d: object, n: int, size: int = 2000) -> None:
    for i in range(n):
        d.emit(Event(EventKind.CONFIG_RELOADED, f"{i} " + "x" * size))  # type: ignore[attr-defined]


async def test_sqlite_disk_full_sets_storage_down_and_counts_dropped_writes(
    tiny_fs: TinyFs, monkeypatch: pytest.MonkeyPatch
) -> None:
    from fleetd.daemon import storage_handoff

    monkeypatch.setattr(storage_handoff, "UNSTORED_MAX", 100)
    async with fleet(2) as (_f, hosts):
        cfg = config(hosts, storage=FAST)
        async with daemon(cfg, tiny_fs.path / "state") as d:
            await until(lambda: d.state.up() == 2, what="both up")
            assert d.storage is not None and d.storage.flush(10)
            assert (await metrics(d))["fleetd_storage_up"] == 1
            tiny_fs.fill()
            for _ in range(50):  # enough rows that the WAL has to grow
                _noise(d, 20)
                if not _writing(d):
                    break
                d.storage.flush(2)
            await until(lambda: not _writing(d), what="failing")
            m = await metrics(d)
            assert m["fleetd_storage_up"] == 0
            _noise(d, 300, 10)  # the spool (100, in memory: the disk is full) overflows
            m = await metrics(d)
            assert m["fleetd_storage_unstored_items"] == 100
            assert m["fleetd_storage_dropped_writes_total"] >= 200
            tiny_fs.free()
            await until(lambda: _writing(d) and len(d._spool) == 0, 40, "writing again, spool replayed")
            m = await metrics(d)
            assert m["fleetd_storage_up"] == 1 and m["fleetd_storage_dropped_writes_total"] >= 200


@pytest.mark.postgres
async def test_postgresql_refusing_sets_storage_down_until_it_accepts_again(
    pg_role: PgRole, tmp_path: Path
) -> None:
    async with fleet(2) as (_f, hosts):
        cfg = config(hosts, storage={"url": pg_role.url} | FAST)
        async with daemon(cfg, tmp_path) as d:
            await until(lambda: d.state.up() == 2, what="both up")
            assert d.storage is not None and d.storage.flush(10)
            assert (await metrics(d))["fleetd_storage_up"] == 1
            pg_role.refuse()
            d.emit(Event(EventKind.CONFIG_RELOADED, "while refused"))
            await until(lambda: not _writing(d), what="failing")
            assert (await metrics(d))["fleetd_storage_up"] == 0
            d.emit(Event(EventKind.CONFIG_RELOADED, "after the failure showed"))
            assert b"after the failure showed" in (tmp_path / "unstored.jsonl").read_bytes()  # on disk
            assert (await metrics(d))["fleetd_storage_unstored_items"] >= 1
            pg_role.accept()
            await until(lambda: _writing(d) and len(d._spool) == 0, 40, "writing again, spool replayed")
            assert d.storage.flush(10)
            messages = [e["message"] for e in d.storage.events(kind="config_reloaded")]
            assert sorted(messages) == ["after the failure showed", "while refused"]
            assert (await metrics(d))["fleetd_storage_up"] == 1


@pytest.mark.postgres
async def test_postgresql_refusing_at_start_spools_and_shows_down(pg_role: PgRole, tmp_path: Path) -> None:
    pg_role.refuse()
    async with (
        fleet(1) as (_f, hosts),
        daemon(config(hosts, storage={"url": pg_role.url} | FAST), tmp_path) as d,
    ):
        await until(lambda: d.state.up() == 1, what="up")
        m = await metrics(d)
        assert m["fleetd_storage_up"] == 0 and m["fleetd_storage_unstored_items"] >= 2  # started, error
        assert (tmp_path / "unstored.jsonl").exists()


@pytest.mark.postgres
async def test_a_row_the_database_refuses_is_counted_as_dropped(pg_role: PgRole, tmp_path: Path) -> None:
    async with (
        fleet(1) as (_f, hosts),
        daemon(config(hosts, storage={"url": pg_role.url} | FAST), tmp_path) as d,
    ):
        await until(lambda: d.state.up() == 1, what="up")
        assert d.storage is not None and d.storage.flush(10)
        before = (await metrics(d))["fleetd_storage_dropped_writes_total"]
        d.emit(Event(EventKind.CONFIG_RELOADED, "a NUL \x00 PostgreSQL text refuses"))
        d.emit(Event(EventKind.CONFIG_RELOADED, "a good one"))
        assert d.storage.flush(30)
        m = await metrics(d)
        stored = [e["message"] for e in d.storage.events(kind="config_reloaded")]
        assert stored == ["a good one"]  # the salvage drops the refused row alone
        assert m["fleetd_storage_dropped_writes_total"] == before + 1
        assert m["fleetd_storage_up"] == 1  # the database works; it refused a row


async def test_read_only_sqlite_at_start_knows_the_fleet_and_announces_no_miner_again(
    tiny_fs: TinyFs,
) -> None:
    from tests.conftest import web_port

    state = tiny_fs.path / "state"
    async with fleet(2) as (_f, hosts):
        cfg = config([], discovery=[{"targets": hosts, "web_port": web_port(), "interval_s": 3600}])
        async with daemon(cfg, state) as d:
            await until(lambda: d.state.up() == 2, what="both discovered and up")
            assert [e.kind for e in d.events].count(EventKind.MINER_ADDED) == 2
        tiny_fs.umount()
        tiny_fs.mount(ro=True)
        async with daemon(cfg, state) as d:
            assert sorted(d.state.miners) == sorted(hosts)  # known before any scan
            assert await d.discover_now() == 0
            await until(lambda: d.state.up() == 2, what="both up again")
            assert EventKind.MINER_ADDED not in [e.kind for e in d.events]
            m = await metrics(d)
            assert m["fleetd_storage_up"] == 0 and m["fleetd_storage_unstored_items"] >= 1
