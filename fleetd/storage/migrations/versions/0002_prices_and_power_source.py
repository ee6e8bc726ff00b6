"""Price history table; the power source of each hourly rollup.

Revision ID: 0002
Revises: 0001
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0002"
down_revision = "0001"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        "prices",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("kind", sa.String(), nullable=False),
        sa.Column("source", sa.String(), nullable=False),
        sa.Column("location", sa.String(), nullable=False),
        sa.Column("start", sa.DateTime(timezone=True), nullable=False),
        sa.Column("end", sa.DateTime(timezone=True), nullable=True),
        sa.Column("value", sa.Float(), nullable=False),
        sa.Column("unit", sa.String(), nullable=False),
        sa.Column("currency", sa.String(), nullable=False),
        sa.Column("fetched_at", sa.DateTime(timezone=True), nullable=False),
        sa.PrimaryKeyConstraint("id"),
        sa.UniqueConstraint("kind", "source", "location", "start", name="uq_prices_point"),
    )
    op.create_index("ix_prices_kind", "prices", ["kind"])
    op.create_index("ix_prices_start", "prices", ["start"])
    with op.batch_alter_table("hourly_rollups") as batch:
        batch.add_column(sa.Column("power_source", sa.String(), nullable=False, server_default=""))


def downgrade() -> None:
    with op.batch_alter_table("hourly_rollups") as batch:
        batch.drop_column("power_source")
    op.drop_index("ix_prices_start", table_name="prices")
    op.drop_index("ix_prices_kind", table_name="prices")
    op.drop_table("prices")
