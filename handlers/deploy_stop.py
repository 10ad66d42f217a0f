"""Whether an agent's stop loss triggers before liquidation at the leverage a deployment would
use (the smallest of the user's choice, the agent's maximum and the user's own cap)."""

from __future__ import annotations

from dataclasses import dataclass
from decimal import Decimal
from typing import Any

from engine import liquidation
from engine.sizing import effective_leverage
from handlers.base import UserError
from handlers.context import Ctx
from handlers.create import agent_markets, limit_fields
from handlers.format import lev
from storage.models import Agent


@dataclass(frozen=True, slots=True)
class StopTerms:
    """What decides whether an agent's stop triggers before liquidation."""

    agent: str
    venue: str
    leverage: Decimal
    stop: Decimal

    @classmethod
    def of(cls, agent: Agent) -> StopTerms:
        return cls(agent.name, agent.venue, agent.leverage, agent.stop_loss_pct)


def terms_of(data: dict[str, Any]) -> StopTerms | None:
    """The agent's terms as kept in a /deploy conversation (None in one begun before)."""
    if not data.get("agent_stop"):
        return None
    return StopTerms(
        data["agent"],
        data["agent_venue"],
        Decimal(data["agent_leverage"]),
        Decimal(data["agent_stop"]),
    )


def unreachable(
    ctx: Ctx, terms: StopTerms, chosen: Decimal
) -> tuple[Decimal, liquidation.StopLimit | None]:
    """(leverage trades would use, the limit the agent's stop breaks at it, if any). The
    leverage is the smallest of the user's choice, the agent's and the user's own cap."""
    user_max = ctx.settings.get("max_leverage")
    cap = Decimal(str(user_max)) if user_max else None
    leverage = effective_leverage(chosen, terms.leverage, cap)
    markets = agent_markets(ctx, terms.venue)
    return leverage, liquidation.unreachable_stop(terms.stop, leverage, markets)


def check_stop(ctx: Ctx, terms: StopTerms, chosen: Decimal) -> None:
    """Refuse a leverage at which the agent's stop loss sits at or past the liquidation
    price: the position would be liquidated before its stop could close it."""
    leverage, limit = unreachable(ctx, terms, chosen)
    if limit is None:
        return
    markets = agent_markets(ctx, terms.venue)
    best = liquidation.max_leverage_for_stop(terms.stop, markets, leverage)
    if best is None:  # explained at 1x, the lowest leverage there is
        at_one = liquidation.unreachable_stop(terms.stop, Decimal(1), markets) or limit
        fields = limit_fields(at_one, Decimal(1), terms.stop)
        raise UserError("deploy.stop_past_liquidation_always", agent=terms.agent, **fields)
    fields = limit_fields(limit, leverage, terms.stop)
    raise UserError(
        "deploy.stop_past_liquidation", agent=terms.agent, max_leverage=lev(best), **fields
    )
