"""Storage: inventory, identity history, latest state, hourly rollups and events (SQLModel, Alembic)."""
