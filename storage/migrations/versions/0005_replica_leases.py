"""replicas: order claims (claimed_by, lease_until, send_attempts, settled_by), lease rows,
the shared chat send budget, and the installation table with its client-order-id namespace

Revision ID: 0005
Revises: 0004
Create Date: 2026-11-29
"""

from __future__ import annotations

import secrets

import sqlalchemy as sa
from alembic import op

import storage.types

revision = "0005"
down_revision = "0004"
branch_labels = None
depends_on = None


def upgrade() -> None:
    # plain ADD COLUMN, as in 0004: SQLite adds them in place
    op.add_column("orders", sa.Column("claimed_by", sa.String(length=64), nullable=True))
    op.add_column(
        "orders", sa.Column("lease_until", storage.types.UTCDateTime(timezone=True), nullable=True)
    )
    op.add_column(
        "orders",
        sa.Column("send_attempts", sa.Integer(), nullable=False, server_default="0"),
    )
    op.add_column("orders", sa.Column("settled_by", sa.String(length=32), nullable=True))
    op.create_index(op.f("ix_orders_status"), "orders", ["status"])
    op.create_table(
        "leases",
        sa.Column("name", sa.String(length=128), nullable=False),
        sa.Column("holder", sa.String(length=64), nullable=False),
        sa.Column("expires_at", storage.types.UTCDateTime(timezone=True), nullable=False),
        sa.Column("acquired_at", storage.types.UTCDateTime(timezone=True), nullable=False),
        sa.PrimaryKeyConstraint("name", name=op.f("pk_leases")),
    )
    op.create_index(op.f("ix_leases_expires_at"), "leases", ["expires_at"])
    op.create_table(
        "send_budget",
        sa.Column("key", sa.String(length=96), nullable=False),
        sa.Column("taken", sa.Integer(), nullable=False),
        sa.Column("expires_at", storage.types.UTCDateTime(timezone=True), nullable=False),
        sa.PrimaryKeyConstraint("key", name=op.f("pk_send_budget")),
    )
    op.create_index(op.f("ix_send_budget_expires_at"), "send_budget", ["expires_at"])
    installation = op.create_table(
        "installation",
        sa.Column("key", sa.String(length=64), nullable=False),
        sa.Column("value", sa.String(length=256), nullable=False),
        sa.PrimaryKeyConstraint("key", name=op.f("pk_installation")),
    )
    # random, once per database: two databases trading one venue account (a reset, a
    # staging copy) never make the same client order id
    op.bulk_insert(installation, [{"key": "cloid_namespace", "value": secrets.token_hex(16)}])


def downgrade() -> None:
    op.drop_table("installation")
    op.drop_index(op.f("ix_send_budget_expires_at"), table_name="send_budget")
    op.drop_table("send_budget")
    op.drop_index(op.f("ix_leases_expires_at"), table_name="leases")
    op.drop_table("leases")
    op.drop_index(op.f("ix_orders_status"), table_name="orders")
    op.drop_column("orders", "settled_by")
    op.drop_column("orders", "send_attempts")
    op.drop_column("orders", "lease_until")
    op.drop_column("orders", "claimed_by")
