"""The user's daily loss limit (from /settings): once the day's realized losses reach it,
every active deployment of theirs is paused and they are told, once per day."""

from __future__ import annotations

import json
from collections.abc import Iterable
from datetime import datetime, time
from decimal import Decimal
from typing import Any

from sqlalchemy import Text, cast, select, update
from sqlalchemy.ext.asyncio import AsyncSession

from engine.events import DeploymentsPaused, Event
from storage.enums import DeploymentStatus, PositionStatus
from storage.ids import among
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
        part = among(session, key, ids[start : start + CHUNK])
        out += (await session.execute(select(column).where(part))).scalars()
    return out


async def enforce(
    session: AsyncSession,
    position_ids: Iterable[int],
    now: datetime,
    owners: Iterable[int] | None = None,
) -> list[Event]:
    """Check the owners of these just-closed positions; pause those over their limit.
    `owners`: their users, when the caller knows them (the recording of the closes)."""
    ids = list(position_ids)
    if not ids:
        return []
    if owners is None:
        # step by step, each by primary key, in chunks: joined, SQLite walked every
        # deployment and looked each up in the list of closed positions (16 s for a tick
        # closing 4,000 in a book of 40,000); PostgreSQL takes at most 32,767 bind parameters
        deployment_ids = sorted(
            set(await _column(session, Position.deployment_id, Position.id, ids))
        )
        owners = await _column(session, Deployment.user_id, Deployment.id, deployment_ids)
    user_ids = sorted(set(owners))
    settings_of = []
    for start in range(0, len(user_ids), CHUNK):
        settings_of += (
            await session.execute(
                # as text: the owners share a few settings, each parsed once here
                select(User.id, cast(User.settings, Text)).where(
                    among(session, User.id, user_ids[start : start + CHUNK])
                )
            )
        ).all()
    limits: dict[str | None, Decimal | None] = {}
    start = datetime.combine(now.date(), time(0), tzinfo=now.tzinfo)
    events: list[Event] = []
    for user_id, text in settings_of:
        if text not in limits:
            limits[text] = daily_loss_limit(json.loads(text) if text else None)
        limit = limits[text]
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
