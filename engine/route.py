"""Route: which venue a signal trades on, decided once and stored with its reasons."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

from engine.markets import MarketInfo

DEFAULT_PREFERENCE = ("HYPERLIQUID", "OSTIUM")


@dataclass(frozen=True, slots=True)
class RouteDecision:
    venue: str | None
    # listed / first_preference_listing / not_listed / not_listed_anywhere / no_price /
    # ambiguous_market (engine/classify/collisions.py)
    reason: str
    candidates: list[dict[str, Any]] = field(default_factory=list)


def decide_venue(
    agent_venue: str,
    preference: Sequence[str] | None,
    market: str,
    listings: Mapping[str, Mapping[str, MarketInfo]],
    has_price: bool,
) -> RouteDecision:
    if agent_venue == "MULTI":
        order = [v for v in (preference or DEFAULT_PREFERENCE) if v in listings] or list(listings)
    else:
        order = [agent_venue]
    candidates = [{"venue": v, "lists_market": market in listings.get(v, {})} for v in order]
    chosen = next((c["venue"] for c in candidates if c["lists_market"]), None)
    if chosen is None:
        reason = "not_listed" if agent_venue != "MULTI" else "not_listed_anywhere"
        return RouteDecision(None, reason, candidates)
    if not has_price:
        return RouteDecision(None, "no_price", candidates)
    reason = "listed" if agent_venue != "MULTI" else "first_preference_listing"
    return RouteDecision(chosen, reason, candidates)
