"""Names that mean different assets on different venues, and how a call's name is resolved.

Hyperliquid's `SPX` is the SPX6900 memecoin; Ostium's `SPX` is the S&P 500 index. The name is
the same, the asset is not, so which one a call means is decided, in order:

1. by the post's own words: "S&P", "index", "stocks", "equities", "500" mean the index;
   "SPX6900", "meme", "memecoin", "token" mean the token (`meaning_in`, stored with the
   classification as `details["market_venue"]`, the venue whose asset it is);
2. else by the agent's venue: a HYPERLIQUID agent's "SPX" is the token, an OSTIUM agent's the
   index;
3. a MULTI agent with no context does not guess: no trade, with the reason stored
   ("SPX is ambiguous: the S&P 500 index or the SPX6900 token").

A call whose context names the other venue's asset is not traded on the agent's venue: a
HYPERLIQUID agent never buys SPX6900 for a call on the S&P 500. Names both venues list as the
same asset (BTC, ETH, SOL) are in SAME_ASSET; `tests/test_market_collisions.py` checks that
every name the recorded listings share is in one table or the other.
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from dataclasses import dataclass, replace
from typing import Any

from engine.classify.base import Classification


@dataclass(frozen=True, slots=True)
class Collision:
    name: str
    meanings: Mapping[str, str]  # venue -> the asset the name is there
    strong: Mapping[str, re.Pattern[str]]  # venue -> words that name its asset outright
    context: Mapping[str, re.Pattern[str]]  # venue -> words that lean to its asset

    def ambiguity(self) -> str:
        assets = " or ".join(self.meanings[v] for v in sorted(self.meanings, reverse=True))
        return f"{self.name} is ambiguous: {assets}"


def _words(pattern: str) -> re.Pattern[str]:
    return re.compile(pattern, re.IGNORECASE)


COLLISIONS: dict[str, Collision] = {
    "SPX": Collision(
        "SPX",
        {"HYPERLIQUID": "the SPX6900 token", "OSTIUM": "the S&P 500 index"},
        {
            "HYPERLIQUID": _words(r"spx\s?6900|\$?\b6900\b"),
            "OSTIUM": _words(r"\bs\s?&\s?p\b|\bs&p\s?500\b|\b(?:sp|spx|us)\s?500\b|\bspy\b"),
        },
        {
            "HYPERLIQUID": _words(r"\bmeme(?:coins?|s)?\b|\btokens?\b|\bcoins?\b|\bshitcoins?\b"),
            "OSTIUM": _words(
                r"\bindex\b|\bindices\b|\bstocks?\b|\bequit(?:y|ies)\b|\b500\b|\bfutures\b"
                r"|\bwall street\b|\bspoos\b"
            ),
        },
    )
}
# listed by both venues under one name, and the same asset on both
SAME_ASSET: frozenset[str] = frozenset({"BTC", "ETH", "SOL"})


def meaning_in(market: str | None, text: str) -> str | None:
    """The venue whose asset the post's words say `market` is; None when they don't say (or
    say both)."""
    collision = COLLISIONS.get(market or "")
    if collision is None:
        return None
    for table in (collision.strong, collision.context):
        said = [venue for venue, words in table.items() if words.search(text)]
        if len(said) == 1:
            return said[0]
        if said:
            return None  # both: the words don't decide
    return None


def with_meaning(result: Classification, text: str) -> Classification:
    """A call on a colliding name keeps which venue's asset its words mean."""
    if not result.is_signal or result.market not in COLLISIONS:
        return result
    venue = meaning_in(result.market, text)
    if venue is None:
        return result
    return replace(result, details={**result.details, "market_venue": venue})


@dataclass(frozen=True, slots=True)
class Resolved:
    venues: frozenset[str] | None  # the venues whose listing is the call's asset; None: any
    ambiguous: str | None = None  # why no venue may trade it (stored with the routing)


def resolve(market: str, details: Mapping[str, Any] | None, agent_venue: str) -> Resolved:
    """Which venues may trade a call on `market` for an agent trading on `agent_venue`."""
    collision = COLLISIONS.get(market)
    if collision is None:
        return Resolved(None)
    said = (details or {}).get("market_venue")
    if said in collision.meanings:
        return Resolved(frozenset({said}))
    if agent_venue in collision.meanings:  # the agent's venue's asset
        return Resolved(frozenset({agent_venue}))
    return Resolved(frozenset(), collision.ambiguity())
