"""The user's daily loss limit (from /settings): once the day's realized losses reach it,
every active deployment of theirs is paused and they are told, once per day."""

from __future__ import annotations

from collections.abc import Iterable
from datetime import datetime, time
from decimal import Decimal
from typing import Any

from sqlalchemy import select, update
from sqlalchemy.ext.asyncio import AsyncSession

from engine.events import DeploymentsPaused, Event
from storage.enums import DeploymentStatus, PositionStatus
from storage.models import Deployment, Position, User

CHUNK = 5000  # ids per statement


def daily_loss_limit(settings: dict | None) -> Decimal | None:
    value = (settings or {}).get("daily_loss_limit_usd")
    if value in (None, ""):
        return None
    limit = Decimal(str(value))
    return limit if limit > 0 else None


async def _column(session: AsyncSession, column: Any, key: Any, ids: list[int]) -> list[Any]:
    out: list[Any] = []
    for start in range(0, len(ids), CHUNK):
        out += (
            await session.execute(select(column).where(key.in_(ids[start : start + CHUNK])))
        ).scalars()
    return out


async def enforce(session: AsyncSession, position_ids: Iterable[int], now: datetime) -> list[Event]:
    """Check the owners of these just-closed positions; pause those over their limit."""
    ids = list(position_ids)
    if not ids:
        return []
    # step by step, each by primary key, in chunks: joined, SQLite walked every deployment
    # and looked each up in the list of closed positions (16 s for a tick closing 4,000 in a
    # book of 40,000); PostgreSQL takes at most 32,767 bind parameters
    deployment_ids = sorted(set(await _column(session, Position.deployment_id, Position.id, ids)))
    user_ids = sorted(
        set(await _column(session, Deployment.user_id, Deployment.id, deployment_ids))
    )
    owners = []
    for start in range(0, len(user_ids), CHUNK):
        owners += (
            await session.execute(
                select(User.id, User.settings).where(User.id.in_(user_ids[start : start + CHUNK]))
            )
        ).all()
    start = datetime.combine(now.date(), time(0), tzinfo=now.tzinfo)
    events: list[Event] = []
    for user_id, settings in owners:
        limit = daily_loss_limit(settings)
        if limit is None:
            continue
        pnls = (
            await session.execute(
                select(Position.realized_pnl)
                .join(Deployment, Deployment.id == Position.deployment_id)
                .where(
                    Deployment.user_id == user_id,
                    Position.status == PositionStatus.CLOSED,
                    Position.closed_at >= start,
                )
            )
        ).scalars()
        loss = -sum((p for p in pnls if p is not None), Decimal(0))
        if loss < limit:
            continue
        paused = await session.execute(
            update(Deployment)
            .where(Deployment.user_id == user_id, Deployment.status == DeploymentStatus.ACTIVE)
            .values(status=DeploymentStatus.PAUSED)
        )
        count = paused.rowcount or 0  # type: ignore[attr-defined]
        if count:
            events.append(DeploymentsPaused(user_id, now.date().isoformat(), loss, limit, count))
    return events
