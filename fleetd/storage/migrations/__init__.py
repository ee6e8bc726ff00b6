"""Alembic migration environment, shipped in the package and applied at start."""
