"""Funding payments accrued to positions: one row per payment the venue reported, so a payment
read twice (an overlapping read, a second replica, a retried job) is accrued once."""

from __future__ import annotations

from decimal import Decimal

from sqlalchemy import BigInteger, Integer, String, UniqueConstraint
from sqlalchemy.orm import Mapped, mapped_column

from storage.models.base import Base, CreatedAt
from storage.types import BigId, Money


class FundingPaymentRow(CreatedAt, Base):
    """A venue's funding payment to one account's position in one coin (Hyperliquid pays
    hourly); identified as the venue identifies it: (account, coin, time, hash)."""

    __tablename__ = "funding_payments"
    __table_args__ = (UniqueConstraint("account", "coin", "paid_at_ms", "payment_hash"),)
    id: Mapped[int] = mapped_column(BigId, primary_key=True)
    venue: Mapped[str] = mapped_column(String(16))
    account: Mapped[str] = mapped_column(String(64), index=True)
    coin: Mapped[str] = mapped_column(String(32))
    paid_at_ms: Mapped[int] = mapped_column(BigInteger)
    payment_hash: Mapped[str] = mapped_column(String(80))
    usdc: Mapped[Decimal] = mapped_column(Money)  # > 0 received, < 0 paid
    positions: Mapped[int] = mapped_column(Integer, default=0)  # how many it was split over
