"""The paper venue's fills are undone when the transaction recording them rolls back
(engine/venues/paper_undo.py): balances, holdings, fees, liquidation prices, the client order
ids it remembers and the limit entries left resting are exactly as before."""

from __future__ import annotations

import asyncio
from collections.abc import Callable
from datetime import UTC, datetime
from decimal import Decimal
from typing import Any

import pytest

from engine.markets import hyperliquid_markets
from engine.orders import KeyedSequencer
from engine.prices import PriceBook, PriceTick
from engine.venues.base import Fill, OrderRequest, OrderResting, VenueRejected
from engine.venues.paper import PaperVenue
from engine.venues.paper_undo import PaperUndo

D = Decimal
NOW = datetime(2026, 11, 20, 10, tzinfo=UTC)


def paper(price: str = "2000") -> tuple[PaperVenue, PriceBook]:
    prices = PriceBook()
    prices.update(PriceTick(NOW, "ETH", D(price)))
    prices.update(PriceTick(NOW, "SOL", D("100")))
    return PaperVenue(
        "HYPERLIQUID", hyperliquid_markets(), prices, starting_balance=D(1000)
    ), prices


def order(
    cid: str, account: str, side: str, size: str, close: bool = False, market: str = "ETH"
) -> OrderRequest:
    return OrderRequest(cid, account, market, side, D(size), D(5), reduce_only=close)


def books(venue: PaperVenue, level: Callable[..., Any] | None = None) -> dict[str, Any]:
    """Everything the paper venue knows, as plain values. `level(venue, account, market,
    side)`: a holding's liquidation price (the venue's own by default)."""
    level = level or (lambda v, *held: v.liquidation_price(*held))
    return {
        "accounts": {
            name: (
                acc.balance,
                {k: (h.size, h.entry, h.margin, h.liquidated_at) for k, h in acc.positions.items()},
                {(m, side): level(venue, name, m, side) for (m, side) in acc.positions},
            )
            for name, acc in venue.accounts.items()
        },
        "fills": dict(venue._fills),
        "resting": dict(venue._resting),
        "watch": {m: dict(w) for m, w in venue._watch.items() if w},
        "liquidating": {m: set(x) for m, x in venue._liquidating.items() if x},
    }


def test_a_rollback_after_fills_leaves_the_books_exactly_as_before() -> None:
    venue, _ = paper()
    venue.fill(order("a1", "paper:a", "long", "0.5"))
    venue.fill(order("b1", "paper:b", "short", "0.3"))
    venue.fill(order("b2", "paper:b", "long", "1", market="SOL"))
    before = books(venue)
    with pytest.raises(RuntimeError), PaperUndo():
        venue.fill(order("a2", "paper:a", "long", "0.25"))  # adds to a holding
        venue.fill(order("b3", "paper:b", "long", "0.5"))  # flips a short into a long
        venue.fill(order("b4", "paper:b", "long", "1", close=True, market="SOL"))  # closes
        venue.fill(order("c1", "paper:c", "long", "0.1"))  # a new account
        with pytest.raises(VenueRejected):  # refused: nothing to undo, nothing broken
            venue.fill(order("c2", "paper:c", "short", "0.1", close=True))
        resting = OrderRequest(
            "c3", "paper:c", "ETH", "long", D("0.1"), D(5), limit_price=D(1500), resting=True
        )
        with pytest.raises(OrderResting):
            venue.fill(resting)
        assert books(venue) != before
        raise RuntimeError("the recording transaction failed")
    assert books(venue) == before
    # the same client order ids fill anew, once: nothing of the undone fills is remembered
    again = venue.fill(order("a2", "paper:a", "long", "0.25"))
    assert venue.fill(order("a2", "paper:a", "long", "0.25")) is again
    assert venue.accounts["paper:a"].size("ETH", "long") == D("0.75")


def test_a_scope_that_commits_keeps_its_fills() -> None:
    venue, _ = paper()
    with PaperUndo():
        fill = venue.fill(order("a1", "paper:a", "long", "0.5"))
    assert venue.accounts["paper:a"].balance == D(1000) - fill.fee
    assert venue.accounts["paper:a"].size("ETH", "long") == D("0.5")


async def test_a_fill_outside_the_scope_meanwhile_keeps_its_own_balance_change() -> None:
    """A balance is per account, across markets: what another task's fill changed while
    the scope was open stays; only the scope's own change is taken back."""
    venue, _ = paper()
    venue.fill(order("s1", "paper:a", "long", "1", market="SOL"))
    go, went = asyncio.Event(), asyncio.Event()

    async def another_task() -> Fill:
        await go.wait()
        closed = venue.fill(order("s2", "paper:a", "long", "1", close=True, market="SOL"))
        went.set()
        return closed

    other = asyncio.create_task(another_task())  # started outside the scope
    with pytest.raises(RuntimeError), PaperUndo():
        opened = venue.fill(order("a1", "paper:a", "long", "0.5"))
        go.set()
        await went.wait()
        after_close = venue.accounts["paper:a"].balance
        raise RuntimeError("rolled back")
    closed = await other
    assert opened.fee > 0 and closed.fee > 0
    assert venue.accounts["paper:a"].balance == after_close + opened.fee
    assert venue.accounts["paper:a"].size("ETH", "long") == 0
    assert "s2" in venue._fills and "a1" not in venue._fills


async def test_a_held_key_makes_a_turn_wait_and_a_busy_key_cannot_be_held() -> None:
    seq = KeyedSequencer()
    key = ("HYPERLIQUID", "paper:a", "ETH")
    done = seq.hold([key])
    assert done is not None and seq.hold([key]) is None
    order: list[str] = []

    async def send() -> None:
        async with seq.turn(key):
            order.append("sent")

    task = asyncio.create_task(send())
    await asyncio.sleep(0.01)
    assert order == []  # waits for the batch holding its key
    order.append("committed")
    seq.release([key], done)
    await task
    assert order == ["committed", "sent"] and len(seq) == 0

    async with seq.turn(key):  # an order on its way: its key cannot be held meanwhile
        assert seq.hold([key, ("HYPERLIQUID", "paper:b", "ETH")]) is None
    assert seq.hold([key]) is not None
