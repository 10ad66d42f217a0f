"""How big an order is: collateral x leverage at the fill reference price, within every cap."""

from __future__ import annotations

from dataclasses import dataclass
from decimal import Decimal

from engine.markets import MarketInfo
from engine.venues.paper_books import round_size


@dataclass(frozen=True, slots=True)
class SizeDecision:
    size: Decimal
    leverage: Decimal
    notional: Decimal
    rejected: str | None = None  # reason code when no order can be placed


def effective_leverage(*caps: Decimal | None) -> Decimal:
    """The smallest of the leverages given (deployment, agent, user, market); None = no cap."""
    present = [c for c in caps if c is not None]
    if not present:
        raise ValueError("at least one leverage is required")
    return min(present)


def size_order(
    collateral_usd: Decimal,
    price: Decimal,
    market: MarketInfo,
    deployment_leverage: Decimal,
    agent_leverage: Decimal | None = None,
    user_max_leverage: Decimal | None = None,
) -> SizeDecision:
    lev = effective_leverage(
        deployment_leverage, agent_leverage, user_max_leverage, market.max_leverage
    )
    if collateral_usd <= 0 or lev <= 0:
        return SizeDecision(Decimal(0), lev, Decimal(0), "invalid_sizing")
    size = round_size(collateral_usd * lev / price, market.size_decimals)
    notional = size * price
    if size <= 0:
        return SizeDecision(size, lev, notional, "size_rounds_to_zero")
    if notional < market.min_notional:
        return SizeDecision(size, lev, notional, "below_min_notional")
    return SizeDecision(size, lev, notional)
