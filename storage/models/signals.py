"""The path of one post: post -> classification -> signal -> routing decision."""

from __future__ import annotations

from datetime import datetime
from decimal import Decimal
from typing import Any

from sqlalchemy import (
    JSON,
    Boolean,
    ForeignKey,
    Index,
    Integer,
    String,
    Text,
    UniqueConstraint,
    text,
)
from sqlalchemy.orm import Mapped, mapped_column

from storage.enums import SignalStatus
from storage.models.base import Base, CreatedAt
from storage.types import BigId, Money, UTCDateTime


class Post(CreatedAt, Base):
    __tablename__ = "posts"
    __table_args__ = (UniqueConstraint("source_id", "external_id"),)
    id: Mapped[int] = mapped_column(BigId, primary_key=True)
    source_id: Mapped[int] = mapped_column(ForeignKey("sources.id"))
    external_id: Mapped[str] = mapped_column(String(64))
    text: Mapped[str] = mapped_column(Text)
    posted_at: Mapped[datetime] = mapped_column(UTCDateTime())
    content_hash: Mapped[str] = mapped_column(String(64), index=True)


class ClassificationRow(CreatedAt, Base):
    __tablename__ = "classifications"
    id: Mapped[int] = mapped_column(BigId, primary_key=True)
    post_id: Mapped[int] = mapped_column(ForeignKey("posts.id"), unique=True)
    classifier: Mapped[str] = mapped_column(String(16))
    is_signal: Mapped[bool] = mapped_column(Boolean)
    market: Mapped[str | None] = mapped_column(String(32))
    side: Mapped[str | None] = mapped_column(String(8))
    confidence: Mapped[Decimal] = mapped_column(Money)
    reason: Mapped[str] = mapped_column(String(500), default="")
    details: Mapped[dict[str, Any]] = mapped_column(JSON, default=dict)  # timeframe, levels
    tokens_in: Mapped[int] = mapped_column(Integer, default=0)
    tokens_out: Mapped[int] = mapped_column(Integer, default=0)


class Signal(CreatedAt, Base):
    __tablename__ = "signals"
    __table_args__ = (
        UniqueConstraint("agent_id", "post_id"),
        # the sweep that resumes a fan-out stopped half way (migration 0022)
        Index(
            "ix_signals_unfinished",
            "status",
            "created_at",
            sqlite_where=text("status IN ('new', 'routed')"),
            postgresql_where=text("status IN ('new', 'routed')"),
        ),
    )
    id: Mapped[int] = mapped_column(BigId, primary_key=True)
    agent_id: Mapped[int] = mapped_column(ForeignKey("agents.id"))
    post_id: Mapped[int] = mapped_column(ForeignKey("posts.id"), index=True)
    market: Mapped[str] = mapped_column(String(32))
    side: Mapped[str] = mapped_column(String(8))
    confidence: Mapped[Decimal] = mapped_column(Money)
    status: Mapped[str] = mapped_column(String(16), default=SignalStatus.NEW)
    signal_at: Mapped[datetime] = mapped_column(UTCDateTime())  # the post's time
    # the market's latest price at the post's time: what orders are sized at, also after a
    # restart that has no prices yet (None: there was none, the signal is rejected no_price)
    reference_price: Mapped[Decimal | None] = mapped_column(Money)


class RoutingDecision(CreatedAt, Base):
    __tablename__ = "routing_decisions"
    id: Mapped[int] = mapped_column(BigId, primary_key=True)
    signal_id: Mapped[int] = mapped_column(ForeignKey("signals.id"), unique=True)
    venue: Mapped[str | None] = mapped_column(String(16))
    candidates: Mapped[list[dict[str, Any]]] = mapped_column(JSON, default=list)
    reason: Mapped[str] = mapped_column(String(200))
