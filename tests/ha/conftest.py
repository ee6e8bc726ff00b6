"""HA tests: a throwaway PostgreSQL schema and a lock name of their own per test."""

from __future__ import annotations

import uuid
from collections.abc import Iterator

import pytest

from tests.conftest import require_service

PG_HOST, PG_PORT, PG_DB = "127.0.0.1", 5432, "test"
CONNINFO = f"host={PG_HOST} port={PG_PORT} dbname={PG_DB} user=postgres"


@pytest.fixture
def pg_url() -> Iterator[str]:
    """A storage URL on a fresh schema (dropped afterwards)."""
    require_service("PostgreSQL", PG_HOST, PG_PORT)
    import psycopg

    schema = f"fleetd_ha_{uuid.uuid4().hex[:12]}"
    with psycopg.connect(CONNINFO, autocommit=True) as conn:
        conn.execute(f'CREATE SCHEMA "{schema}"')
    try:
        yield f"postgresql://postgres@{PG_HOST}:{PG_PORT}/{PG_DB}?options=-csearch_path%3D{schema}"
    finally:
        with psycopg.connect(CONNINFO, autocommit=True) as conn:
            conn.execute(f'DROP SCHEMA "{schema}" CASCADE')


@pytest.fixture
def lock_name() -> str:
    """Advisory locks are per database, not per schema: each test takes a lock nobody else uses."""
    return f"test-{uuid.uuid4().hex[:16]}"


def terminate_lock_sessions(key: int) -> int:
    """End every session holding the advisory lock `key` (a lost database, as the holder sees it)."""
    import psycopg

    from fleetd.daemon.ha import split_key

    classid, objid = split_key(key)
    with psycopg.connect(CONNINFO, autocommit=True) as conn:
        rows = conn.execute(
            "SELECT pg_terminate_backend(pid) FROM pg_locks WHERE locktype = 'advisory' AND granted "
            "AND objsubid = 1 AND classid::bigint = %s AND objid::bigint = %s",
            (classid, objid),
        ).fetchall()
    return len(rows)
