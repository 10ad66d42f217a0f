"""A restarted paper venue builds each restored holding when it is first needed (an order of
its account, a question about its liquidation price, the mark coming near its liquidation
price: engine/venues/paper_pending.py). It must answer exactly as a venue that built every
holding at start: the same fills, fees, margins, liquidations and liquidation prices, on
random books (several markets per account, both sides of a market, unknown leverage, signals
whose followers share entry and leverage) and random paths."""

from __future__ import annotations

import random
from datetime import UTC, datetime
from decimal import Decimal
from typing import Any

from hypothesis import given, settings
from hypothesis import strategies as st

from engine.markets import default_markets
from engine.prices import PriceBook, PriceTick
from engine.venues.base import OrderRequest, VenueRejected
from engine.venues.paper import PaperVenue

D = Decimal
NOW = datetime(2026, 11, 20, 10, tzinfo=UTC)
START = {"ETH": D(2000), "BTC": D(90000)}


def _venue() -> tuple[PaperVenue, PriceBook]:
    prices = PriceBook()
    for market, price in START.items():
        prices.update(PriceTick(NOW, market, price))
    return PaperVenue("HYPERLIQUID", default_markets(), prices, starting_balance=D(1000)), prices


def _book(rng: random.Random) -> list[tuple[Any, ...]]:
    rows: list[tuple[Any, ...]] = []
    for _ in range(rng.randint(1, 12)):  # signals: followers share market, side, entry, lev
        market = rng.choice(list(START))
        side = rng.choice(["long", "short"])
        entry = START[market] * D(rng.choice(["0.97", "0.99", "1", "1.02"]))
        leverage = rng.choice([None, D(1), D(3), D(10), D(25), D(40)])
        for _ in range(rng.randint(1, 6)):
            account = f"paper:{rng.randint(1, 8)}:1"
            size = D(rng.randint(1, 400)) / D(100)
            rows.append((account, market, side, size, entry, *([leverage] if leverage else [])))
    return rows


def _state(venue: PaperVenue) -> dict[str, Any]:
    for account in [f"paper:{i}:1" for i in range(1, 9)]:
        venue.account(account)  # build whatever is still pending
    return {
        name: (
            acc.balance,
            {k: (h.size, h.entry, h.margin, h.liquidated_at) for k, h in acc.positions.items()},
        )
        for name, acc in venue.accounts.items()
        if acc.positions or acc.balance != D(1000)
    }


def _drive(venue: PaperVenue, prices: PriceBook, rng: random.Random) -> list[Any]:
    """Random ticks, orders and questions; everything the venue answers."""
    seen: list[Any] = []
    for step in range(60):
        market = rng.choice(list(START))
        price = START[market] * (1 + D(rng.randint(-60, 60)) / D(100))
        prices.update(PriceTick(NOW, market, price))
        seen.append(
            [(h.account, h.side, h.size, h.price) for h in venue.liquidations(market, price)]
        )
        account = f"paper:{rng.randint(1, 8)}:1"
        what = rng.random()
        if what < 0.4:
            side = rng.choice(["long", "short"])
            order = OrderRequest(
                f"o{step}",
                account,
                market,
                side,
                D(rng.randint(1, 300)) / D(100),
                D(5),
                reduce_only=rng.random() < 0.5,
            )
            try:
                fill = venue.fill(order)
                seen.append((fill.price, fill.size, fill.fee))
            except VenueRejected as refused:
                seen.append(refused.reason)
        elif what < 0.6:
            seen.append(venue.liquidation_price(account, market, rng.choice(["long", "short"])))
    return seen


def _compare(seed: int) -> None:
    rng = random.Random(seed)
    rows = _book(rng)
    lazy, lazy_prices = _venue()
    lazy.restore(rows[: len(rows) // 2])  # in pages, as start-up reads them
    lazy.restore(rows[len(rows) // 2 :], more=True)
    eager, eager_prices = _venue()
    for account, market, side, size, entry, *rest in rows:  # every holding built at start
        eager._restore_one((account, market, side, size, entry, rest[0] if rest else None))
    path = rng.getstate()
    got = _drive(lazy, lazy_prices, rng)
    rng.setstate(path)
    assert got == _drive(eager, eager_prices, rng), f"seed {seed}"
    assert _state(lazy) == _state(eager), f"seed {seed}"


def test_lazily_restored_paper_books_answer_as_eagerly_restored_ones() -> None:
    for seed in range(150):
        _compare(seed)


@settings(max_examples=80, deadline=None)
@given(st.integers(min_value=0, max_value=10**9))
def test_lazy_restore_property(seed: int) -> None:
    _compare(seed)


def test_a_restored_holding_waits_until_needed_and_a_second_restore_changes_nothing() -> None:
    venue, _ = _venue()
    venue.restore([(f"paper:{i}:1", "ETH", "long", D(1), D(2000), D(10)) for i in range(1, 1001)])
    venue.restore([("paper:1:1", "ETH", "long", D(5), D(2000), D(10))])  # a second start
    assert venue.accounts == {}  # nothing built at start
    assert venue.liquidations("ETH", D(1900)) == []  # far from 10x's liquidation: still nothing
    assert venue.accounts == {}
    assert venue.account("paper:7:1").size("ETH", "long") == D(1)
    assert list(venue.accounts) == ["paper:7:1"]
    hit = venue.liquidations("ETH", D(1800))  # below 1818.18: every holding, built now
    assert len(hit) == 1000 and {h.size for h in hit} == {D(1)}
