"""Orders, positions and the money ledger."""

from __future__ import annotations

from datetime import datetime
from decimal import Decimal

from sqlalchemy import (
    Boolean,
    ForeignKey,
    Index,
    Integer,
    String,
    UniqueConstraint,
    false,
    text,
)
from sqlalchemy.orm import Mapped, mapped_column

from storage.enums import OrderStatus, PositionStatus
from storage.models.base import Base, CreatedAt
from storage.types import BigId, Money, UTCDateTime


class Order(CreatedAt, Base):
    """Written before the venue is called; the client order id makes retries harmless.

    A close that filled in part is followed by another close order for the rest, the next
    `close_seq` (engine/close.py): each attempt has its own client order id, since a venue
    refuses one it has seen. Opens, and a position's first close, have `close_seq` 0."""

    __tablename__ = "orders"
    __table_args__ = (
        UniqueConstraint("signal_id", "deployment_id", "purpose", "close_seq"),
        # the opens waiting for a position's close (migration 0013)
        Index(
            "ix_orders_after_position_id",
            "after_position_id",
            sqlite_where=text("after_position_id IS NOT NULL"),
            postgresql_where=text("after_position_id IS NOT NULL"),
        ),
    )
    id: Mapped[int] = mapped_column(BigId, primary_key=True)
    signal_id: Mapped[int] = mapped_column(ForeignKey("signals.id"))
    deployment_id: Mapped[int] = mapped_column(ForeignKey("deployments.id"), index=True)
    purpose: Mapped[str] = mapped_column(String(8))  # OrderPurpose
    client_order_id: Mapped[str] = mapped_column(String(34), unique=True)
    venue: Mapped[str] = mapped_column(String(16))
    account: Mapped[str] = mapped_column(String(64))
    market: Mapped[str] = mapped_column(String(32))
    side: Mapped[str] = mapped_column(String(8))  # position side the order opens/closes
    reduce_only: Mapped[bool] = mapped_column(Boolean, default=False)
    size: Mapped[Decimal] = mapped_column(Money)
    leverage: Mapped[Decimal] = mapped_column(Money)
    collateral_usd: Mapped[Decimal] = mapped_column(Money)
    reference_price: Mapped[Decimal | None] = mapped_column(Money)
    status: Mapped[str] = mapped_column(String(20), default=OrderStatus.PENDING, index=True)
    fill_price: Mapped[Decimal | None] = mapped_column(Money)
    filled_size: Mapped[Decimal | None] = mapped_column(Money)
    fee: Mapped[Decimal | None] = mapped_column(Money)
    venue_order_id: Mapped[str | None] = mapped_column(String(64))
    error: Mapped[str | None] = mapped_column(String(500))
    close_reason: Mapped[str | None] = mapped_column(String(20))
    expires_at: Mapped[datetime | None] = mapped_column(UTCDateTime())
    updated_at: Mapped[datetime | None] = mapped_column(UTCDateTime())
    # the agent's terms at order time, for venues that use them
    isolated_margin: Mapped[bool] = mapped_column(Boolean, default=False, server_default=false())
    max_slippage_bps: Mapped[Decimal | None] = mapped_column(Money)
    # the replica sending it, until when; a lapsed lease is taken over after a venue look-up
    claimed_by: Mapped[str | None] = mapped_column(String(64))
    lease_until: Mapped[datetime | None] = mapped_column(UTCDateTime())
    send_attempts: Mapped[int] = mapped_column(Integer, default=0, server_default="0")
    # the mark of the recording that settled it (storage.bulk.settle_rows): who moved it
    settled_by: Mapped[str | None] = mapped_column(String(32))
    close_seq: Mapped[int] = mapped_column(Integer, default=0, server_default="0")
    # when the fill's price, size and fee were replaced by what the venue booked (its own
    # fills; the order's answer only estimates the fee): settled once (engine/money/fees.py)
    fee_settled_at: Mapped[datetime | None] = mapped_column(UTCDateTime())
    # position policy (engine/position_policy.py): an open that adds to this held position
    # (its fill merges into it), or that waits for this position to be closed first (a flip)
    adds_to_position_id: Mapped[int | None] = mapped_column(BigId)
    after_position_id: Mapped[int | None] = mapped_column(BigId)
    # a limit entry (engine/limit_orders.py): the worst price the open may fill at; with
    # limit_expires_at it rests at the venue until filled, cancelled then, or at the call's stop
    limit_price: Mapped[Decimal | None] = mapped_column(Money)
    limit_expires_at: Mapped[datetime | None] = mapped_column(UTCDateTime())


class Position(CreatedAt, Base):
    """`size` is what is held while open (a close that filled in part reduces it); once
    closed, the whole size that was closed. The pieces closed so far are in `closed_size`,
    `closed_gross_pnl` (price PnL, before fees) and `close_fee` (engine/money/books.py)."""

    __tablename__ = "positions"
    __table_args__ = (
        UniqueConstraint("signal_id", "deployment_id"),
        # a user's open positions without walking everyone's (migration 0013)
        Index("ix_positions_deployment_status", "deployment_id", "status"),
        # what an account holds in a market (the position policy; migration 0021)
        Index(
            "ix_positions_open_account_market",
            "account",
            "market",
            sqlite_where=text("status = 'open'"),
            postgresql_where=text("status = 'open'"),
        ),
    )
    id: Mapped[int] = mapped_column(BigId, primary_key=True)
    deployment_id: Mapped[int] = mapped_column(ForeignKey("deployments.id"), index=True)
    signal_id: Mapped[int] = mapped_column(ForeignKey("signals.id"))
    open_order_id: Mapped[int] = mapped_column(ForeignKey("orders.id"), unique=True)
    venue: Mapped[str] = mapped_column(String(16))
    account: Mapped[str] = mapped_column(String(64))
    market: Mapped[str] = mapped_column(String(32))
    side: Mapped[str] = mapped_column(String(8))
    size: Mapped[Decimal] = mapped_column(Money)
    leverage: Mapped[Decimal] = mapped_column(Money)
    entry_price: Mapped[Decimal] = mapped_column(Money)
    open_fee: Mapped[Decimal] = mapped_column(Money)
    # risk levels, absolute prices; peak and stop are checkpointed by the monitor
    stop_price: Mapped[Decimal] = mapped_column(Money)
    take_profit_price: Mapped[Decimal | None] = mapped_column(Money)
    trailing_activation_price: Mapped[Decimal | None] = mapped_column(Money)
    trailing_distance_pct: Mapped[Decimal | None] = mapped_column(Money)
    trailing_active: Mapped[bool] = mapped_column(Boolean, default=False)
    peak_price: Mapped[Decimal] = mapped_column(Money)
    status: Mapped[str] = mapped_column(String(8), default=PositionStatus.OPEN, index=True)
    opened_at: Mapped[datetime] = mapped_column(UTCDateTime())
    exit_price: Mapped[Decimal | None] = mapped_column(Money)
    close_fee: Mapped[Decimal | None] = mapped_column(Money)
    realized_pnl: Mapped[Decimal | None] = mapped_column(Money)
    close_reason: Mapped[str | None] = mapped_column(String(20))
    # indexed: the analytics roll-up finds recent closes by it (engine/analytics/daily.py)
    closed_at: Mapped[datetime | None] = mapped_column(UTCDateTime(), index=True)
    closed_size: Mapped[Decimal] = mapped_column(Money, default=Decimal(0), server_default="0")
    closed_gross_pnl: Mapped[Decimal] = mapped_column(Money, default=Decimal(0), server_default="0")
    # funding the venue paid (> 0) or charged (< 0) this position (engine/money/funding.py)
    funding_usd: Mapped[Decimal] = mapped_column(Money, default=Decimal(0), server_default="0")


class LedgerEntry(CreatedAt, Base):
    """Money owed or paid; one entry per (position, kind) so billing is idempotent."""

    __tablename__ = "ledger"
    __table_args__ = (UniqueConstraint("position_id", "kind"),)
    id: Mapped[int] = mapped_column(BigId, primary_key=True)
    position_id: Mapped[int] = mapped_column(ForeignKey("positions.id"))
    kind: Mapped[str] = mapped_column(String(16))  # LedgerKind
    payer_user_id: Mapped[int] = mapped_column(ForeignKey("users.id"), index=True)
    beneficiary_user_id: Mapped[int | None] = mapped_column(ForeignKey("users.id"))
    beneficiary_source_id: Mapped[int | None] = mapped_column(ForeignKey("sources.id"))
    beneficiary: Mapped[str] = mapped_column(String(200))  # readable label
    amount: Mapped[Decimal] = mapped_column(Money)
