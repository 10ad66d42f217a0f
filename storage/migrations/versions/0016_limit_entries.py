"""limit entries: an open order's limit price and, for one resting at the venue (a call's
stated entry not reached yet), when it is cancelled; the agent's time-to-live for them

Revision ID: 0016
Revises: 0015
Create Date: 2026-11-29
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

import storage.types

revision = "0016"
down_revision = "0015"
branch_labels = None
depends_on = None


def upgrade() -> None:
    with op.batch_alter_table("orders") as batch:
        batch.add_column(
            sa.Column("limit_price", storage.types.Money(precision=38, scale=18), nullable=True)
        )
        batch.add_column(sa.Column("limit_expires_at", storage.types.UTCDateTime(), nullable=True))
    with op.batch_alter_table("agents") as batch:
        batch.add_column(
            sa.Column("limit_ttl_hours", sa.Integer(), nullable=False, server_default="24")
        )


def downgrade() -> None:
    with op.batch_alter_table("agents") as batch:
        batch.drop_column("limit_ttl_hours")
    with op.batch_alter_table("orders") as batch:
        batch.drop_column("limit_expires_at")
        batch.drop_column("limit_price")
