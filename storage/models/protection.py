"""Protective orders resting on a live venue: one row per (position, kind), the stop loss and
the take profit, so a restart knows what should rest, under which client order id, at what
price, and what became of it (engine/protection.py)."""

from __future__ import annotations

from datetime import datetime
from decimal import Decimal

from sqlalchemy import ForeignKey, Integer, String, UniqueConstraint
from sqlalchemy.orm import Mapped, mapped_column

from storage.models.base import Base, CreatedAt
from storage.types import BigId, Money, UTCDateTime


class ProtectiveOrder(CreatedAt, Base):
    __tablename__ = "protective_orders"
    __table_args__ = (UniqueConstraint("position_id", "kind"),)
    id: Mapped[int] = mapped_column(BigId, primary_key=True)
    position_id: Mapped[int] = mapped_column(ForeignKey("positions.id"))
    kind: Mapped[str] = mapped_column(String(2))  # "sl" | "tp"
    # each placement or move of the trigger is a new version with its own client order id
    version: Mapped[int] = mapped_column(Integer, default=1)
    cloid: Mapped[str] = mapped_column(String(34), unique=True)
    venue_order_id: Mapped[str | None] = mapped_column(String(64))
    trigger_price: Mapped[Decimal] = mapped_column(Money)
    # a move under way: the price asked for under version + 1, until the venue answered
    target_price: Mapped[Decimal | None] = mapped_column(Money)
    status: Mapped[str] = mapped_column(String(12), index=True)  # ProtectionStatus
    error: Mapped[str | None] = mapped_column(String(500))
    moved_at: Mapped[datetime | None] = mapped_column(UTCDateTime())
    updated_at: Mapped[datetime | None] = mapped_column(UTCDateTime())
    # the venue's fill when the trigger closed the position
    fill_price: Mapped[Decimal | None] = mapped_column(Money)
    fill_size: Mapped[Decimal | None] = mapped_column(Money)
    fill_fee: Mapped[Decimal | None] = mapped_column(Money)
    fill_venue_order_id: Mapped[str | None] = mapped_column(String(64))
    filled_at: Mapped[datetime | None] = mapped_column(UTCDateTime())
