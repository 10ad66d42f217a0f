"""Paid agents (a creator's monthly price, kept in Stripe as a Price), subscription payments
(a creator's earnings), and the notification channels a user adds besides chat (email,
outgoing webhooks) with each message's delivery to each channel."""

from __future__ import annotations

from datetime import datetime
from decimal import Decimal
from typing import Any

from sqlalchemy import JSON, ForeignKey, Integer, LargeBinary, String, Text, UniqueConstraint
from sqlalchemy.orm import Mapped, mapped_column

from storage.models.base import Base, CreatedAt
from storage.types import BigId, Money, UTCDateTime


class AgentPrice(CreatedAt, Base):
    """What following an agent costs a month; the Stripe Price made for that amount."""

    __tablename__ = "agent_prices"
    agent_id: Mapped[int] = mapped_column(
        ForeignKey("agents.id"), primary_key=True, autoincrement=False
    )
    monthly_usd: Mapped[Decimal] = mapped_column(Money)
    stripe_product_id: Mapped[str | None] = mapped_column(String(64))
    stripe_price_id: Mapped[str | None] = mapped_column(String(64))
    # the amount stripe_price_id charges (a changed price gets a new Stripe Price)
    stripe_price_usd: Mapped[Decimal | None] = mapped_column(Money)


class SubscriptionPayment(CreatedAt, Base):
    """A paid invoice of a subscription, once per invoice (Stripe sends events twice)."""

    __tablename__ = "subscription_payments"
    id: Mapped[int] = mapped_column(BigId, primary_key=True)
    invoice_id: Mapped[str] = mapped_column(String(64), unique=True)
    subscription_id: Mapped[int] = mapped_column(ForeignKey("subscriptions.id"), index=True)
    user_id: Mapped[int] = mapped_column(ForeignKey("users.id"), index=True)
    agent_id: Mapped[int] = mapped_column(ForeignKey("agents.id"), index=True)
    amount_usd: Mapped[Decimal] = mapped_column(Money)
    paid_at: Mapped[datetime] = mapped_column(UTCDateTime())


class NotificationChannel(CreatedAt, Base):
    """An email address (confirmed through a link) or an HTTPS webhook of one user."""

    __tablename__ = "notification_channels"
    __table_args__ = (UniqueConstraint("user_id", "kind", "address"),)
    id: Mapped[int] = mapped_column(BigId, primary_key=True)
    user_id: Mapped[int] = mapped_column(ForeignKey("users.id"), index=True)
    kind: Mapped[str] = mapped_column(String(8))  # email, webhook
    address: Mapped[str] = mapped_column(String(320))
    # webhooks: the HMAC key the receiver checks signatures with, sealed by the vault
    # (wallets/vault_webhooks.py: AES-GCM, the row bound in) and the master key that sealed it
    secret_sealed: Mapped[bytes | None] = mapped_column(LargeBinary)
    secret_key_id: Mapped[str | None] = mapped_column(String(32))
    confirm_token: Mapped[str | None] = mapped_column(String(64), unique=True)
    confirmed_at: Mapped[datetime | None] = mapped_column(UTCDateTime())
    disabled_at: Mapped[datetime | None] = mapped_column(UTCDateTime())
    failures: Mapped[int] = mapped_column(Integer, default=0)  # in a row
    # alert kind -> wanted on this channel (missing: the chat's choice in /settings)
    kinds: Mapped[dict[str, Any]] = mapped_column(JSON, default=dict)


class ChannelDelivery(CreatedAt, Base):
    """One message to one channel, retried with backoff until sent or given up."""

    __tablename__ = "channel_deliveries"
    __table_args__ = (UniqueConstraint("channel_id", "dedupe_key"),)
    id: Mapped[int] = mapped_column(BigId, primary_key=True)
    channel_id: Mapped[int] = mapped_column(ForeignKey("notification_channels.id"), index=True)
    dedupe_key: Mapped[str] = mapped_column(String(160))
    kind: Mapped[str] = mapped_column(String(32))
    payload: Mapped[dict[str, Any]] = mapped_column(JSON)
    language: Mapped[str] = mapped_column(String(8), default="en")
    status: Mapped[str] = mapped_column(String(8), default="pending", index=True)
    attempts: Mapped[int] = mapped_column(Integer, default=0)
    next_attempt_at: Mapped[datetime | None] = mapped_column(UTCDateTime())
    sent_at: Mapped[datetime | None] = mapped_column(UTCDateTime())
    error: Mapped[str | None] = mapped_column(Text)
