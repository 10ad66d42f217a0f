"""People and their chat identities, wallets, keys, settings and billing."""

from __future__ import annotations

from datetime import datetime
from typing import Any

from sqlalchemy import (
    JSON,
    BigInteger,
    Boolean,
    ForeignKey,
    Integer,
    LargeBinary,
    String,
    UniqueConstraint,
    false,
)
from sqlalchemy.orm import Mapped, mapped_column

from storage.models.base import Base, CreatedAt
from storage.types import BigId, UTCDateTime


class User(CreatedAt, Base):
    __tablename__ = "users"
    id: Mapped[int] = mapped_column(BigId, primary_key=True)
    display_name: Mapped[str] = mapped_column(String(200), default="")
    language: Mapped[str] = mapped_column(String(8), default="en")
    referral_code: Mapped[str | None] = mapped_column(String(32), unique=True)
    referred_by_id: Mapped[int | None] = mapped_column(ForeignKey("users.id"))
    # alerts wanted, personal risk limits (max leverage, max collateral, daily loss limit)
    settings: Mapped[dict[str, Any]] = mapped_column(JSON, default=dict)


class Identity(CreatedAt, Base):
    """A chat account (Telegram, Discord, console) that acts as a user."""

    __tablename__ = "identities"
    __table_args__ = (UniqueConstraint("platform", "external_id"),)
    id: Mapped[int] = mapped_column(BigId, primary_key=True)
    user_id: Mapped[int] = mapped_column(ForeignKey("users.id"), index=True)
    platform: Mapped[str] = mapped_column(String(16))
    external_id: Mapped[str] = mapped_column(String(64))
    chat_id: Mapped[str | None] = mapped_column(String(64))
    username: Mapped[str | None] = mapped_column(String(100))
    reachable: Mapped[bool] = mapped_column(Boolean, default=True)


class ChatChange(Base):
    """A change to what a replica keeps in memory of a chat account (handlers/known_users.py):
    a user's language or settings, an identity's user, chat or reachability, a wizard started
    or ended. Written by database triggers (migration 0020), so every writer and every
    replica's is seen, whatever code made the change; read by each replica every second."""

    __tablename__ = "chat_changes"
    id: Mapped[int] = mapped_column(BigId, primary_key=True)
    user_id: Mapped[int] = mapped_column(BigInteger)  # no foreign key: a deleted user too
    # the database's clock in whole seconds (PostgreSQL: the transaction's start)
    at_s: Mapped[int] = mapped_column(BigInteger, index=True)


class Wallet(CreatedAt, Base):
    __tablename__ = "wallets"
    id: Mapped[int] = mapped_column(BigId, primary_key=True)
    user_id: Mapped[int] = mapped_column(ForeignKey("users.id"), index=True)
    address: Mapped[str] = mapped_column(String(42), unique=True)
    chain_id: Mapped[int] = mapped_column(Integer, default=1)
    unlinked_at: Mapped[datetime | None] = mapped_column(UTCDateTime())


class SiweNonce(CreatedAt, Base):
    __tablename__ = "siwe_nonces"
    id: Mapped[int] = mapped_column(BigId, primary_key=True)
    nonce: Mapped[str] = mapped_column(String(64), unique=True)
    user_id: Mapped[int] = mapped_column(ForeignKey("users.id"), index=True)
    link_token: Mapped[str | None] = mapped_column(String(64), index=True)
    expires_at: Mapped[datetime] = mapped_column(UTCDateTime())
    used_at: Mapped[datetime | None] = mapped_column(UTCDateTime())


class AgentKey(CreatedAt, Base):
    """A trading-only key Maxxit holds for a user on one venue, AES-GCM encrypted."""

    __tablename__ = "agent_keys"
    __table_args__ = (UniqueConstraint("user_id", "venue"),)
    id: Mapped[int] = mapped_column(BigId, primary_key=True)
    user_id: Mapped[int] = mapped_column(ForeignKey("users.id"))
    venue: Mapped[str] = mapped_column(String(16))
    address: Mapped[str] = mapped_column(String(42))
    ciphertext: Mapped[bytes] = mapped_column(LargeBinary)
    master_key_id: Mapped[str] = mapped_column(String(32))
    approved_at: Mapped[datetime | None] = mapped_column(UTCDateTime())


class Subscription(CreatedAt, Base):
    __tablename__ = "subscriptions"
    id: Mapped[int] = mapped_column(BigId, primary_key=True)
    user_id: Mapped[int] = mapped_column(ForeignKey("users.id"), index=True)
    plan: Mapped[str] = mapped_column(String(32))
    status: Mapped[str] = mapped_column(String(16))
    provider_customer_id: Mapped[str | None] = mapped_column(String(64))
    provider_subscription_id: Mapped[str | None] = mapped_column(String(64), unique=True)
    current_period_end: Mapped[datetime | None] = mapped_column(UTCDateTime())
    # a paid agent's subscription (engine/subscriptions.py): the agent, the Checkout Session
    # that started it, and Stripe's `created` time of the newest state applied (older
    # events arriving late are ignored)
    agent_id: Mapped[int | None] = mapped_column(ForeignKey("agents.id"), index=True)
    checkout_session_id: Mapped[str | None] = mapped_column(String(80), unique=True)
    state_at: Mapped[int] = mapped_column(BigInteger, default=0, server_default="0")
    # the user asked to cancel: it runs to current_period_end, then Stripe ends it
    cancel_at_period_end: Mapped[bool] = mapped_column(
        Boolean, default=False, server_default=false()
    )


class Conversation(Base):
    """Chat wizard state, in the database so it survives restarts and several processes."""

    __tablename__ = "conversations"
    __table_args__ = (UniqueConstraint("identity_id", "chat_id"),)
    id: Mapped[int] = mapped_column(BigId, primary_key=True)
    identity_id: Mapped[int] = mapped_column(ForeignKey("identities.id"))
    chat_id: Mapped[str] = mapped_column(String(64))
    flow: Mapped[str] = mapped_column(String(32))
    step: Mapped[str] = mapped_column(String(32))
    data: Mapped[dict[str, Any]] = mapped_column(JSON, default=dict)
    updated_at: Mapped[datetime] = mapped_column(UTCDateTime())
