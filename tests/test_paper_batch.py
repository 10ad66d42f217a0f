"""The paper venue's batch fills (engine/venues/paper_batch.py) answer and book exactly what
`fill` does one order at a time, in order: the same fills, refusals, balances, holdings,
liquidation watch, and the same undo when the transaction recording them rolls back. Random
batches mix what the shortcut serves (fresh opens, whole closes) with everything it leaves
to `fill` (adds, flips, partial closes, liquidated holdings, limits, repeats, refusals)."""

from __future__ import annotations

import random
from datetime import UTC, datetime
from decimal import Decimal
from typing import Any

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from engine.markets import MarketInfo, hyperliquid_markets
from engine.prices import PriceBook, PriceTick
from engine.venues.base import Fill, OrderRequest
from engine.venues.paper import PaperVenue
from engine.venues.paper_undo import PaperUndo
from tests.test_paper_undo import books as undo_books

D = Decimal
NOW = datetime(2026, 11, 29, 12, tzinfo=UTC)
MARKETS = ("ETH", "SOL", "BTC")
# BAD: a listing whose maintenance margin rate is out of range, so working out where a
# holding of it is liquidated raises (after `fill` has booked it)
START = {"ETH": D("2000"), "SOL": D("100"), "BTC": D("60000"), "BAD": D("10")}


def _level(venue: PaperVenue, name: str, market: str, side: str) -> Any:
    try:
        return venue.liquidation_price(name, market, side)
    except ValueError as exc:  # a BAD holding has none that can be worked out
        return str(exc)


def books(venue: PaperVenue) -> dict[str, Any]:
    return undo_books(venue, _level)


def _venue() -> tuple[PaperVenue, PriceBook]:
    prices = PriceBook()
    for market, price in START.items():
        prices.update(PriceTick(NOW, market, price))
    markets = hyperliquid_markets() | {"BAD": MarketInfo("BAD", maintenance_margin_rate=D(2))}
    return PaperVenue("HYPERLIQUID", markets, prices, starting_balance=D(1000)), prices


def _request(rng: random.Random, n: int, accounts: list[str]) -> OrderRequest:
    market = rng.choice((*MARKETS, "NOPE")) if rng.random() < 0.05 else rng.choice(MARKETS)
    # NaN: a size that does not even compare, refused by the order alone
    size = rng.choice((D("0.5"), D("1"), D("1.0"), D("2.25"), D("0"), D("3"), D("NaN")))
    return OrderRequest(
        f"c{n}" if rng.random() > 0.05 else f"c{rng.randrange(max(n, 1))}",  # some repeats
        rng.choice(accounts),
        market,
        rng.choice(("long", "short")),
        size,
        rng.choice((D(1), D(3), D(20), D(40))),
        reduce_only=rng.random() < 0.4,
        limit_price=START.get(market, D(1)) * D("0.9") if rng.random() < 0.05 else None,
    )


def _prepare(venue: PaperVenue, prices: PriceBook, seed: int) -> None:
    """The same books on every venue given the same seed: restored holdings (some built
    lazily), fills, and a price move that liquidates some."""
    rng = random.Random(seed)
    accounts = [f"paper:{i}" for i in range(12)]
    restored = []
    for name in accounts[:6]:
        market = rng.choice(MARKETS[:3])
        size = rng.choice((D("1.5"), D("1.5"), D("0")))  # a holding of nothing: closes fail
        restored.append((name, market, rng.choice(("long", "short")), size, START[market], D(20)))
    venue.restore(restored)
    _one_by_one(venue, [_request(rng, 10_000 + n, accounts) for n in range(15)])
    moved = START["SOL"] * rng.choice((D("0.9"), D("1"), D("1.1")))
    prices.update(PriceTick(NOW, "SOL", moved))
    venue.liquidations("SOL", moved)


def _one_by_one(venue: PaperVenue, orders: list[OrderRequest]) -> list[Any]:
    out: list[Any] = []
    for o in orders:
        try:
            out.append(venue.fill(o))
        except Exception as exc:
            out.append(exc)
    return out


def _plain(result: Fill | Exception) -> Any:
    if isinstance(result, Fill):
        return result
    return (type(result).__name__, getattr(result, "reason", None), str(result))


def test_orders_that_raise_are_answered_in_their_place_and_the_rest_fill() -> None:
    venue, _ = _venue()
    venue.restore([("paper:z", "ETH", "long", D(0), D(2000), D(20))])
    orders = [
        OrderRequest("a", "paper:a", "ETH", "long", D("NaN"), D(3)),
        OrderRequest("b", "paper:b", "BAD", "long", D(1), D(3)),
        OrderRequest("z", "paper:z", "ETH", "long", D(1), D(3), reduce_only=True),
        OrderRequest("c", "paper:c", "ETH", "long", D(1), D(3)),
    ]
    one, _ = _venue()
    one.restore([("paper:z", "ETH", "long", D(0), D(2000), D(20))])
    expected = _one_by_one(one, orders)
    got = venue.fill_many(orders)
    assert [type(r).__name__ for r in got] == [
        "InvalidOperation", "ValueError", "InvalidOperation", "Fill",
    ]  # fmt: skip
    assert [_plain(r) for r in got] == [_plain(r) for r in expected]
    assert books(venue) == books(one)
    assert venue.accounts["paper:c"].positions[("ETH", "long")].size == 1


def _compare(seed: int, rollback: bool) -> None:
    rng = random.Random(seed)
    accounts = [f"paper:{i}" for i in range(rng.choice((3, 12, 20)))]
    orders = [_request(rng, n, accounts) for n in range(rng.randrange(1, 60))]
    (one, one_prices), (many, many_prices) = _venue(), _venue()
    _prepare(one, one_prices, seed)
    _prepare(many, many_prices, seed)
    before = books(many)
    assert books(one) == before
    with PaperUndo() as undo_one:
        expected = _one_by_one(one, orders)
        with PaperUndo() as undo_many:
            got = many.fill_many(orders)
        assert [_plain(r) for r in got] == [_plain(r) for r in expected]
        assert books(many) == books(one)
        for market in MARKETS:
            assert many.liquidations(market, START[market]) == one.liquidations(
                market, START[market]
            )
        if rollback:
            undo_one.undo()
            undo_many.undo()
            # as one by one (restored holdings an order touched stay built, on both)
            assert books(many) == books(one)


@pytest.mark.parametrize("seed", range(40))
def test_a_batch_fills_and_books_what_one_by_one_does(seed: int) -> None:
    _compare(seed, rollback=seed % 2 == 0)


@settings(max_examples=60, deadline=None)
@given(st.integers(0, 10**9), st.booleans())
def test_batch_fills_property(seed: int, rollback: bool) -> None:
    _compare(seed, rollback)


def test_a_fan_out_of_fresh_opens_shares_its_terms_and_books_each_account() -> None:
    venue, _ = _venue()
    orders = [
        OrderRequest(f"o{i}", f"paper:{i}", "ETH", "long", D("0.15"), D(3)) for i in range(500)
    ]
    fills = venue.fill_many(orders)
    assert all(isinstance(f, Fill) for f in fills)
    assert len({f.venue_order_id for f in fills if isinstance(f, Fill)}) == 500
    price = D("2000") * (1 + D(5) / 10_000)  # the mark plus 5 bps of slippage
    assert {(f.price, f.size) for f in fills if isinstance(f, Fill)} == {(price, D("0.15"))}
    assert venue.accounts["paper:499"].positions[("ETH", "long")].size == D("0.15")
    # each one is watched for liquidation, and a repeat answers the first fill
    assert len(venue._watch["ETH"]) == 500
    assert venue.fill_many(orders[:1]) == fills[:1]
    # a whole close of each, in a batch, at a lower mark: PnL on every balance
    closes = [
        OrderRequest(f"x{i}", f"paper:{i}", "ETH", "long", D("0.15"), D(3), reduce_only=True)
        for i in range(500)
    ]
    venue._prices.update(PriceTick(NOW, "ETH", D("1900")))
    closed = venue.fill_many(closes)
    assert all(isinstance(f, Fill) for f in closed)
    assert not venue._watch["ETH"]
    assert all(not venue.accounts[f"paper:{i}"].positions for i in range(500))
    balance = venue.accounts["paper:7"].balance
    assert balance < 1000 - D("0.15") * 100  # lost the move, and paid two fees
