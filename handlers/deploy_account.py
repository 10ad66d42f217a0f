"""One Hyperliquid account, several live deployments: Hyperliquid keeps one leverage and
one margin mode per coin per account, so two agents that trade the same markets must agree."""

from __future__ import annotations

from decimal import Decimal

from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncSession

from engine.sizing import effective_leverage
from handlers.context import Ctx
from handlers.format import lev
from storage.enums import DeploymentMode, DeploymentStatus
from storage.models import Agent, Deployment


def _overlap(a: Agent, b: Agent) -> bool:
    """Whether two agents may trade one market (no list: whatever their venue lists)."""
    if a.venue != b.venue and "MULTI" not in (a.venue, b.venue):
        return False
    if a.allowed_markets is None or b.allowed_markets is None:
        return True
    return bool(set(a.allowed_markets) & set(b.allowed_markets))


async def shared_account_conflict(
    s: AsyncSession, ctx: Ctx, agent: Agent, account: str, chosen: Decimal
) -> str | None:
    """Hyperliquid keeps one leverage and one margin mode per coin per account, set by the
    order that trades it: two live deployments on one account whose agents trade the same
    markets would overwrite each other's. Refuse the second unless both match (the user's
    own leverage cap applies to both alike, so it is left out of the comparison)."""
    rows = await s.execute(
        select(Deployment, Agent)
        .join(Agent, Agent.id == Deployment.agent_id)
        .where(
            Deployment.account == account,
            Deployment.mode == DeploymentMode.LIVE,
            Deployment.status != DeploymentStatus.STOPPED,
            Deployment.agent_id != agent.id,
        )
        .order_by(Deployment.id)
    )
    leverage = effective_leverage(chosen, agent.leverage)
    for dep, other in rows:
        if not _overlap(agent, other):
            continue
        theirs = effective_leverage(dep.leverage, other.leverage, dep.max_leverage)
        if theirs == leverage and bool(other.isolated_margin) == bool(agent.isolated_margin):
            continue
        return ctx.t(
            "deploy.leverage_conflict",
            agent=agent.name,
            other=other.name,
            id=dep.id,
            leverage=lev(leverage),
            margin=ctx.t("margin.isolated" if agent.isolated_margin else "margin.cross"),
            other_leverage=lev(theirs),
            other_margin=ctx.t("margin.isolated" if other.isolated_margin else "margin.cross"),
        )
    return None
