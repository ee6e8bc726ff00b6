"""A fresh database per test: SQLite in a temporary directory, or a throwaway PostgreSQL schema."""

from __future__ import annotations

import uuid
from collections.abc import Iterator
from pathlib import Path

import pytest

from tests.conftest import require_service

PG_HOST, PG_PORT, PG_DB = "127.0.0.1", 5432, "test"


@pytest.fixture(params=["sqlite", pytest.param("postgresql", marks=pytest.mark.postgres)])
def db_url(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[str]:
    if request.param == "sqlite":
        yield f"sqlite:///{tmp_path / 'fleetd.db'}"
        return
    require_service("PostgreSQL", PG_HOST, PG_PORT)
    import psycopg

    schema = f"fleetd_test_{uuid.uuid4().hex[:12]}"
    conninfo = f"host={PG_HOST} port={PG_PORT} dbname={PG_DB} user=postgres"
    with psycopg.connect(conninfo, autocommit=True) as conn:
        conn.execute(f'CREATE SCHEMA "{schema}"')
    try:
        yield f"postgresql://postgres@{PG_HOST}:{PG_PORT}/{PG_DB}?options=-csearch_path%3D{schema}"
    finally:
        with psycopg.connect(conninfo, autocommit=True) as conn:
            conn.execute(f'DROP SCHEMA "{schema}" CASCADE')
