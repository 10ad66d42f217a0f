"""audit: audit_log.transport and an index to read one user's entries; agent_key_rotations

Revision ID: 0014
Revises: 0013
Create Date: 2026-11-29
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

import storage.types

revision = "0014"
down_revision = "0013"
branch_labels = None
depends_on = None

ID = sa.BigInteger().with_variant(sa.Integer(), "sqlite")


def _when(name: str, nullable: bool = True) -> sa.Column:
    return sa.Column(name, storage.types.UTCDateTime(timezone=True), nullable=nullable)


def upgrade() -> None:
    with op.batch_alter_table("audit_log", schema=None) as batch_op:
        batch_op.add_column(
            sa.Column("transport", sa.String(length=16), server_default="", nullable=False)
        )
        batch_op.create_index("ix_audit_log_actor", ["actor_user_id", "id"], unique=False)
    op.create_table(
        "agent_key_rotations",
        sa.Column("id", ID, nullable=False),
        sa.Column("user_id", ID, nullable=False),
        sa.Column("venue", sa.String(length=16), nullable=False),
        sa.Column("old_address", sa.String(length=42), nullable=False),
        sa.Column("new_address", sa.String(length=42), nullable=False),
        sa.Column("ciphertext", sa.LargeBinary(), nullable=False),
        sa.Column("master_key_id", sa.String(length=32), nullable=False),
        _when("completed_at"),
        _when("cancelled_at"),
        _when("created_at", nullable=False),
        sa.ForeignKeyConstraint(
            ["user_id"], ["users.id"], name=op.f("fk_agent_key_rotations_user_id_users")
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_agent_key_rotations")),
    )
    op.create_index(
        op.f("ix_agent_key_rotations_user_id"), "agent_key_rotations", ["user_id"], unique=False
    )


def downgrade() -> None:
    op.drop_index(op.f("ix_agent_key_rotations_user_id"), table_name="agent_key_rotations")
    op.drop_table("agent_key_rotations")
    with op.batch_alter_table("audit_log", schema=None) as batch_op:
        batch_op.drop_index("ix_audit_log_actor")
        batch_op.drop_column("transport")
