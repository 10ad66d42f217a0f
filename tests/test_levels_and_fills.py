"""Trailing-stop math for longs and shorts, gaps through the stop, fees, PnL, profit share."""

from __future__ import annotations

from decimal import Decimal

import pytest

from engine.billing import ShareTerms, profit_share_rows
from engine.levels import RiskLevels, RiskParams
from engine.markets import MarketInfo
from engine.prices import PriceBook, PriceTick
from engine.venues.base import OrderRequest, VenueRejected
from engine.venues.paper import FeeConfig, PaperVenue

D = Decimal
TRAIL = RiskParams(D("0.03"), None, D("0.02"), D("0.01"))


def run(levels: RiskLevels, prices: list[str]) -> tuple[str | None, str | None]:
    for p in prices:
        reason = levels.step(D(p))
        if reason:
            return reason, p
    return None, None


def test_long_stop_loss_when_trailing_never_activated() -> None:
    lv = RiskLevels.initial("long", D(100), TRAIL)
    assert lv.stop == D("97.00")
    assert run(lv, ["101", "99", "97.5", "97"]) == ("stop_loss", "97")


def test_long_trailing_activates_then_follows_the_peak() -> None:
    lv = RiskLevels.initial("long", D(100), TRAIL)
    assert run(lv, ["101.9"]) == (None, None)
    assert not lv.trailing_active
    assert run(lv, ["102"]) == (None, None)  # activation at entry x 1.02
    assert lv.trailing_active and lv.stop == D("100.98")
    assert run(lv, ["110", "109"]) == (None, None)
    assert lv.stop == D("108.90")  # 110 x 0.99
    assert run(lv, ["108.95", "108.90"]) == ("trailing_stop", "108.90")


def test_long_gap_through_the_stop_closes_at_the_gap_price() -> None:
    lv = RiskLevels.initial("long", D(100), TRAIL)
    assert run(lv, ["99", "90"]) == ("stop_loss", "90")


def test_short_mirrors_every_level() -> None:
    lv = RiskLevels.initial("short", D(100), TRAIL)
    assert lv.stop == D("103.00")
    assert run(lv, ["98", "95"]) == (None, None)
    assert lv.trailing_active and lv.stop == D("95.95")  # trough 95 x 1.01
    assert run(lv, ["96.5"]) == ("trailing_stop", "96.5")  # gap above the stop


def test_short_stop_loss_and_take_profit() -> None:
    p = RiskParams(D("0.02"), D("0.05"))
    assert run(RiskLevels.initial("short", D(200), p), ["203", "204"]) == ("stop_loss", "204")
    assert run(RiskLevels.initial("short", D(200), p), ["195", "190"]) == ("take_profit", "190")


def test_take_profit_wins_when_reached() -> None:
    p = RiskParams(D("0.03"), D("0.05"), D("0.02"), D("0.01"))
    lv = RiskLevels.initial("long", D(100), p)
    assert run(lv, ["103", "106"]) == ("take_profit", "106")


def _venue(taker: str = "4.5", slip: str = "5") -> tuple[PaperVenue, PriceBook]:
    book = PriceBook()
    return PaperVenue(
        "HYPERLIQUID", {"ETH": MarketInfo("ETH", 4)}, book, FeeConfig(D(taker), D(slip))
    ), book


def _tick(book: PriceBook, price: str) -> None:
    from datetime import UTC, datetime

    book.update(PriceTick(datetime(2026, 1, 1, tzinfo=UTC), "ETH", D(price)))


async def test_paper_fills_with_slippage_against_the_trader_and_taker_fees() -> None:
    venue, book = _venue()
    _tick(book, "3000")
    o = await venue.place_order(OrderRequest("0xa", "acct", "ETH", "long", D("0.5"), D(5)))
    assert o.price == D("3001.5")  # 3000 + 5 bps
    assert o.fee == D("4.5") * D("3001.5") * D("0.5") / 10_000
    _tick(book, "3100")
    c = await venue.place_order(OrderRequest("0xb", "acct", "ETH", "long", D("0.5"), D(5), True))
    assert c.price == D("3098.45")  # selling receives 5 bps less
    pnl = (c.price - o.price) * D("0.5") - o.fee - c.fee
    assert venue.account("acct").balance == pnl
    assert venue.account("acct").positions == {}


async def test_short_entry_receives_less_and_exit_pays_more() -> None:
    venue, book = _venue(taker="0")
    _tick(book, "2000")
    o = await venue.place_order(OrderRequest("0xs", "a", "ETH", "short", D(1), D(1)))
    _tick(book, "1900")
    c = await venue.place_order(OrderRequest("0xt", "a", "ETH", "short", D(1), D(1), True))
    assert (o.price, c.price) == (D("1999"), D("1900.95"))
    assert venue.account("a").balance == D("98.05")


async def test_paper_order_is_idempotent_by_client_order_id() -> None:
    venue, book = _venue()
    _tick(book, "3000")
    first = await venue.place_order(OrderRequest("0xsame", "a", "ETH", "long", D(1), D(1)))
    _tick(book, "3500")
    again = await venue.place_order(OrderRequest("0xsame", "a", "ETH", "long", D(1), D(1)))
    assert again == first
    assert venue.account("a").size("ETH", "long") == D(1)
    assert list(venue.account("a").positions) == [("ETH", "long")]


async def test_paper_refuses_unlisted_markets_and_reducing_nothing() -> None:
    venue, book = _venue()
    _tick(book, "3000")
    with pytest.raises(VenueRejected) as e:
        await venue.place_order(OrderRequest("0x1", "a", "BTC", "long", D(1), D(1)))
    assert e.value.reason == "market_not_listed"
    with pytest.raises(VenueRejected) as e:
        await venue.place_order(OrderRequest("0x2", "a", "ETH", "long", D(1), D(1), True))
    # refused as Hyperliquid refuses it (the paper venue nets like Hyperliquid)
    assert e.value.reason == "reduce_only_increase"


TERMS = ShareTerms("Hawk", 7, D("0.10"), 3, "@hawk", None, D("0.10"))


def test_profit_share_splits_creator_and_source() -> None:
    rows = profit_share_rows(1, 9, D("250"), TERMS)
    assert [(r["kind"], r["beneficiary"], r["amount"]) for r in rows] == [
        ("creator_share", "creator:Hawk", D("25.00")),
        ("source_share", "source:@hawk", D("25.00")),
    ]
    assert rows[0]["beneficiary_user_id"] == 7 and rows[1]["beneficiary_source_id"] == 3


def test_no_profit_share_on_a_loss_or_flat_close() -> None:
    assert profit_share_rows(1, 9, D("-3"), TERMS) == []
    assert profit_share_rows(1, 9, D("0"), TERMS) == []


async def test_paper_nets_one_position_per_account_and_market_like_hyperliquid() -> None:
    """Was hedge mode (longs and shorts apart); the paper venue now nets as Hyperliquid does."""
    venue, book = _venue(taker="0", slip="0")
    _tick(book, "2000")
    await venue.place_order(OrderRequest("0x1", "a", "ETH", "long", D("0.25"), D(1)))
    _tick(book, "2100")
    short = await venue.place_order(OrderRequest("0x2", "a", "ETH", "short", D("0.20"), D(1)))
    acc = venue.account("a")
    # the short reduced the long: 0.05 long left, 0.20 of it closed at +100
    assert (acc.size("ETH", "long"), acc.size("ETH", "short")) == (D("0.05"), D(0))
    assert short.size == D("0.20") and acc.balance == D("20")
    # a reduce-only order larger than the holding fills what is held, never flips
    c = await venue.place_order(OrderRequest("0x3", "a", "ETH", "long", D("0.30"), D(1), True))
    assert c.size == D("0.05") and acc.positions == {}
    assert acc.balance == D("25")  # (2100 - 2000) x 0.25
    with pytest.raises(VenueRejected) as e:  # flat now: a reduce-only would increase
        await venue.place_order(OrderRequest("0x4", "a", "ETH", "long", D("0.1"), D(1), True))
    assert e.value.reason == "reduce_only_increase"
    # an opposite order bigger than the holding flips it: close all, open the rest
    await venue.place_order(OrderRequest("0x5", "a", "ETH", "long", D("0.10"), D(1)))
    _tick(book, "2000")
    flip = await venue.place_order(OrderRequest("0x6", "a", "ETH", "short", D("0.30"), D(1)))
    assert flip.size == D("0.30") and flip.price == D("2000")
    assert (acc.size("ETH", "long"), acc.size("ETH", "short")) == (D(0), D("0.20"))
    assert acc.positions[("ETH", "short")].entry == D("2000")
    assert acc.balance == D("15")  # 25, then -10 on the 0.10 long closed at 2000
    with pytest.raises(VenueRejected):  # a reduce-only of the side not held
        await venue.place_order(OrderRequest("0x7", "a", "ETH", "long", D("0.1"), D(1), True))


def test_an_agent_without_creator_takes_no_creator_share() -> None:
    house = ShareTerms("House", None, D("0.10"), 3, "@hawk", None, D("0.10"))
    rows = profit_share_rows(1, 9, D("50"), house)
    assert [(r["kind"], r["amount"]) for r in rows] == [("source_share", D("5.00"))]
