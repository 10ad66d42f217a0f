"""index of open positions by account and market: what a follower's account holds in the
signal's market (the position policy, for every part of a fan-out)

Revision ID: 0021
Revises: 0020
Create Date: 2026-11-29
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0021"
down_revision = "0020"
branch_labels = None
depends_on = None


def upgrade() -> None:
    # a fan-out written in parts asks, per part, what its followers' accounts hold in the
    # market: without this index each part walked every open position (a fan-out's cost per
    # follower grew with the parts written before it); partial: closed positions never
    # matter to that question
    op.create_index(
        "ix_positions_open_account_market",
        "positions",
        ["account", "market"],
        unique=False,
        sqlite_where=sa.text("status = 'open'"),
        postgresql_where=sa.text("status = 'open'"),
    )


def downgrade() -> None:
    op.drop_index("ix_positions_open_account_market", table_name="positions")
