"""index of unfinished signals: the sweep that resumes a fan-out stopped half way (a part
that failed, a replica that died) looks for them every few minutes

Revision ID: 0022
Revises: 0021
Create Date: 2026-11-29
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0022"
down_revision = "0021"
branch_labels = None
depends_on = None


def upgrade() -> None:
    # partial: nearly every signal is executed or rejected within a second of its post, and
    # the sweep must not read them all each time
    op.create_index(
        "ix_signals_unfinished",
        "signals",
        ["status", "created_at"],
        unique=False,
        sqlite_where=sa.text("status IN ('new', 'routed')"),
        postgresql_where=sa.text("status IN ('new', 'routed')"),
    )


def downgrade() -> None:
    op.drop_index("ix_signals_unfinished", table_name="signals")
