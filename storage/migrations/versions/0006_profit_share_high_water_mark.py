"""profit share's high-water mark: deployments.live_realized_pnl / live_high_water_mark, and
profit_share_closes (one row per live close counted into them)

Existing live deployments start from their history: the running sum of their closed live
positions' realized PnL (by close time, then id) and the highest value it reached (at least
zero), so a follower who is down does not pay a share on winning it back. Those past closes
get no profit_share_closes rows: their shares were settled under the old rules.

Revision ID: 0006
Revises: 0004
Create Date: 2026-11-25
"""

from __future__ import annotations

from decimal import Decimal

import sqlalchemy as sa
from alembic import op

import storage.types

revision = "0006"
down_revision = "0005"
branch_labels = None
depends_on = None

_ID = sa.BigInteger().with_variant(sa.Integer(), "sqlite")
_MONEY = storage.types.Money(precision=38, scale=18)


# plain ADD COLUMN (no batch), as in 0004: SQLite adds a column in place, while a batch would
# rebuild the table, which foreign keys from orders and positions forbid once there is data
def upgrade() -> None:
    op.add_column(
        "deployments", sa.Column("live_realized_pnl", _MONEY, nullable=False, server_default="0")
    )
    op.add_column(
        "deployments",
        sa.Column("live_high_water_mark", _MONEY, nullable=False, server_default="0"),
    )
    op.create_table(
        "profit_share_closes",
        sa.Column("position_id", _ID, autoincrement=False, nullable=False),
        sa.Column("deployment_id", _ID, nullable=False),
        sa.Column("realized_pnl", _MONEY, nullable=False),
        sa.Column("cumulative_pnl", _MONEY, nullable=False),
        sa.Column("high_water_mark", _MONEY, nullable=False),
        sa.Column("chargeable_pnl", _MONEY, nullable=False),
        sa.Column("created_at", storage.types.UTCDateTime(timezone=True), nullable=False),
        sa.ForeignKeyConstraint(
            ["deployment_id"],
            ["deployments.id"],
            name=op.f("fk_profit_share_closes_deployment_id_deployments"),
        ),
        sa.ForeignKeyConstraint(
            ["position_id"],
            ["positions.id"],
            name=op.f("fk_profit_share_closes_position_id_positions"),
        ),
        sa.PrimaryKeyConstraint("position_id", name=op.f("pk_profit_share_closes")),
    )
    op.create_index(
        op.f("ix_profit_share_closes_deployment_id"),
        "profit_share_closes",
        ["deployment_id"],
        unique=False,
    )
    _backfill()


def _backfill() -> None:
    positions = sa.table(
        "positions",
        sa.column("id", _ID),
        sa.column("deployment_id", _ID),
        sa.column("account", sa.String()),
        sa.column("status", sa.String()),
        sa.column("realized_pnl", _MONEY),
        sa.column("closed_at", storage.types.UTCDateTime()),
    )
    deployments = sa.table(
        "deployments",
        sa.column("id", _ID),
        sa.column("live_realized_pnl", _MONEY),
        sa.column("live_high_water_mark", _MONEY),
    )
    bind = op.get_bind()
    rows = bind.execute(
        sa.select(positions.c.deployment_id, positions.c.realized_pnl)
        .where(
            positions.c.status == "closed",
            positions.c.realized_pnl.is_not(None),
            ~positions.c.account.startswith("paper:"),  # as engine/venues/routed.is_paper
        )
        .order_by(positions.c.deployment_id, positions.c.closed_at, positions.c.id)
    )
    totals: dict[int, tuple[Decimal, Decimal]] = {}
    for deployment_id, pnl in rows:
        total, mark = totals.get(deployment_id, (Decimal(0), Decimal(0)))
        total += pnl
        totals[deployment_id] = (total, max(mark, total))
    for deployment_id, (total, mark) in totals.items():
        bind.execute(
            sa.update(deployments)
            .where(deployments.c.id == deployment_id)
            .values(live_realized_pnl=total, live_high_water_mark=mark)
        )


def downgrade() -> None:
    op.drop_index(op.f("ix_profit_share_closes_deployment_id"), table_name="profit_share_closes")
    op.drop_table("profit_share_closes")
    with op.batch_alter_table("deployments", schema=None) as batch_op:
        batch_op.drop_column("live_high_water_mark")
        batch_op.drop_column("live_realized_pnl")
