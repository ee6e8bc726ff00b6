"""Curtailment: per-miner desired and verified state, and the decision/command log.

Revision ID: 0003
Revises: 0002
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0003"
down_revision = "0002"
branch_labels = None
depends_on = None


def _ts(name: str, nullable: bool = True) -> sa.Column:  # type: ignore[type-arg]
    return sa.Column(name, sa.DateTime(timezone=True), nullable=nullable)


def upgrade() -> None:
    op.create_table(
        "curtail_state",
        sa.Column("miner_id", sa.String(), nullable=False),
        sa.Column("target", sa.String(), nullable=False),
        sa.Column("power_limit_w", sa.Integer(), nullable=True),
        _ts("since"),
        sa.Column("reason", sa.String(), nullable=False),
        sa.Column("streaks", sa.String(), nullable=False),
        sa.Column("actual", sa.String(), nullable=False),
        sa.Column("commanded", sa.String(), nullable=False),
        sa.Column("commanded_limit_w", sa.Integer(), nullable=True),
        _ts("verified_at"),
        _ts("changed_at"),
        sa.Column("failures", sa.Integer(), nullable=False),
        _ts("next_attempt_at"),
        sa.Column("last_error", sa.String(), nullable=False),
        _ts("updated_at", nullable=False),
        sa.PrimaryKeyConstraint("miner_id"),
    )
    op.create_table(
        "curtail_log",
        sa.Column("id", sa.Integer(), nullable=False),
        _ts("at", nullable=False),
        sa.Column("miner_id", sa.String(), nullable=False),
        sa.Column("kind", sa.String(), nullable=False),
        sa.Column("target", sa.String(), nullable=False),
        sa.Column("rule", sa.String(), nullable=False),
        sa.Column("attempt", sa.Integer(), nullable=False),
        sa.Column("message", sa.String(), nullable=False),
        sa.PrimaryKeyConstraint("id"),
    )
    op.create_index("ix_curtail_log_at", "curtail_log", ["at"])
    op.create_index("ix_curtail_log_miner_id", "curtail_log", ["miner_id"])
    op.create_index("ix_curtail_log_kind", "curtail_log", ["kind"])


def downgrade() -> None:
    for ix in ("ix_curtail_log_kind", "ix_curtail_log_miner_id", "ix_curtail_log_at"):
        op.drop_index(ix, table_name="curtail_log")
    op.drop_table("curtail_log")
    op.drop_table("curtail_state")
