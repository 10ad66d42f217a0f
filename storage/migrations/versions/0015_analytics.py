"""analytics: agent_daily_metrics split live/paper (it was never written: recreated), daily rows
per deployment, the roll-up's progress, and an index to find recent closes

Revision ID: 0015
Revises: 0014
Create Date: 2026-11-29
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

import storage.types

revision = "0015"
down_revision = "0014"
branch_labels = None
depends_on = None

ID = sa.BigInteger().with_variant(sa.Integer(), "sqlite")


def _money(name: str) -> sa.Column:
    return sa.Column(name, storage.types.Money(precision=38, scale=18), nullable=False)


def _counts() -> list[sa.Column]:
    return [
        sa.Column("trades", sa.Integer(), nullable=False),
        sa.Column("wins", sa.Integer(), nullable=False),
        sa.Column("losses", sa.Integer(), nullable=False),
        _money("realized_pnl"),
        _money("win_pnl"),
        _money("loss_pnl"),
        _money("margin"),
        _money("fees"),
    ]


def upgrade() -> None:
    # nothing ever wrote agent_daily_metrics: recreating it loses no data
    op.drop_table("agent_daily_metrics")
    op.create_table(
        "agent_daily_metrics",
        sa.Column("agent_id", ID, nullable=False),
        sa.Column("mode", sa.String(length=8), nullable=False),
        sa.Column("day", sa.Date(), nullable=False),
        *_counts(),
        _money("return_pct"),
        sa.Column("manual_closes", sa.Integer(), nullable=False),
        sa.Column("extra", sa.JSON(), nullable=False),
        sa.ForeignKeyConstraint(
            ["agent_id"], ["agents.id"], name=op.f("fk_agent_daily_metrics_agent_id_agents")
        ),
        sa.PrimaryKeyConstraint("agent_id", "mode", "day", name=op.f("pk_agent_daily_metrics")),
    )
    op.create_table(
        "deployment_daily_metrics",
        sa.Column("deployment_id", ID, nullable=False),
        sa.Column("day", sa.Date(), nullable=False),
        sa.Column("user_id", ID, nullable=False),
        sa.Column("agent_id", ID, nullable=False),
        sa.Column("mode", sa.String(length=8), nullable=False),
        *_counts(),
        sa.ForeignKeyConstraint(
            ["deployment_id"],
            ["deployments.id"],
            name=op.f("fk_deployment_daily_metrics_deployment_id_deployments"),
        ),
        sa.ForeignKeyConstraint(
            ["user_id"], ["users.id"], name=op.f("fk_deployment_daily_metrics_user_id_users")
        ),
        sa.ForeignKeyConstraint(
            ["agent_id"], ["agents.id"], name=op.f("fk_deployment_daily_metrics_agent_id_agents")
        ),
        sa.PrimaryKeyConstraint("deployment_id", "day", name=op.f("pk_deployment_daily_metrics")),
    )
    op.create_index(
        "ix_deployment_daily_metrics_user_day",
        "deployment_daily_metrics",
        ["user_id", "day"],
        unique=False,
    )
    op.create_table(
        "analytics_progress",
        sa.Column("name", sa.String(length=32), nullable=False),
        sa.Column("closed_through", storage.types.UTCDateTime(), nullable=True),
        sa.Column("window_start", storage.types.UTCDateTime(), nullable=True),
        sa.Column("fingerprint", sa.String(length=100), nullable=True),
        sa.PrimaryKeyConstraint("name", name=op.f("pk_analytics_progress")),
    )
    with op.batch_alter_table("positions", schema=None) as batch_op:
        batch_op.create_index(batch_op.f("ix_positions_closed_at"), ["closed_at"], unique=False)


def downgrade() -> None:
    with op.batch_alter_table("positions", schema=None) as batch_op:
        batch_op.drop_index(batch_op.f("ix_positions_closed_at"))
    op.drop_table("analytics_progress")
    op.drop_index("ix_deployment_daily_metrics_user_day", table_name="deployment_daily_metrics")
    op.drop_table("deployment_daily_metrics")
    op.drop_table("agent_daily_metrics")
    op.create_table(
        "agent_daily_metrics",
        sa.Column("agent_id", ID, nullable=False),
        sa.Column("day", sa.Date(), nullable=False),
        sa.Column("trades", sa.Integer(), nullable=False),
        sa.Column("wins", sa.Integer(), nullable=False),
        _money("realized_pnl"),
        _money("return_pct"),
        sa.Column("extra", sa.JSON(), nullable=False),
        sa.ForeignKeyConstraint(
            ["agent_id"], ["agents.id"], name=op.f("fk_agent_daily_metrics_agent_id_agents")
        ),
        sa.PrimaryKeyConstraint("agent_id", "day", name=op.f("pk_agent_daily_metrics")),
    )
