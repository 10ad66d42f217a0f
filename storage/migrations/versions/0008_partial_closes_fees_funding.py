"""partial closes, settled fees, funding: close attempts numbered, fees settled once, funding
accrued to positions once per payment

Revision ID: 0008
Revises: 0007
Create Date: 2026-11-26
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

import storage.types

revision = "0008"
down_revision = "0007"
branch_labels = None
depends_on = None

ID = sa.BigInteger().with_variant(sa.Integer(), "sqlite")


def _money(name: str, nullable: bool = True, **kw: object) -> sa.Column:
    return sa.Column(name, storage.types.Money(precision=38, scale=18), nullable=nullable, **kw)


def upgrade() -> None:
    # batch: SQLite rebuilds the table to change a unique key; PostgreSQL alters in place.
    # Existing orders get close_seq 0, so their keys and client order ids stay as they were.
    with op.batch_alter_table("orders", schema=None) as batch_op:
        batch_op.add_column(
            sa.Column("close_seq", sa.Integer(), server_default="0", nullable=False)
        )
        batch_op.add_column(
            sa.Column("fee_settled_at", storage.types.UTCDateTime(timezone=True), nullable=True)
        )
        batch_op.drop_constraint("uq_orders_signal_id_deployment_id_purpose", type_="unique")
        batch_op.create_unique_constraint(
            batch_op.f("uq_orders_signal_id_deployment_id_purpose_close_seq"),
            ["signal_id", "deployment_id", "purpose", "close_seq"],
        )
    with op.batch_alter_table("positions", schema=None) as batch_op:
        batch_op.add_column(_money("closed_size", nullable=False, server_default="0"))
        batch_op.add_column(_money("closed_gross_pnl", nullable=False, server_default="0"))
        batch_op.add_column(_money("funding_usd", nullable=False, server_default="0"))
    op.create_table(
        "funding_payments",
        sa.Column("id", ID, nullable=False),
        sa.Column("venue", sa.String(length=16), nullable=False),
        sa.Column("account", sa.String(length=64), nullable=False),
        sa.Column("coin", sa.String(length=32), nullable=False),
        sa.Column("paid_at_ms", sa.BigInteger(), nullable=False),
        sa.Column("payment_hash", sa.String(length=80), nullable=False),
        _money("usdc", nullable=False),
        sa.Column("positions", sa.Integer(), nullable=False),
        sa.Column("created_at", storage.types.UTCDateTime(timezone=True), nullable=False),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_funding_payments")),
        sa.UniqueConstraint(
            "account",
            "coin",
            "paid_at_ms",
            "payment_hash",
            name=op.f("uq_funding_payments_account_coin_paid_at_ms_payment_hash"),
        ),
    )
    op.create_index(
        op.f("ix_funding_payments_account"), "funding_payments", ["account"], unique=False
    )


def downgrade() -> None:
    op.drop_index(op.f("ix_funding_payments_account"), table_name="funding_payments")
    op.drop_table("funding_payments")
    with op.batch_alter_table("positions", schema=None) as batch_op:
        batch_op.drop_column("funding_usd")
        batch_op.drop_column("closed_gross_pnl")
        batch_op.drop_column("closed_size")
    with op.batch_alter_table("orders", schema=None) as batch_op:
        batch_op.drop_constraint(
            "uq_orders_signal_id_deployment_id_purpose_close_seq", type_="unique"
        )
        batch_op.create_unique_constraint(
            batch_op.f("uq_orders_signal_id_deployment_id_purpose"),
            ["signal_id", "deployment_id", "purpose"],
        )
        batch_op.drop_column("fee_settled_at")
        batch_op.drop_column("close_seq")
