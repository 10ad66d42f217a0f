"""protective_orders: stop-loss and take-profit triggers resting on a live venue

Revision ID: 0007
Revises: 0004
Create Date: 2026-11-25
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

import storage.types

revision = "0007"
down_revision = "0006"
branch_labels = None
depends_on = None

ID = sa.BigInteger().with_variant(sa.Integer(), "sqlite")


def _money(name: str, nullable: bool = True) -> sa.Column:
    return sa.Column(name, storage.types.Money(precision=38, scale=18), nullable=nullable)


def _when(name: str, nullable: bool = True) -> sa.Column:
    return sa.Column(name, storage.types.UTCDateTime(timezone=True), nullable=nullable)


def upgrade() -> None:
    op.create_table(
        "protective_orders",
        sa.Column("id", ID, nullable=False),
        sa.Column("position_id", ID, nullable=False),
        sa.Column("kind", sa.String(length=2), nullable=False),
        sa.Column("version", sa.Integer(), nullable=False),
        sa.Column("cloid", sa.String(length=34), nullable=False),
        sa.Column("venue_order_id", sa.String(length=64), nullable=True),
        _money("trigger_price", nullable=False),
        _money("target_price"),
        sa.Column("status", sa.String(length=12), nullable=False),
        sa.Column("error", sa.String(length=500), nullable=True),
        _when("moved_at"),
        _when("updated_at"),
        _money("fill_price"),
        _money("fill_size"),
        _money("fill_fee"),
        sa.Column("fill_venue_order_id", sa.String(length=64), nullable=True),
        _when("filled_at"),
        _when("created_at", nullable=False),
        sa.ForeignKeyConstraint(
            ["position_id"],
            ["positions.id"],
            name=op.f("fk_protective_orders_position_id_positions"),
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_protective_orders")),
        sa.UniqueConstraint("cloid", name=op.f("uq_protective_orders_cloid")),
        sa.UniqueConstraint(
            "position_id", "kind", name=op.f("uq_protective_orders_position_id_kind")
        ),
    )
    op.create_index(
        op.f("ix_protective_orders_status"), "protective_orders", ["status"], unique=False
    )


def downgrade() -> None:
    op.drop_index(op.f("ix_protective_orders_status"), table_name="protective_orders")
    op.drop_table("protective_orders")
