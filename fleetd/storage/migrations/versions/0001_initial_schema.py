"""Initial schema: inventory, identity history, latest state, hourly rollups, events.

Revision ID: 0001
Revises:
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0001"
down_revision = None
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        "events",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("kind", sa.String(), nullable=False),
        sa.Column("level", sa.String(), nullable=False),
        sa.Column("miner_id", sa.String(), nullable=True),
        sa.Column("message", sa.String(), nullable=False),
        sa.PrimaryKeyConstraint("id"),
    )
    op.create_index("ix_events_at", "events", ["at"])
    op.create_index("ix_events_kind", "events", ["kind"])
    op.create_index("ix_events_miner_id", "events", ["miner_id"])
    op.create_table(
        "hourly_rollups",
        sa.Column("miner_id", sa.String(), nullable=False),
        sa.Column("hour_start", sa.DateTime(timezone=True), nullable=False),
        sa.Column("energy_kwh", sa.Float(), nullable=False),
        sa.Column("hashes_th", sa.Float(), nullable=False),
        sa.Column("uptime_s", sa.Float(), nullable=False),
        sa.Column("samples", sa.Integer(), nullable=False),
        sa.Column("revenue", sa.Float(), nullable=True),
        sa.Column("cost", sa.Float(), nullable=True),
        sa.Column("currency", sa.String(), nullable=False),
        sa.PrimaryKeyConstraint("miner_id", "hour_start"),
    )
    op.create_table(
        "identity_history",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("miner_id", sa.String(), nullable=False),
        sa.Column("seen_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("driver", sa.String(), nullable=False),
        sa.Column("vendor", sa.String(), nullable=False),
        sa.Column("model", sa.String(), nullable=False),
        sa.Column("firmware", sa.String(), nullable=False),
        sa.Column("api_version", sa.String(), nullable=False),
        sa.Column("serial", sa.String(), nullable=False),
        sa.Column("mac", sa.String(), nullable=False),
        sa.Column("hostname", sa.String(), nullable=False),
        sa.PrimaryKeyConstraint("id"),
    )
    op.create_index("ix_identity_history_miner_id", "identity_history", ["miner_id"])
    op.create_table(
        "latest_state",
        sa.Column("miner_id", sa.String(), nullable=False),
        sa.Column("health", sa.String(), nullable=False),
        sa.Column("polled_at", sa.DateTime(timezone=True), nullable=True),
        sa.Column("last_ok_at", sa.DateTime(timezone=True), nullable=True),
        sa.Column("failures", sa.Integer(), nullable=False),
        sa.Column("last_error", sa.String(), nullable=False),
        sa.Column("is_mining", sa.Boolean(), nullable=True),
        sa.Column("mode", sa.String(), nullable=False),
        sa.Column("hashrate_ths", sa.Float(), nullable=True),
        sa.Column("hashrate_avg_ths", sa.Float(), nullable=True),
        sa.Column("expected_hashrate_ths", sa.Float(), nullable=True),
        sa.Column("power_w", sa.Float(), nullable=True),
        sa.Column("power_limit_w", sa.Float(), nullable=True),
        sa.Column("temp_c", sa.Float(), nullable=True),
        sa.Column("env_temp_c", sa.Float(), nullable=True),
        sa.Column("fans_min_rpm", sa.Integer(), nullable=True),
        sa.Column("faults", sa.Integer(), nullable=False),
        sa.Column("uptime_s", sa.Integer(), nullable=True),
        sa.Column("pool_url", sa.String(), nullable=False),
        sa.PrimaryKeyConstraint("miner_id"),
    )
    op.create_table(
        "miners",
        sa.Column("id", sa.String(), nullable=False),
        sa.Column("host", sa.String(), nullable=False),
        sa.Column("api_port", sa.Integer(), nullable=False),
        sa.Column("site", sa.String(), nullable=False),
        sa.Column("rack", sa.String(), nullable=False),
        sa.Column("position", sa.String(), nullable=False),
        sa.Column("source", sa.String(), nullable=False),
        sa.Column("nominal_power_w", sa.Float(), nullable=True),
        sa.Column("driver", sa.String(), nullable=False),
        sa.Column("vendor", sa.String(), nullable=False),
        sa.Column("model", sa.String(), nullable=False),
        sa.Column("firmware", sa.String(), nullable=False),
        sa.Column("serial", sa.String(), nullable=False),
        sa.Column("mac", sa.String(), nullable=False),
        sa.Column("hostname", sa.String(), nullable=False),
        sa.Column("first_seen", sa.DateTime(timezone=True), nullable=False),
        sa.Column("updated_at", sa.DateTime(timezone=True), nullable=False),
        sa.PrimaryKeyConstraint("id"),
    )
    op.create_index("ix_miners_model", "miners", ["model"])
    op.create_index("ix_miners_site", "miners", ["site"])


def downgrade() -> None:
    op.drop_index("ix_miners_site", table_name="miners")
    op.drop_index("ix_miners_model", table_name="miners")
    op.drop_table("miners")
    op.drop_table("latest_state")
    op.drop_index("ix_identity_history_miner_id", table_name="identity_history")
    op.drop_table("identity_history")
    op.drop_table("hourly_rollups")
    op.drop_index("ix_events_miner_id", table_name="events")
    op.drop_index("ix_events_kind", table_name="events")
    op.drop_index("ix_events_at", table_name="events")
    op.drop_table("events")
