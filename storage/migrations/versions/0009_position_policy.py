"""position policy: agents.position_policy and add_cap_multiple; orders that add to a held
position or wait for its close (one net position per account and market)

Revision ID: 0009
Revises: 0008
Create Date: 2026-11-27
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

import storage.types

revision = "0009"
down_revision = "0008"
branch_labels = None
depends_on = None

ID = sa.BigInteger().with_variant(sa.Integer(), "sqlite")


def upgrade() -> None:
    # existing agents get "ignore": a signal in a market already held is skipped, the safe
    # choice (it never changes a position the user already has)
    with op.batch_alter_table("agents", schema=None) as batch_op:
        batch_op.add_column(
            sa.Column(
                "position_policy", sa.String(length=8), server_default="ignore", nullable=False
            )
        )
        batch_op.add_column(
            sa.Column(
                "add_cap_multiple",
                storage.types.Money(precision=38, scale=18),
                server_default="3",
                nullable=False,
            )
        )
    with op.batch_alter_table("orders", schema=None) as batch_op:
        batch_op.add_column(sa.Column("adds_to_position_id", ID, nullable=True))
        batch_op.add_column(sa.Column("after_position_id", ID, nullable=True))


def downgrade() -> None:
    with op.batch_alter_table("orders", schema=None) as batch_op:
        batch_op.drop_column("after_position_id")
        batch_op.drop_column("adds_to_position_id")
    with op.batch_alter_table("agents", schema=None) as batch_op:
        batch_op.drop_column("add_cap_multiple")
        batch_op.drop_column("position_policy")
