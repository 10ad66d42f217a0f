"""A trading history written straight into the tables (users, agents, deployments and their
closed positions), for analytics tests that need many trades over many days without driving
the engine through each one."""

from __future__ import annotations

import itertools
from dataclasses import dataclass, field
from datetime import UTC, datetime
from decimal import Decimal

from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from storage.enums import DeploymentMode, PositionStatus
from storage.models import Agent, Deployment, Order, Position, Post, Signal, Source, User

D = Decimal


@dataclass
class Book:
    sessions: async_sessionmaker[AsyncSession]
    ids: itertools.count = field(default_factory=lambda: itertools.count(1))
    source_id: int | None = None

    async def user(self, name: str) -> int:
        async with self.sessions() as s, s.begin():
            u = User(display_name=name)
            s.add(u)
            await s.flush()
            return u.id

    async def agent(self, name: str, creator: int | None = None) -> int:
        async with self.sessions() as s, s.begin():
            if self.source_id is None:
                src = Source(kind="x", handle="@book")
                s.add(src)
                await s.flush()
                self.source_id = src.id
            a = Agent(
                name=name,
                creator_user_id=creator,
                venue="HYPERLIQUID",
                venue_preference=[],
                leverage=D(2),
                stop_loss_pct=D("0.05"),
            )
            s.add(a)
            await s.flush()
            return a.id

    async def deployment(self, user: int, agent: int, mode: str = DeploymentMode.PAPER) -> int:
        async with self.sessions() as s, s.begin():
            d = Deployment(
                user_id=user,
                agent_id=agent,
                mode=mode,
                collateral_usd=D(100),
                leverage=D(2),
                account=f"acct-{user}",
            )
            s.add(d)
            await s.flush()
            return d.id

    async def trade(
        self,
        deployment: int,
        agent: int,
        closed_at: datetime,
        pnl: str,
        margin: str = "100",
        leverage: str = "2",
        reason: str = "take_profit",
        market: str = "ETH",
        status: str = PositionStatus.CLOSED,
    ) -> int:
        """A long bought at 1000 holding `margin` at `leverage`, closed with `pnl`."""
        n = next(self.ids)
        entry = D(1000)
        size = D(margin) * D(leverage) / entry
        async with self.sessions() as s, s.begin():
            post = Post(
                source_id=self.source_id,
                external_id=f"p{n}",
                text="Long $ETH",
                posted_at=closed_at,
                content_hash=f"h{n}",
            )
            s.add(post)
            await s.flush()
            sig = Signal(
                agent_id=agent,
                post_id=post.id,
                market=market,
                side="long",
                confidence=D(1),
                status="executed",
                signal_at=closed_at,
            )
            s.add(sig)
            await s.flush()
            order = Order(
                signal_id=sig.id,
                deployment_id=deployment,
                purpose="open",
                client_order_id=f"0x{n:032x}",
                venue="HYPERLIQUID",
                account="a",
                market=market,
                side="long",
                size=size,
                leverage=D(leverage),
                collateral_usd=D(margin),
                status="filled",
            )
            s.add(order)
            await s.flush()
            closed = status == PositionStatus.CLOSED
            pos = Position(
                deployment_id=deployment,
                signal_id=sig.id,
                open_order_id=order.id,
                venue="HYPERLIQUID",
                account="a",
                market=market,
                side="long",
                size=size,
                leverage=D(leverage),
                entry_price=entry,
                open_fee=D("0.1"),
                stop_price=D(900),
                peak_price=entry,
                status=status,
                opened_at=closed_at,
                exit_price=entry + D(pnl) / size if closed else None,
                close_fee=D("0.1") if closed else None,
                realized_pnl=D(pnl) if closed else None,
                close_reason=reason if closed else None,
                closed_at=closed_at if closed else None,
            )
            s.add(pos)
            await s.flush()
            return pos.id


def at(day: int, hour: int = 12) -> datetime:
    """A time in November 2026 (UTC)."""
    return datetime(2026, 11, day, hour, tzinfo=UTC)
