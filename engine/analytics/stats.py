"""Performance figures for agents (marketplace cards) and users (/pnl), from the positions
themselves, so they always agree with what users see in /history."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from decimal import Decimal

from sqlalchemy import func, select
from sqlalchemy.ext.asyncio import AsyncSession

from storage.enums import DeploymentStatus, PositionStatus
from storage.models import Deployment, Order, Position, Signal


@dataclass(frozen=True, slots=True)
class AgentStats:
    trades: int = 0
    wins: int = 0
    realized_pnl: Decimal = Decimal(0)
    collateral: Decimal = Decimal(0)
    subscribers: int = 0

    @property
    def win_rate(self) -> Decimal | None:
        return Decimal(self.wins) / self.trades if self.trades else None

    @property
    def return_pct(self) -> Decimal:
        """PnL over the collateral put at risk: the return a follower got per dollar."""
        return self.realized_pnl / self.collateral if self.collateral else Decimal(0)


async def agent_stats(
    session: AsyncSession, agent_ids: list[int], since: datetime
) -> dict[int, AgentStats]:
    if not agent_ids:
        return {}
    closed = (
        await session.execute(
            select(Signal.agent_id, Position.realized_pnl, Order.collateral_usd)
            .join(Signal, Signal.id == Position.signal_id)
            .join(Order, Order.id == Position.open_order_id)
            .where(
                Signal.agent_id.in_(agent_ids),
                Position.status == PositionStatus.CLOSED,
                Position.closed_at >= since,
            )
        )
    ).all()
    acc: dict[int, list] = {a: [0, 0, Decimal(0), Decimal(0)] for a in agent_ids}
    for agent_id, pnl, collateral in closed:
        a = acc[agent_id]
        a[0] += 1
        a[1] += pnl is not None and pnl > 0
        a[2] += pnl or Decimal(0)
        a[3] += collateral or Decimal(0)
    subs = dict(
        (
            await session.execute(
                select(Deployment.agent_id, func.count(func.distinct(Deployment.user_id)))
                .where(
                    Deployment.agent_id.in_(agent_ids),
                    Deployment.status != DeploymentStatus.STOPPED,
                )
                .group_by(Deployment.agent_id)
            )
        ).all()
    )
    return {
        a: AgentStats(int(v[0]), int(v[1]), v[2], v[3], int(subs.get(a, 0))) for a, v in acc.items()
    }
