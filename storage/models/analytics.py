"""Daily performance rows per deployment, and where the incremental roll-up has got to
(engine/analytics/daily.py). Agent rows are `AgentDailyMetric` (storage/models/agents.py)."""

from __future__ import annotations

from datetime import date, datetime
from decimal import Decimal

from sqlalchemy import BigInteger, Date, ForeignKey, Index, Integer, String
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


class AgentSummary(Base):
    """One agent's marketplace standing over the 30-day window ending `window_end`: the
    ranking inputs (live and paper apart) and the place keys, kept up to date by the daily
    roll-up (engine/analytics/summary.py), so /agents reads one page through one index.

    The place keys sort ascending: `place_group` 0 for a ranked agent (enough live trades),
    1 otherwise; then `place_a` (1: ranked without a Sharpe); `place_b` minus the Sharpe (or
    minus the live trades when unranked); `place_c` minus the return (or minus the
    followers), both in millionths; ties by agent id."""

    __tablename__ = "agent_summaries"
    __table_args__ = (
        Index(
            "ix_agent_summaries_place", "place_group", "place_a", "place_b", "place_c", "agent_id"
        ),
    )
    agent_id: Mapped[int] = mapped_column(
        ForeignKey("agents.id"), primary_key=True, autoincrement=False
    )
    window_end: Mapped[date] = mapped_column(Date)
    followers: Mapped[int] = mapped_column(Integer, default=0)
    live_trades: Mapped[int] = mapped_column(Integer, default=0)
    live_return: Mapped[Decimal | None] = mapped_column(Money)  # None: no live trade
    live_sharpe: Mapped[Decimal | None] = mapped_column(Money)
    live_drawdown: Mapped[Decimal | None] = mapped_column(Money)
    live_win_rate: Mapped[Decimal | None] = mapped_column(Money)
    paper_trades: Mapped[int] = mapped_column(Integer, default=0)
    paper_return: Mapped[Decimal | None] = mapped_column(Money)  # None: no paper trade
    paper_win_rate: Mapped[Decimal | None] = mapped_column(Money)
    place_group: Mapped[int] = mapped_column(Integer)
    place_a: Mapped[int] = mapped_column(Integer)
    # integers (millionths) so both databases sort them as numbers (Money is text on SQLite)
    place_b: Mapped[int] = mapped_column(BigInteger)
    place_c: Mapped[int] = mapped_column(BigInteger)
