"""Signal sources, agents that follow them, and users' deployments of agents."""

from __future__ import annotations

from datetime import date, datetime
from decimal import Decimal
from typing import Any

from sqlalchemy import (
    JSON,
    Boolean,
    Column,
    Date,
    ForeignKey,
    Integer,
    String,
    Table,
    UniqueConstraint,
    false,
)
from sqlalchemy.orm import Mapped, mapped_column

from storage.enums import DeploymentMode, DeploymentStatus, PositionPolicy
from storage.models.base import Base, CreatedAt
from storage.types import BigId, Money, UTCDateTime

agent_sources = Table(
    "agent_sources",
    Base.metadata,
    Column("agent_id", ForeignKey("agents.id", ondelete="CASCADE"), primary_key=True),
    Column("source_id", ForeignKey("sources.id", ondelete="CASCADE"), primary_key=True),
)


class Source(CreatedAt, Base):
    """Where posts come from: an X account, a research feed, an agent's own calls."""

    __tablename__ = "sources"
    __table_args__ = (UniqueConstraint("kind", "handle"),)
    id: Mapped[int] = mapped_column(BigId, primary_key=True)
    kind: Mapped[str] = mapped_column(String(16))  # x, rss, agent, replay
    handle: Mapped[str] = mapped_column(String(200))
    external_user_id: Mapped[str | None] = mapped_column(String(64))
    cursor: Mapped[str | None] = mapped_column(String(200))  # since_id / etag
    failure_count: Mapped[int] = mapped_column(Integer, default=0)
    failing_since: Mapped[datetime | None] = mapped_column(UTCDateTime())
    # who receives the source share of profits (a user id when the source is claimed)
    owner_user_id: Mapped[int | None] = mapped_column(ForeignKey("users.id"))


class Agent(CreatedAt, Base):
    __tablename__ = "agents"
    id: Mapped[int] = mapped_column(BigId, primary_key=True)
    name: Mapped[str] = mapped_column(String(64), unique=True)
    creator_user_id: Mapped[int | None] = mapped_column(ForeignKey("users.id"))
    own_source_id: Mapped[int | None] = mapped_column(ForeignKey("sources.id"))
    venue: Mapped[str] = mapped_column(String(16))  # VenueChoice
    venue_preference: Mapped[list[str]] = mapped_column(JSON, default=list)
    status: Mapped[str] = mapped_column(String(16), default="active")
    leverage: Mapped[Decimal] = mapped_column(Money, default=Decimal(1))
    stop_loss_pct: Mapped[Decimal] = mapped_column(Money)
    take_profit_pct: Mapped[Decimal | None] = mapped_column(Money)
    trailing_activation_pct: Mapped[Decimal | None] = mapped_column(Money)
    trailing_distance_pct: Mapped[Decimal | None] = mapped_column(Money)
    min_confidence: Mapped[Decimal] = mapped_column(Money, default=Decimal("0.5"))
    max_slippage_bps: Mapped[Decimal] = mapped_column(Money, default=Decimal(50))
    # how long an order resting at a call's stated entry waits before it is cancelled
    limit_ttl_hours: Mapped[int] = mapped_column(Integer, default=24, server_default="24")
    allowed_markets: Mapped[list[str] | None] = mapped_column(JSON)
    creator_share_pct: Mapped[Decimal] = mapped_column(Money, default=Decimal("0.10"))
    source_share_pct: Mapped[Decimal] = mapped_column(Money, default=Decimal("0.10"))
    # what the creator suggests followers put up per trade (the /deploy default)
    default_collateral_usd: Mapped[Decimal | None] = mapped_column(Money)
    # isolated margin on venues that offer it (Hyperliquid); cross otherwise
    isolated_margin: Mapped[bool] = mapped_column(Boolean, default=False, server_default=false())
    # what a signal does in a market where the deployment already holds a position (the
    # venue nets one position per account and market): PositionPolicy, engine/position_policy.py
    position_policy: Mapped[str] = mapped_column(
        String(8), default=PositionPolicy.IGNORE, server_default=PositionPolicy.IGNORE.value
    )
    # policy "add": the collateral held in one market stays within this many times the
    # deployment's collateral per trade
    add_cap_multiple: Mapped[Decimal] = mapped_column(Money, default=Decimal(3), server_default="3")


class Deployment(CreatedAt, Base):
    """A user running an agent on their own account."""

    __tablename__ = "deployments"
    id: Mapped[int] = mapped_column(BigId, primary_key=True)
    user_id: Mapped[int] = mapped_column(ForeignKey("users.id"), index=True)
    agent_id: Mapped[int] = mapped_column(ForeignKey("agents.id"), index=True)
    mode: Mapped[str] = mapped_column(String(8), default=DeploymentMode.PAPER)
    status: Mapped[str] = mapped_column(String(16), default=DeploymentStatus.ACTIVE)
    collateral_usd: Mapped[Decimal] = mapped_column(Money)
    leverage: Mapped[Decimal] = mapped_column(Money)
    max_leverage: Mapped[Decimal | None] = mapped_column(Money)  # the user's own cap
    manual_approval: Mapped[bool] = mapped_column(Boolean, default=False)
    account: Mapped[str] = mapped_column(String(64))  # venue account (address, paper id)
    # profit share's high-water mark: the running sum of this deployment's live realized PnL
    # and its highest value so far; the creator and source are paid only on a rise above
    # the mark, never on a win that only wins back earlier losses (engine/profit_share.py)
    live_realized_pnl: Mapped[Decimal] = mapped_column(
        Money, default=Decimal(0), server_default="0"
    )
    live_high_water_mark: Mapped[Decimal] = mapped_column(
        Money, default=Decimal(0), server_default="0"
    )


class AgentDailyMetric(Base):
    """The agent's own trades closed on one UTC day, live and paper apart (engine/analytics):
    followers' manual closes are not the agent's trades and are counted apart."""

    __tablename__ = "agent_daily_metrics"
    agent_id: Mapped[int] = mapped_column(ForeignKey("agents.id"), primary_key=True)
    mode: Mapped[str] = mapped_column(String(8), primary_key=True)  # DeploymentMode
    day: Mapped[date] = mapped_column(Date, primary_key=True)
    trades: Mapped[int] = mapped_column(Integer, default=0)
    wins: Mapped[int] = mapped_column(Integer, default=0)
    losses: Mapped[int] = mapped_column(Integer, default=0)
    realized_pnl: Mapped[Decimal] = mapped_column(Money, default=Decimal(0))
    win_pnl: Mapped[Decimal] = mapped_column(Money, default=Decimal(0))
    loss_pnl: Mapped[Decimal] = mapped_column(Money, default=Decimal(0))
    margin: Mapped[Decimal] = mapped_column(Money, default=Decimal(0))
    fees: Mapped[Decimal] = mapped_column(Money, default=Decimal(0))
    # realized PnL over margin of the day's trades: the day's return on collateral
    return_pct: Mapped[Decimal] = mapped_column(Money, default=Decimal(0))
    manual_closes: Mapped[int] = mapped_column(Integer, default=0)
    extra: Mapped[dict[str, Any]] = mapped_column(JSON, default=dict)
