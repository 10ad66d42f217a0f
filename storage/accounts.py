"""Joining chat accounts into one user: the chat identities of a user who holds nothing yet
(no deployments, agents, wallet, keys or subscription) move to another user, who keeps
everything they have. A user who holds something is never merged away, so nothing of
value is ever split or orphaned; the person joins the other way round instead."""

from __future__ import annotations

from typing import Literal

from sqlalchemy import exists, select, update
from sqlalchemy.ext.asyncio import AsyncSession

from storage.models import Agent, AgentKey, Deployment, Identity, Subscription, Wallet

JoinResult = Literal["joined", "same", "holds_something", "platform_taken"]


async def holds_something(session: AsyncSession, user_id: int) -> bool:
    checks = [
        exists().where(Deployment.user_id == user_id),
        exists().where(Agent.creator_user_id == user_id),
        exists().where(Wallet.user_id == user_id, Wallet.unlinked_at.is_(None)),
        exists().where(AgentKey.user_id == user_id),
        exists().where(Subscription.user_id == user_id),
    ]
    for check in checks:
        if (await session.execute(select(check))).scalar():
            return True
    return False


async def join(session: AsyncSession, from_user: int, into_user: int) -> JoinResult:
    """Move `from_user`'s chat identities to `into_user` (in the caller's transaction)."""
    if from_user == into_user:
        return "same"
    if await holds_something(session, from_user):
        return "holds_something"
    platforms = select(Identity.platform).where(Identity.user_id == into_user)
    clash = exists().where(Identity.user_id == from_user, Identity.platform.in_(platforms))
    if (await session.execute(select(clash))).scalar():
        # one Telegram and one Discord per person: alerts must know where to go
        return "platform_taken"
    await session.execute(
        update(Identity).where(Identity.user_id == from_user).values(user_id=into_user)
    )
    return "joined"
