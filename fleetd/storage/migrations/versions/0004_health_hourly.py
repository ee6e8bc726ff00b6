"""Health history: per-miner hourly sums of temperatures, fans, errors, efficiency, boards, restarts.

Revision ID: 0004
Revises: 0003
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0004"
down_revision = "0003"
branch_labels = None
depends_on = None

_FLOATS = (
    "chip_temp_sum_c",
    "env_temp_sum_c",
    "fan_rpm_sum",
    "hw_errors",
    "hw_s",
    "power_w_sum",
    "eff_hashrate_ths_sum",
    "board_ratio_sum",
)
_INTS = ("samples", "chip_temp_n", "env_temp_n", "fan_n", "eff_n", "board_n", "restarts")


def upgrade() -> None:
    op.create_table(
        "health_hourly",
        sa.Column("miner_id", sa.String(), nullable=False),
        sa.Column("hour_start", sa.DateTime(timezone=True), nullable=False),
        *(sa.Column(c, sa.Integer(), nullable=False) for c in _INTS),
        *(sa.Column(c, sa.Float(), nullable=False) for c in _FLOATS),
        sa.Column("board_worst", sa.Integer(), nullable=True),
        sa.PrimaryKeyConstraint("miner_id", "hour_start"),
    )
    op.create_index("ix_health_hourly_hour_start", "health_hourly", ["hour_start"])


def downgrade() -> None:
    op.drop_index("ix_health_hourly_hour_start", table_name="health_hourly")
    op.drop_table("health_hourly")
