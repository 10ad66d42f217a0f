"""What a deployment will really trade with, said before it is confirmed and wherever it is
shown: the leverage used (the smallest of the follower's choice, the agent's maximum and the
follower's own cap, with the reason), markets listed at less, paper or live and why, and the
share of profits the creator and sources take."""

from __future__ import annotations

from decimal import Decimal
from typing import Any

from engine.sizing import effective_leverage
from handlers import hyperliquid_approval
from handlers.context import Ctx
from handlers.create import agent_markets
from handlers.format import lev, pct
from storage.models import Agent

MARKETS_SHOWN = 4


def personal_cap(ctx: Ctx) -> Decimal | None:
    value = ctx.settings.get("max_leverage")
    return Decimal(str(value)) if value not in (None, "") else None


def leverage_text(
    ctx: Ctx,
    agent: str,
    chosen: Decimal,
    agent_leverage: Decimal | None,
    deployment_cap: Decimal | None = None,
) -> str:
    """'3x' or '3x (you chose 5x; your personal cap in /settings)': what orders will use."""
    mine = [c for c in (deployment_cap, personal_cap(ctx)) if c is not None]
    cap = min(mine) if mine else None
    used = effective_leverage(chosen, agent_leverage, cap)
    if used >= chosen:
        return lev(used)
    reason = (
        ctx.t("lev.reason_personal")
        if cap is not None and used == cap
        else ctx.t("lev.reason_agent", agent=agent)
    )
    return ctx.t("lev.capped", used=lev(used), chosen=lev(chosen), reason=reason)


def lower_market_caps(ctx: Ctx, venue: str, leverage: Decimal) -> str:
    """Markets the agent may trade whose venue allows less than this leverage: they trade at
    their maximum ('kPEPE 3x, XAU 20x'); empty when there are none."""
    if not venue:
        return ""
    lower = sorted({(m.max_leverage, m.name) for _, m in agent_markets(ctx, venue)})
    shown = [f"{name} {lev(cap)}" for cap, name in lower if cap < leverage]
    if len(shown) > MARKETS_SHOWN:
        return ", ".join(shown[:MARKETS_SHOWN]) + f" (+{len(shown) - MARKETS_SHOWN})"
    return ", ".join(shown)


def live_blocker(ctx: Ctx, agent: Agent, wallet_linked: bool) -> str | None:
    """The message key saying why live trading is not offered, or None when it is."""
    if agent.venue != "HYPERLIQUID":
        return "deploy.live_off_venue"
    if not hyperliquid_approval.live_enabled(ctx.services):
        return "deploy.live_off_server"
    if not wallet_linked:
        return "deploy.live_off_wallet"
    return None


def share_of(agent: Agent) -> str:
    """The creator's share of profits as a fraction ('0.1'); '0' for a house agent."""
    share = agent.creator_share_pct if agent.creator_user_id else Decimal(0)
    return format(share.normalize(), "f")


def share_line(ctx: Ctx, data: dict[str, Any]) -> str:
    return ctx.t(
        "deploy.share_line",
        creator=pct(data.get("creator_share") or "0"),
        sources=pct(data.get("source_share") or "0"),
    )
