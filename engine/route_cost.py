"""MULTI routing by cost: for each venue that lists the market, the expected cost of the
round trip for this size, as a fraction of the notional: opening and closing fees, funding or
rollover over the agent's typical holding time (the median of its own closed positions, a day
without history; Hyperliquid's funding is signed by the side: a long pays a positive rate, a
short receives it), the spread and the price impact of this size (Hyperliquid: its l2Book;
Ostium: its quotes); whether the size meets the venue's minimum and leverage
bounds; and whether the agent's live users have an account there. The cheapest eligible venue
wins; every candidate is stored with its cost (routing_decisions.candidates).

Venue terms come from what the venues hold in memory (listings, fee rates, the last quotes,
and what `prepare_costs` read just before): routing runs inside the routing transaction and
makes no network call."""

from __future__ import annotations

import logging
import statistics
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from datetime import timedelta
from decimal import Decimal
from typing import Any

from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncSession

from engine.execute import DeploymentTerms, active_deployments
from engine.route import RouteDecision
from engine.venues.cost_terms import CostTerms
from engine.venues.hyperliquid_costs import costs_of
from storage.enums import PositionStatus
from storage.models import Agent, AgentKey, Deployment, Position, RoutingDecision, Signal

log = logging.getLogger(__name__)
BPS = Decimal(10_000)
PCT = Decimal("0.0001")  # costs are stored as percents to 4 decimals
DEFAULT_HOLDING = timedelta(hours=24)
HISTORY = 50  # closed positions the typical holding time is taken from


@dataclass(frozen=True, slots=True)
class TradeShape:
    notional: Decimal
    leverage: Decimal
    holding: timedelta


def terms_of(venue: Any, market: str, shape: TradeShape, side: str) -> CostTerms | None:
    """The venue's own `cost_terms` (Ostium), Hyperliquid's taker fees with the funding and
    book read before routing (engine/venues/hyperliquid_costs.py), or the paper venue's fee
    model."""
    own = getattr(venue, "cost_terms", None)
    if own is not None:
        return own(market)
    info = venue.markets().get(market)
    if info is None:
        return None
    config = getattr(venue, "config", None)
    if hasattr(config, "taker_fee_bps"):  # Hyperliquid: taker both ways, funding, the book
        taker = config.taker_fee_bps / BPS
        costs = costs_of(getattr(venue, "live", venue))
        crossing = costs.crossing(market, shape.notional)
        return CostTerms(
            taker,
            taker,
            costs.funding_per_hour(market, side),
            crossing.spread if crossing else Decimal(0),
            info.min_notional,
            Decimal(1),
            info.max_leverage,
            crossing.impact if crossing else Decimal(0),
            crossing is not None and not crossing.fillable,
        )
    fees = getattr(venue, "fees", None)
    taker = fees.taker_bps / BPS if fees is not None else Decimal(0)
    slippage = fees.slippage_bps / BPS if fees is not None else Decimal(0)
    return CostTerms(
        taker, taker, Decimal(0), 2 * slippage, info.min_notional, Decimal(1), info.max_leverage
    )


async def prepare_costs(venues: Mapping[str, Any], market: str) -> None:
    """Before the routing transaction (which makes no network call): Hyperliquid's funding
    rates and this market's book, Ostium's quotes. A venue that does not answer is routed on
    what it answered last."""
    for name, venue in venues.items():
        live = getattr(venue, "live", venue)
        try:
            if hasattr(getattr(live, "config", None), "taker_fee_bps"):
                if market in live.markets():
                    await costs_of(live).refresh(market)
            elif hasattr(live, "quotes") and market in live.markets():
                await live.quotes()
        except Exception as exc:
            log.warning("routing costs of %s unavailable: %r", name, exc)


async def routes_by_cost(s: AsyncSession, signal_ids: list[int]) -> bool:
    """Whether any of these signals is a MULTI agent's not yet routed (it needs
    `prepare_costs`)."""
    if not signal_ids:
        return False
    found = await s.execute(
        select(Signal.id)
        .join(Agent, Agent.id == Signal.agent_id)
        .outerjoin(RoutingDecision, RoutingDecision.signal_id == Signal.id)
        .where(Signal.id.in_(signal_ids), Agent.venue == "MULTI", RoutingDecision.id.is_(None))
        .limit(1)
    )
    return found.first() is not None


def pct(fraction: Decimal) -> str:
    return str((fraction * 100).quantize(PCT))


def quote(venue: str, terms: CostTerms, shape: TradeShape, has_account: bool) -> dict[str, Any]:
    """One candidate with every part of its cost, in percent of the notional."""
    hours = Decimal(shape.holding.total_seconds()) / 3600
    fees = terms.open_fee + terms.close_fee
    holding = terms.holding_per_hour * hours
    cost = fees + holding + terms.spread + terms.impact
    why = ""
    if shape.notional < terms.min_notional:
        why = "below_min"
    elif not terms.min_leverage <= shape.leverage <= terms.max_leverage:
        why = "leverage_out_of_bounds"
    elif terms.too_thin:
        why = "book_too_thin"
    elif not has_account:
        why = "no_account"
    return {
        "venue": venue,
        "lists_market": True,
        "eligible": why == "",
        "why": why,
        "cost_pct": pct(cost),
        "fees_pct": pct(fees),
        "holding_pct": pct(holding),
        "holding_per_hour_pct": str((terms.holding_per_hour * 100).quantize(Decimal("1e-8"))),
        "spread_pct": pct(terms.spread),
        "impact_pct": pct(terms.impact),
        "min_notional": str(terms.min_notional),
        "notional": str(shape.notional),
        "holding_hours": str(hours.quantize(Decimal("0.01"))),
    }


def cheapest(candidates: Sequence[Mapping[str, Any]]) -> tuple[str | None, str, Decimal]:
    """(venue, reason, how much cheaper than the next eligible, in percent of notional)."""
    eligible = sorted(
        (c for c in candidates if c.get("eligible")), key=lambda c: Decimal(c["cost_pct"])
    )
    if not eligible:
        return None, "no_eligible_venue", Decimal(0)
    if len(eligible) == 1:
        return eligible[0]["venue"], "only_eligible", Decimal(0)
    saving = Decimal(eligible[1]["cost_pct"]) - Decimal(eligible[0]["cost_pct"])
    if saving == 0:  # a tie: the agent's preference order decides (the sort kept it)
        return eligible[0]["venue"], "first_preference_listing", saving
    return eligible[0]["venue"], "cheapest", saving


async def trade_shape(
    s: AsyncSession, agent_id: int, agent_leverage: Decimal | None, deps: list[DeploymentTerms]
) -> TradeShape:
    """The agent's typical order (the median deployment's) and holding time."""
    if deps:
        sized = sorted(
            (
                d.collateral_usd * min(d.leverage, agent_leverage or d.leverage),
                min(d.leverage, agent_leverage or d.leverage),
            )
            for d in deps
        )
        notional, leverage = sized[len(sized) // 2]
    else:
        leverage = agent_leverage or Decimal(1)
        notional = Decimal(0)
    rows = await s.execute(
        select(Position.opened_at, Position.closed_at)
        .join(Deployment, Deployment.id == Position.deployment_id)
        .where(Deployment.agent_id == agent_id, Position.status == PositionStatus.CLOSED)
        .order_by(Position.id.desc())
        .limit(HISTORY)
    )
    held = [c - o for o, c in rows if o is not None and c is not None]
    holding = statistics.median(held) if held else DEFAULT_HOLDING
    return TradeShape(notional, leverage, holding)


async def venues_with_accounts(
    s: AsyncSession, deps: list[DeploymentTerms], venues: Sequence[str]
) -> set[str]:
    """Venues where every live deployment's user has Maxxit's key (Hyperliquid: approved;
    Ostium: made, its delegation checked on chain when the order goes). Paper needs none."""
    live_users = {d.user_id for d in deps if not d.account.startswith("paper:")}
    if not live_users:
        return set(venues)
    rows = await s.execute(
        select(AgentKey.user_id, AgentKey.venue, AgentKey.approved_at).where(
            AgentKey.user_id.in_(live_users), AgentKey.venue.in_(list(venues))
        )
    )
    have: dict[str, set[int]] = {v: set() for v in venues}
    for user_id, venue, approved_at in rows:
        if venue != "HYPERLIQUID" or approved_at is not None:
            have[venue].add(user_id)
    return {v for v in venues if live_users <= have[v]}


async def route_by_cost(
    s: AsyncSession,
    agent: Any,
    market: str,
    venues: Mapping[str, Any],
    decision: RouteDecision,
    side: str = "long",
) -> RouteDecision:
    """A MULTI decision among the venues that list the market, by cost; the candidates keep
    every venue's quote (and those that do not list it, as decided before)."""
    listing = [c["venue"] for c in decision.candidates if c["lists_market"]]
    if decision.venue is None or not listing:
        return decision
    deps = await active_deployments(s, agent.id)
    shape = await trade_shape(s, agent.id, agent.leverage, deps)
    with_accounts = await venues_with_accounts(s, deps, listing)
    quotes: dict[str, dict[str, Any]] = {}
    for name in listing:
        terms = terms_of(venues[name], market, shape, side)
        if terms is not None:
            quotes[name] = quote(name, terms, shape, name in with_accounts)
    candidates = [quotes.get(c["venue"], c) for c in decision.candidates]
    if len(listing) == 1:
        return RouteDecision(decision.venue, decision.reason, candidates)  # nothing to choose
    venue, reason, saving = cheapest(candidates)
    if venue is None:
        # none eligible: the preferred listing still trades, and its refusal tells the user
        # why (below the minimum, no account there)
        return RouteDecision(decision.venue, reason, candidates)
    if reason == "cheapest":
        for c in candidates:
            if c["venue"] == venue:
                c["saving_pct"] = str(saving)
    return RouteDecision(venue, reason, candidates)
