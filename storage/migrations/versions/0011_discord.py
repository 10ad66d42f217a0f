"""discord: one-time codes that join a Telegram and a Discord account into one user

Revision ID: 0011
Revises: 0010
Create Date: 2026-11-29
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

import storage.types

revision = "0011"
down_revision = "0010"
branch_labels = None
depends_on = None

ID = sa.BigInteger().with_variant(sa.Integer(), "sqlite")


def upgrade() -> None:
    op.create_table(
        "account_link_codes",
        sa.Column("id", ID, nullable=False),
        sa.Column("code_hash", sa.String(length=64), nullable=False),
        sa.Column("user_id", ID, nullable=False),
        sa.Column("platform", sa.String(length=16), nullable=False),
        sa.Column("expires_at", storage.types.UTCDateTime(timezone=True), nullable=False),
        sa.Column("used_at", storage.types.UTCDateTime(timezone=True), nullable=True),
        sa.Column("created_at", storage.types.UTCDateTime(timezone=True), nullable=False),
        sa.ForeignKeyConstraint(
            ["user_id"], ["users.id"], name=op.f("fk_account_link_codes_user_id_users")
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_account_link_codes")),
        sa.UniqueConstraint("code_hash", name=op.f("uq_account_link_codes_code_hash")),
    )
    with op.batch_alter_table("account_link_codes", schema=None) as batch_op:
        batch_op.create_index(batch_op.f("ix_account_link_codes_user_id"), ["user_id"])


def downgrade() -> None:
    with op.batch_alter_table("account_link_codes", schema=None) as batch_op:
        batch_op.drop_index(batch_op.f("ix_account_link_codes_user_id"))
    op.drop_table("account_link_codes")
