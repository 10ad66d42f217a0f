"""indexes for the per-user and per-signal reads: a user's open positions (/positions, /pnl)
and a position by its (signal, deployment) key are found without scanning every open one

Revision ID: 0010_perf_indexes
Revises: 0009
Create Date: 2026-11-29
"""

from __future__ import annotations

from alembic import op

revision = "0010_perf_indexes"
down_revision = "0009"
branch_labels = None
depends_on = None


def upgrade() -> None:
    # /positions and /pnl join a user's deployments to their positions: with this index the
    # planner reads only that user's rows, on SQLite too (its single-column status index
    # made it walk every open position of every user)
    op.create_index(
        "ix_positions_deployment_status", "positions", ["deployment_id", "status"], unique=False
    )


def downgrade() -> None:
    op.drop_index("ix_positions_deployment_status", table_name="positions")
