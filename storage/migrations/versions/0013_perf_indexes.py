"""indexes for reads that scanned every row: a user's open positions (/positions, /pnl) and
the opens waiting for a closed position (each close batch)

Revision ID: 0013
Revises: 0012
Create Date: 2026-11-29
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0013"
down_revision = "0012"
branch_labels = None
depends_on = None


def upgrade() -> None:
    # /positions and /pnl join a user's deployments to their positions: with this index the
    # planner reads only that user's rows, on SQLite too (its single-column status index
    # made it walk every open position of every user)
    op.create_index(
        "ix_positions_deployment_status", "positions", ["deployment_id", "status"], unique=False
    )

    # every close batch asks which opens waited for the positions it closed (a flip): without
    # this index that walked every order ever written
    # (partial: only a flip's open carries it; an index of NULLs looked useless to SQLite)
    op.create_index(
        "ix_orders_after_position_id",
        "orders",
        ["after_position_id"],
        unique=False,
        sqlite_where=sa.text("after_position_id IS NOT NULL"),
        postgresql_where=sa.text("after_position_id IS NOT NULL"),
    )


def downgrade() -> None:
    op.drop_index("ix_orders_after_position_id", table_name="orders")
    op.drop_index("ix_positions_deployment_status", table_name="positions")
