"""ostium: ostium_requests, the two-step orders asked of Ostium (engine/venues/ostium.py)

Revision ID: 0012
Revises: 0011
Create Date: 2026-11-29
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

import storage.types

revision = "0012"
down_revision = "0011"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        "ostium_requests",
        sa.Column("client_order_id", sa.String(length=34), nullable=False),
        sa.Column("action", sa.String(length=8), nullable=False),
        sa.Column("trader", sa.String(length=64), nullable=False),
        sa.Column("signer", sa.String(length=64), nullable=False),
        sa.Column("nonce", sa.BigInteger(), nullable=False),
        sa.Column("from_block", sa.BigInteger(), nullable=False),
        sa.Column("pair_index", sa.Integer(), nullable=False),
        sa.Column("trade_index", sa.Integer(), nullable=False),
        sa.Column("size", storage.types.Money(precision=38, scale=18), nullable=True),
        sa.Column("tx_hash", sa.String(length=66), nullable=True),
        sa.Column("order_id", sa.String(length=78), nullable=True),
        sa.Column("created_at", storage.types.UTCDateTime(), nullable=False),
        sa.PrimaryKeyConstraint("client_order_id", name=op.f("pk_ostium_requests")),
    )


def downgrade() -> None:
    op.drop_table("ostium_requests")
