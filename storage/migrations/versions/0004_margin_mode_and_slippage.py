"""agents.isolated_margin; orders carry the agent's margin mode and max slippage

Revision ID: 0004
Revises: 0003
Create Date: 2026-11-24
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

import storage.types

revision = "0004"
down_revision = "0003"
branch_labels = None
depends_on = None


# plain ADD COLUMN (no batch): SQLite adds a column in place, while a batch would rebuild
# the table, which foreign keys from deployments and agent_sources forbid once there is data
def upgrade() -> None:
    op.add_column(
        "agents",
        sa.Column("isolated_margin", sa.Boolean(), nullable=False, server_default=sa.false()),
    )
    op.add_column(
        "orders",
        sa.Column("isolated_margin", sa.Boolean(), nullable=False, server_default=sa.false()),
    )
    op.add_column(
        "orders",
        sa.Column("max_slippage_bps", storage.types.Money(precision=38, scale=18), nullable=True),
    )


def downgrade() -> None:
    with op.batch_alter_table("orders", schema=None) as batch_op:
        batch_op.drop_column("max_slippage_bps")
        batch_op.drop_column("isolated_margin")
    with op.batch_alter_table("agents", schema=None) as batch_op:
        batch_op.drop_column("isolated_margin")
