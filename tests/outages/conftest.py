"""Outage fixtures: a PostgreSQL role that can be made to refuse, a tiny filesystem that fills up."""

from __future__ import annotations

import asyncio
import itertools
import os
import shutil
import subprocess
import time
import uuid
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest

from tests.conftest import require_service

BLOCKS = range(80, 90)  # loopback 127.80-89.x.y belongs to these tests
PG_HOST, PG_PORT, PG_DB = "127.0.0.1", 5432, "test"
_subnets = itertools.count(1)


def subnet(block: int = 80) -> str:
    """A fresh 127.<block>.N. prefix for one test's miners."""
    assert block in BLOCKS
    return f"127.{block}.{next(_subnets)}."


async def until(cond: Callable[[], bool], within: float = 15.0, what: str = "condition") -> None:
    deadline = time.monotonic() + within
    while not cond():
        if time.monotonic() > deadline:
            raise AssertionError(f"timed out waiting for {what}")
        await asyncio.sleep(0.05)


class PgRole:
    """A login role with its own schema; `refuse()` stops it logging in and ends its sessions."""

    def __init__(self) -> None:
        self.name = f"fleetd_h11b_{uuid.uuid4().hex[:10]}"
        self.admin = f"host={PG_HOST} port={PG_PORT} dbname={PG_DB} user=postgres"
        self.url = f"postgresql://{self.name}@{PG_HOST}:{PG_PORT}/{PG_DB}?options=-csearch_path%3D{self.name}"

    def sql(self, *statements: str) -> list[tuple[object, ...]]:
        import psycopg

        rows: list[tuple[object, ...]] = []
        with psycopg.connect(self.admin, autocommit=True) as conn:
            for s in statements:
                cur = conn.execute(s)
                if cur.description is not None:
                    rows = list(cur.fetchall())
        return rows

    def refuse(self) -> None:
        self.sql(
            f'ALTER ROLE "{self.name}" NOLOGIN',
            f"SELECT pg_terminate_backend(pid) FROM pg_stat_activity WHERE usename = '{self.name}'",
        )

    def accept(self) -> None:
        self.sql(f'ALTER ROLE "{self.name}" LOGIN')


@pytest.fixture
def pg_role() -> Iterator[PgRole]:
    require_service("PostgreSQL", PG_HOST, PG_PORT)
    role = PgRole()
    role.sql(f'CREATE ROLE "{role.name}" LOGIN', f'CREATE SCHEMA "{role.name}" AUTHORIZATION "{role.name}"')
    try:
        yield role
    finally:
        role.sql(
            f'ALTER ROLE "{role.name}" NOLOGIN',
            f"SELECT pg_terminate_backend(pid) FROM pg_stat_activity WHERE usename = '{role.name}'",
            f'DROP SCHEMA "{role.name}" CASCADE',
            f'DROP ROLE "{role.name}"',
        )


class TinyFs:
    """A loop-mounted ext4 filesystem of a few MiB: `fill()` leaves no space, `mount(ro=True)` freezes it."""

    def __init__(self, image: Path, mountpoint: Path) -> None:
        self.image, self.path = image, mountpoint
        self._filler = mountpoint / "filler"

    def fill(self) -> None:
        with self._filler.open("ab") as f:
            try:
                while True:
                    f.write(b"\0" * 65536)
                    f.flush()
            except OSError:
                pass
        for n in range(64):  # the last partial blocks too
            try:
                with (self.path / f"crumb{n}").open("wb") as f:
                    f.write(b"\0" * 1024)
            except OSError:
                break

    def free(self) -> None:
        for p in self.path.glob("crumb*"):
            p.unlink()
        self._filler.unlink(missing_ok=True)

    def umount(self) -> None:
        subprocess.run(["umount", str(self.path)], check=True)

    def mount(self, *, ro: bool = False) -> None:
        opts = "loop,ro" if ro else "loop"
        subprocess.run(["mount", "-o", opts, str(self.image), str(self.path)], check=True)


@pytest.fixture
def tiny_fs(tmp_path: Path) -> Iterator[TinyFs]:
    if os.geteuid() != 0 or not shutil.which("mkfs.ext4") or not shutil.which("mount"):
        pytest.skip("needs root and mkfs.ext4 to loop-mount a tiny filesystem")
    image, mnt = tmp_path / "fs.img", tmp_path / "mnt"
    mnt.mkdir()
    with image.open("wb") as f:
        f.truncate(4 * 1024 * 1024)
    subprocess.run(["mkfs.ext4", "-q", "-F", str(image)], check=True, capture_output=True)
    fs = TinyFs(image, mnt)
    try:
        fs.mount()
    except subprocess.CalledProcessError as exc:
        pytest.skip(f"cannot loop-mount here: {exc}")
    try:
        yield fs
    finally:
        subprocess.run(["umount", "-l", str(mnt)], check=False, capture_output=True)
