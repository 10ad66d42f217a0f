"""Daily performance rows per deployment, and where the incremental roll-up has got to
(engine/analytics/daily.py). Agent rows are `AgentDailyMetric` (storage/models/agents.py)."""

from __future__ import annotations

from datetime import date, datetime
from decimal import Decimal

from sqlalchemy import Date, ForeignKey, Index, Integer, String
from sqlalchemy.orm import Mapped, mapped_column

from storage.models.base import Base
from storage.types import Money, UTCDateTime


class DeploymentDailyMetric(Base):
    """Every trade of one deployment closed on one UTC day (manual closes included: they are
    the user's money); user and agent copied in so /pnl and /daily read one table."""

    __tablename__ = "deployment_daily_metrics"
    __table_args__ = (Index("ix_deployment_daily_metrics_user_day", "user_id", "day"),)
    deployment_id: Mapped[int] = mapped_column(ForeignKey("deployments.id"), primary_key=True)
    day: Mapped[date] = mapped_column(Date, primary_key=True)
    user_id: Mapped[int] = mapped_column(ForeignKey("users.id"))
    agent_id: Mapped[int] = mapped_column(ForeignKey("agents.id"))
    mode: Mapped[str] = mapped_column(String(8))  # DeploymentMode
    trades: Mapped[int] = mapped_column(Integer, default=0)
    wins: Mapped[int] = mapped_column(Integer, default=0)
    losses: Mapped[int] = mapped_column(Integer, default=0)
    realized_pnl: Mapped[Decimal] = mapped_column(Money, default=Decimal(0))
    win_pnl: Mapped[Decimal] = mapped_column(Money, default=Decimal(0))
    loss_pnl: Mapped[Decimal] = mapped_column(Money, default=Decimal(0))
    margin: Mapped[Decimal] = mapped_column(Money, default=Decimal(0))
    fees: Mapped[Decimal] = mapped_column(Money, default=Decimal(0))


class AnalyticsProgress(Base):
    """One row: positions closed up to `closed_through` are in the daily tables. Refreshers
    lock it (FOR UPDATE on PostgreSQL), so replicas never roll up the same day at once."""

    __tablename__ = "analytics_progress"
    name: Mapped[str] = mapped_column(String(32), primary_key=True)
    closed_through: Mapped[datetime | None] = mapped_column(UTCDateTime())
    # the days from window_start were last rolled up from closes that summed to this
    # (count and PnL): the same sum again means nothing changed there since
    window_start: Mapped[datetime | None] = mapped_column(UTCDateTime())
    fingerprint: Mapped[str | None] = mapped_column(String(100))
