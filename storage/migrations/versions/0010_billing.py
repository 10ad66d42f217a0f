"""billing: agent prices (Stripe), subscription payments, subscriptions tied to an agent and
ordered by Stripe's event time; notification channels (email, webhooks) and their deliveries

Revision ID: 0010
Revises: 0009
Create Date: 2026-11-29
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

import storage.types

revision = "0010"
down_revision = "0009"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        "notification_channels",
        sa.Column("id", sa.BigInteger().with_variant(sa.Integer(), "sqlite"), nullable=False),
        sa.Column("user_id", sa.BigInteger().with_variant(sa.Integer(), "sqlite"), nullable=False),
        sa.Column("kind", sa.String(length=8), nullable=False),
        sa.Column("address", sa.String(length=320), nullable=False),
        sa.Column("secret", sa.String(length=128), nullable=True),
        sa.Column("confirm_token", sa.String(length=64), nullable=True),
        sa.Column("confirmed_at", storage.types.UTCDateTime(timezone=True), nullable=True),
        sa.Column("disabled_at", storage.types.UTCDateTime(timezone=True), nullable=True),
        sa.Column("failures", sa.Integer(), nullable=False),
        sa.Column("kinds", sa.JSON(), nullable=False),
        sa.Column("created_at", storage.types.UTCDateTime(timezone=True), nullable=False),
        sa.ForeignKeyConstraint(
            ["user_id"], ["users.id"], name=op.f("fk_notification_channels_user_id_users")
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_notification_channels")),
        sa.UniqueConstraint("confirm_token", name=op.f("uq_notification_channels_confirm_token")),
        sa.UniqueConstraint(
            "user_id", "kind", "address", name=op.f("uq_notification_channels_user_id_kind_address")
        ),
    )
    with op.batch_alter_table("notification_channels", schema=None) as batch_op:
        batch_op.create_index(
            batch_op.f("ix_notification_channels_user_id"), ["user_id"], unique=False
        )

    op.create_table(
        "channel_deliveries",
        sa.Column("id", sa.BigInteger().with_variant(sa.Integer(), "sqlite"), nullable=False),
        sa.Column(
            "channel_id", sa.BigInteger().with_variant(sa.Integer(), "sqlite"), nullable=False
        ),
        sa.Column("dedupe_key", sa.String(length=160), nullable=False),
        sa.Column("kind", sa.String(length=32), nullable=False),
        sa.Column("payload", sa.JSON(), nullable=False),
        sa.Column("language", sa.String(length=8), nullable=False),
        sa.Column("status", sa.String(length=8), nullable=False),
        sa.Column("attempts", sa.Integer(), nullable=False),
        sa.Column("next_attempt_at", storage.types.UTCDateTime(timezone=True), nullable=True),
        sa.Column("sent_at", storage.types.UTCDateTime(timezone=True), nullable=True),
        sa.Column("error", sa.Text(), nullable=True),
        sa.Column("created_at", storage.types.UTCDateTime(timezone=True), nullable=False),
        sa.ForeignKeyConstraint(
            ["channel_id"],
            ["notification_channels.id"],
            name=op.f("fk_channel_deliveries_channel_id_notification_channels"),
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_channel_deliveries")),
        sa.UniqueConstraint(
            "channel_id", "dedupe_key", name=op.f("uq_channel_deliveries_channel_id_dedupe_key")
        ),
    )
    with op.batch_alter_table("channel_deliveries", schema=None) as batch_op:
        batch_op.create_index(
            batch_op.f("ix_channel_deliveries_channel_id"), ["channel_id"], unique=False
        )
        batch_op.create_index(batch_op.f("ix_channel_deliveries_status"), ["status"], unique=False)

    op.create_table(
        "agent_prices",
        sa.Column(
            "agent_id",
            sa.BigInteger().with_variant(sa.Integer(), "sqlite"),
            autoincrement=False,
            nullable=False,
        ),
        sa.Column("monthly_usd", storage.types.Money(precision=38, scale=18), nullable=False),
        sa.Column("stripe_product_id", sa.String(length=64), nullable=True),
        sa.Column("stripe_price_id", sa.String(length=64), nullable=True),
        sa.Column("stripe_price_usd", storage.types.Money(precision=38, scale=18), nullable=True),
        sa.Column("created_at", storage.types.UTCDateTime(timezone=True), nullable=False),
        sa.ForeignKeyConstraint(
            ["agent_id"], ["agents.id"], name=op.f("fk_agent_prices_agent_id_agents")
        ),
        sa.PrimaryKeyConstraint("agent_id", name=op.f("pk_agent_prices")),
    )
    op.create_table(
        "subscription_payments",
        sa.Column("id", sa.BigInteger().with_variant(sa.Integer(), "sqlite"), nullable=False),
        sa.Column("invoice_id", sa.String(length=64), nullable=False),
        sa.Column(
            "subscription_id", sa.BigInteger().with_variant(sa.Integer(), "sqlite"), nullable=False
        ),
        sa.Column("user_id", sa.BigInteger().with_variant(sa.Integer(), "sqlite"), nullable=False),
        sa.Column("agent_id", sa.BigInteger().with_variant(sa.Integer(), "sqlite"), nullable=False),
        sa.Column("amount_usd", storage.types.Money(precision=38, scale=18), nullable=False),
        sa.Column("paid_at", storage.types.UTCDateTime(timezone=True), nullable=False),
        sa.Column("created_at", storage.types.UTCDateTime(timezone=True), nullable=False),
        sa.ForeignKeyConstraint(
            ["agent_id"], ["agents.id"], name=op.f("fk_subscription_payments_agent_id_agents")
        ),
        sa.ForeignKeyConstraint(
            ["subscription_id"],
            ["subscriptions.id"],
            name=op.f("fk_subscription_payments_subscription_id_subscriptions"),
        ),
        sa.ForeignKeyConstraint(
            ["user_id"], ["users.id"], name=op.f("fk_subscription_payments_user_id_users")
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_subscription_payments")),
        sa.UniqueConstraint("invoice_id", name=op.f("uq_subscription_payments_invoice_id")),
    )
    with op.batch_alter_table("subscription_payments", schema=None) as batch_op:
        batch_op.create_index(
            batch_op.f("ix_subscription_payments_agent_id"), ["agent_id"], unique=False
        )
        batch_op.create_index(
            batch_op.f("ix_subscription_payments_subscription_id"),
            ["subscription_id"],
            unique=False,
        )
        batch_op.create_index(
            batch_op.f("ix_subscription_payments_user_id"), ["user_id"], unique=False
        )

    with op.batch_alter_table("subscriptions", schema=None) as batch_op:
        batch_op.add_column(
            sa.Column(
                "agent_id", sa.BigInteger().with_variant(sa.Integer(), "sqlite"), nullable=True
            )
        )
        batch_op.add_column(sa.Column("checkout_session_id", sa.String(length=80), nullable=True))
        batch_op.add_column(
            sa.Column("state_at", sa.BigInteger(), server_default="0", nullable=False)
        )
        batch_op.create_index(batch_op.f("ix_subscriptions_agent_id"), ["agent_id"], unique=False)
        batch_op.create_unique_constraint(
            batch_op.f("uq_subscriptions_checkout_session_id"), ["checkout_session_id"]
        )
        batch_op.create_foreign_key(
            batch_op.f("fk_subscriptions_agent_id_agents"), "agents", ["agent_id"], ["id"]
        )


def downgrade() -> None:
    with op.batch_alter_table("subscriptions", schema=None) as batch_op:
        batch_op.drop_constraint(batch_op.f("fk_subscriptions_agent_id_agents"), type_="foreignkey")
        batch_op.drop_constraint(batch_op.f("uq_subscriptions_checkout_session_id"), type_="unique")
        batch_op.drop_index(batch_op.f("ix_subscriptions_agent_id"))
        batch_op.drop_column("state_at")
        batch_op.drop_column("checkout_session_id")
        batch_op.drop_column("agent_id")

    with op.batch_alter_table("subscription_payments", schema=None) as batch_op:
        batch_op.drop_index(batch_op.f("ix_subscription_payments_user_id"))
        batch_op.drop_index(batch_op.f("ix_subscription_payments_subscription_id"))
        batch_op.drop_index(batch_op.f("ix_subscription_payments_agent_id"))

    op.drop_table("subscription_payments")
    op.drop_table("agent_prices")
    with op.batch_alter_table("channel_deliveries", schema=None) as batch_op:
        batch_op.drop_index(batch_op.f("ix_channel_deliveries_status"))
        batch_op.drop_index(batch_op.f("ix_channel_deliveries_channel_id"))

    op.drop_table("channel_deliveries")
    with op.batch_alter_table("notification_channels", schema=None) as batch_op:
        batch_op.drop_index(batch_op.f("ix_notification_channels_user_id"))

    op.drop_table("notification_channels")
