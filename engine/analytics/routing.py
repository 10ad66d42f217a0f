"""Routing statistics: which venue an agent's signals went to, why, and what was refused."""

from __future__ import annotations

from collections import Counter
from dataclasses import dataclass, field
from datetime import datetime

from sqlalchemy import func, select
from sqlalchemy.ext.asyncio import AsyncSession

from storage.models import RoutingDecision, Signal


@dataclass(frozen=True, slots=True)
class RoutingStats:
    venues: Counter[str] = field(default_factory=Counter)  # venue chosen -> signals
    reasons: Counter[str] = field(default_factory=Counter)  # why it was chosen -> signals
    rejections: Counter[str] = field(default_factory=Counter)  # no venue: reason -> signals

    @property
    def routed(self) -> int:
        return sum(self.venues.values())

    @property
    def rejected(self) -> int:
        return sum(self.rejections.values())


async def routing_stats(session: AsyncSession, agent_id: int, since: datetime) -> RoutingStats:
    rows = (
        await session.execute(
            select(RoutingDecision.venue, RoutingDecision.reason, func.count())
            .join(Signal, Signal.id == RoutingDecision.signal_id)
            .where(Signal.agent_id == agent_id, Signal.signal_at >= since)
            .group_by(RoutingDecision.venue, RoutingDecision.reason)
        )
    ).all()
    stats = RoutingStats()
    for venue, reason, count in rows:
        if venue:
            stats.venues[venue] += count
            stats.reasons[reason] += count
        else:
            stats.rejections[reason] += count
    return stats
