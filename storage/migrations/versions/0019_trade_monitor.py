"""trade_monitors: the pinned /monitor message of each user per chat app, its editor's lease

Revision ID: 0016
Revises: 0015
Create Date: 2026-11-29
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

import storage.types

revision = "0019"
down_revision = "0018"
branch_labels = None
depends_on = None

ID = sa.BigInteger().with_variant(sa.Integer(), "sqlite")


def _when(name: str, nullable: bool = True) -> sa.Column:
    return sa.Column(name, storage.types.UTCDateTime(timezone=True), nullable=nullable)


def upgrade() -> None:
    op.create_table(
        "trade_monitors",
        sa.Column("id", ID, nullable=False),
        sa.Column("user_id", ID, nullable=False),
        sa.Column("platform", sa.String(length=16), nullable=False),
        sa.Column("chat_id", sa.String(length=64), nullable=False),
        sa.Column("message_id", sa.String(length=64), nullable=True),
        sa.Column("text", sa.Text(), nullable=False),
        _when("edited_at"),
        sa.Column("stopping", sa.Boolean(), nullable=False),
        sa.Column("editor", sa.String(length=64), nullable=True),
        _when("lease_until"),
        _when("created_at", nullable=False),
        sa.ForeignKeyConstraint(
            ["user_id"], ["users.id"], name=op.f("fk_trade_monitors_user_id_users")
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_trade_monitors")),
        sa.UniqueConstraint("user_id", "platform", name=op.f("uq_trade_monitors_user_id_platform")),
    )
    op.create_index(
        op.f("ix_trade_monitors_lease_until"), "trade_monitors", ["lease_until"], unique=False
    )


def downgrade() -> None:
    op.drop_index(op.f("ix_trade_monitors_lease_until"), table_name="trade_monitors")
    op.drop_table("trade_monitors")
