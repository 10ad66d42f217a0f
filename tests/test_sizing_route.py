"""Sizing and leverage caps, and venue routing with its stored reasons."""

from __future__ import annotations

from decimal import Decimal

from engine.markets import MarketInfo, default_markets
from engine.route import decide_venue
from engine.sizing import size_order

D = Decimal
BTC = MarketInfo("BTC", size_decimals=5, max_leverage=D(40), min_notional=D(10))


def test_size_is_collateral_times_leverage_over_price_rounded_down() -> None:
    s = size_order(D(100), D("96200"), BTC, deployment_leverage=D(5), agent_leverage=D(10))
    assert s.leverage == D(5)
    # 100 * 5 / 96200 = 0.0051975... -> 5 decimals, rounded down
    assert s.size == D("0.00519")
    assert s.rejected is None


def test_leverage_is_the_smallest_of_deployment_agent_user_and_market() -> None:
    assert size_order(D(100), D(1), BTC, D(20), D(10)).leverage == D(10)  # agent caps
    assert size_order(D(100), D(1), BTC, D(3), D(10)).leverage == D(3)  # deployment caps
    assert size_order(D(100), D(1), BTC, D(100), D(80)).leverage == D(40)  # market caps
    assert size_order(D(100), D(1), BTC, D(20), D(10), user_max_leverage=D(2)).leverage == D(2)


def test_size_without_market_decimals_uses_six() -> None:
    m = MarketInfo("XAU")
    assert size_order(D(100), D(3), m, D(1)).size == D("33.333333")


def test_below_min_notional_is_refused_with_a_reason() -> None:
    s = size_order(D(1), D("96200"), BTC, D(5))
    assert s.rejected == "below_min_notional"


def test_size_that_rounds_to_zero_is_refused() -> None:
    m = MarketInfo("BTC", size_decimals=2, min_notional=D(0))
    assert size_order(D(10), D("96200"), m, D(1)).rejected == "size_rounds_to_zero"


LISTINGS = {
    "HYPERLIQUID": {"BTC": BTC, "ETH": MarketInfo("ETH")},
    "OSTIUM": {"BTC": MarketInfo("BTC"), "XAU": MarketInfo("XAU")},
}


def test_single_venue_that_lists_the_market() -> None:
    d = decide_venue("OSTIUM", None, "XAU", LISTINGS, has_price=True)
    assert (d.venue, d.reason) == ("OSTIUM", "listed")


def test_single_venue_that_does_not_list_the_market_is_rejected() -> None:
    d = decide_venue("HYPERLIQUID", None, "XAU", LISTINGS, has_price=True)
    assert (d.venue, d.reason) == (None, "not_listed")
    assert d.candidates == [{"venue": "HYPERLIQUID", "lists_market": False}]


def test_multi_takes_the_first_preferred_venue_that_lists_the_market() -> None:
    d = decide_venue("MULTI", ["HYPERLIQUID", "OSTIUM"], "BTC", LISTINGS, has_price=True)
    assert d.venue == "HYPERLIQUID"
    d = decide_venue("MULTI", ["OSTIUM", "HYPERLIQUID"], "BTC", LISTINGS, has_price=True)
    assert d.venue == "OSTIUM"


def test_multi_falls_back_to_the_next_venue() -> None:
    d = decide_venue("MULTI", ["HYPERLIQUID", "OSTIUM"], "XAU", LISTINGS, has_price=True)
    assert (d.venue, d.reason) == ("OSTIUM", "first_preference_listing")
    assert [c["lists_market"] for c in d.candidates] == [False, True]


def test_multi_with_no_listing_venue_is_rejected() -> None:
    d = decide_venue("MULTI", None, "DOGE", LISTINGS, has_price=True)
    assert (d.venue, d.reason) == (None, "not_listed_anywhere")


def test_no_price_rejects_even_a_listed_market() -> None:
    d = decide_venue("HYPERLIQUID", None, "ETH", LISTINGS, has_price=False)
    assert (d.venue, d.reason) == (None, "no_price")


def test_default_markets_emulate_both_venues() -> None:
    m = default_markets()
    assert m["HYPERLIQUID"]["BTC"].size_decimals == 5
    assert m["HYPERLIQUID"]["BTC"].min_notional == D(10)
    assert {"EURUSD", "XAU", "SPX"} <= set(m["OSTIUM"])
    assert "XAU" not in m["HYPERLIQUID"]
