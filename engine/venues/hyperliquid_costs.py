"""What a round trip costs on Hyperliquid beyond its taker fees, for MULTI routing: funding
over the holding time and crossing the book for this size.

- Funding: `metaAndAssetCtxs` gives every coin's current funding rate, a fraction of the
  notional per hour (positive: longs pay shorts, so a long's cost and a short's income).
- Spread and price impact: `l2Book` of the coin; the open walks one side of the book for the
  order's notional and the close walks the other, so the round trip pays their average prices'
  gap (the best bid/ask spread, plus the impact of going deeper than the top level).

Routing runs inside a database transaction and makes no network call: `refresh(market)` reads
both before (engine/route_cost.prepare_costs), and routing uses what it read. A book older than
BOOK_TTL is not used (the spread is then unknown: counted as zero, said as "no_book")."""

from __future__ import annotations

import time
import weakref
from dataclasses import dataclass, field
from decimal import Decimal
from typing import Any

Levels = list[tuple[Decimal, Decimal]]  # (price, size in coin)
BOOK_TTL = 60.0  # seconds a book read before routing stays usable


@dataclass(frozen=True, slots=True)
class Crossing:
    spread: Decimal  # (best ask - best bid) / mid
    impact: Decimal  # what walking deeper than the top adds, both legs, / mid
    fillable: bool  # the book holds the whole size on both sides


@dataclass
class HyperliquidCosts:
    venue: Any  # engine/venues/hyperliquid.HyperliquidVenue (its rate-limited `info`)
    funding: dict[str, Decimal] = field(default_factory=dict)  # per hour
    books: dict[str, tuple[float, Levels, Levels]] = field(default_factory=dict)

    async def refresh(self, market: str) -> None:
        meta, ctxs = await self.venue.info("metaAndAssetCtxs", {})
        for asset, ctx in zip(meta["universe"], ctxs, strict=False):
            if ctx.get("funding") is not None:
                self.funding[asset["name"]] = Decimal(ctx["funding"])
        book = await self.venue.info("l2Book", {"coin": market})
        if book:  # HL answers null for a coin it does not list
            bids, asks = (
                [(Decimal(lv["px"]), Decimal(lv["sz"])) for lv in side] for side in book["levels"]
            )
            self.books[market] = (time.monotonic(), bids, asks)

    def funding_per_hour(self, market: str, side: str) -> Decimal:
        """What holding costs per hour, a fraction of the notional (negative: received)."""
        rate = self.funding.get(market, Decimal(0))
        return rate if side == "long" else -rate

    def crossing(self, market: str, notional: Decimal) -> Crossing | None:
        found = self.books.get(market)
        if found is None or time.monotonic() - found[0] > BOOK_TTL:
            return None
        _, bids, asks = found
        if not bids or not asks:
            return Crossing(Decimal(0), Decimal(0), False)
        best_bid, best_ask = bids[0][0], asks[0][0]
        mid = (best_bid + best_ask) / 2
        buy, buy_ok = average_price(asks, notional)
        sell, sell_ok = average_price(bids, notional)
        spread = (best_ask - best_bid) / mid
        return Crossing(spread, (buy - sell) / mid - spread, buy_ok and sell_ok)


def average_price(levels: Levels, notional: Decimal) -> tuple[Decimal, bool]:
    """The average price of taking `notional` USD from these levels (best first), and whether
    they hold it all (if not, the average of all of them)."""
    if notional <= 0:
        return levels[0][0], True
    left, coins, spent = notional, Decimal(0), Decimal(0)
    for px, sz in levels:
        take = min(sz, left / px)
        coins += take
        spent += take * px
        left -= take * px
        if left <= 0:
            return spent / coins, True
    return (spent / coins if coins else levels[0][0]), False


_costs: weakref.WeakKeyDictionary[Any, HyperliquidCosts] = weakref.WeakKeyDictionary()


def costs_of(venue: Any) -> HyperliquidCosts:
    """The venue's cost reads (one per venue object, kept while it lives)."""
    found = _costs.get(venue)
    if found is None:
        found = _costs[venue] = HyperliquidCosts(venue)
    return found
