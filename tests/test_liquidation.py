"""Liquidation prices (engine/liquidation.py) against hand-computed values and Hyperliquid's
documented formula, and the paper venue's margin and liquidation: a paper position never
loses more than its collateral."""

from __future__ import annotations

from datetime import UTC, datetime
from decimal import Decimal

import pytest

from engine.liquidation import (
    bankruptcy_price,
    liquidation_distance,
    liquidation_price,
    markets_for,
    max_leverage_for_stop,
    max_stop_pct,
    strictest,
    unreachable_stop,
)
from engine.markets import MarketInfo, default_markets
from engine.prices import PriceBook, PriceTick
from engine.venues.base import OrderRequest, VenueRejected
from engine.venues.hyperliquid import parse_meta
from engine.venues.paper import FeeConfig, PaperVenue

D = Decimal
NOW = datetime(2026, 11, 20, 10, tzinfo=UTC)
CENT_BILLIONTH = D("1e-12")  # Decimal division rounds at 28 digits: equal to far below a cent


def same(a: D, b: D) -> bool:
    return abs(a - b) < CENT_BILLIONTH


def hl_docs_formula(side: str, entry: D, leverage: D, mmr: D) -> D:
    """Hyperliquid's docs, literally: liq_price = price - side * margin_available /
    position_size / (1 - l * side), margin_available = isolated_margin - maintenance margin."""
    size = D(3)
    isolated_margin = entry * size / leverage
    margin_available = isolated_margin - mmr * entry * size
    s = 1 if side == "long" else -1
    return entry - s * margin_available / size / (1 - mmr * s)


def test_liquidation_prices_match_hand_computed_values() -> None:
    # 10x on a 50x asset (mmr 1%): long 2000 * 0.9 / 0.99, short 2000 * 1.1 / 1.01
    assert liquidation_price("long", D(2000), D(10), D("0.01")).quantize(D("0.0001")) == D(
        "1818.1818"
    )
    assert liquidation_price("short", D(2000), D(10), D("0.01")).quantize(D("0.0001")) == D(
        "2178.2178"
    )
    # 20x: a long 4.04% below entry, a short 3.96% above
    assert liquidation_price("long", D(100), D(20), D("0.01")).quantize(D("0.0001")) == D("95.9596")
    assert liquidation_price("short", D(100), D(20), D("0.01")).quantize(D("0.0001")) == D(
        "103.9604"
    )
    # a 10x-max asset (HYPE: mmr 5%) at 10x: long 0.9 / 0.95, short 1.1 / 1.05 of entry
    assert liquidation_price("long", D(40), D(10), D("0.05")).quantize(D("0.0001")) == D("37.8947")
    assert liquidation_price("short", D(40), D(10), D("0.05")).quantize(D("0.0001")) == D("41.9048")
    # 1x long: its margin is the whole notional, no positive price liquidates it
    assert liquidation_price("long", D(100), D(1), D("0.01")) == 0
    assert max_stop_pct(D(20), D("0.01")).quantize(D("0.000001")) == D("0.039604")
    assert liquidation_distance("long", D(20), D("0.01")).quantize(D("0.000001")) == D("0.040404")
    assert bankruptcy_price("long", D(2000), D(1), D(200)) == D(1800)
    assert bankruptcy_price("short", D(2000), D(1), D(200)) == D(2200)
    with pytest.raises(ValueError):
        liquidation_price("long", D(100), D(0), D("0.01"))


@pytest.mark.parametrize("side", ["long", "short"])
@pytest.mark.parametrize("leverage", ["1", "2", "3", "5", "10", "20", "40", "50"])
@pytest.mark.parametrize("max_leverage", [3, 10, 20, 50])
def test_liquidation_price_is_hyperliquids_documented_formula(
    side: str, leverage: str, max_leverage: int
) -> None:
    lev = min(D(leverage), D(max_leverage))
    mmr = MarketInfo("X", max_leverage=D(max_leverage)).maintenance_margin_rate
    assert mmr == D(1) / (2 * max_leverage)
    expected = max(D(0), hl_docs_formula(side, D("2345.6"), lev, mmr))
    assert liquidation_price(side, D("2345.6"), lev, mmr) == pytest.approx(expected, abs=D("1e-18"))


def test_maintenance_margin_comes_from_hyperliquids_meta() -> None:
    meta = {
        "universe": [
            {"name": "BTC", "szDecimals": 5, "maxLeverage": 40},
            {"name": "MEME", "szDecimals": 0, "maxLeverage": 3},
        ]
    }
    markets = parse_meta(meta)
    assert markets["BTC"].maintenance_margin_rate == D("0.0125")
    assert markets["MEME"].maintenance_margin_rate == D(1) / D(6)
    assert default_markets()["OSTIUM"]["EURUSD"].maintenance_margin_rate == D("0.005")


def test_the_strictest_market_bounds_a_stop_and_the_highest_safe_leverage() -> None:
    listings = {n: dict(m) for n, m in default_markets().items()}
    hl = markets_for(listings, "HYPERLIQUID")
    limit = strictest(D(20), hl)
    assert limit is not None and (limit.venue, limit.market) == ("HYPERLIQUID", "BTC")
    assert limit.max_stop == max_stop_pct(D(20), D("0.01"))
    assert unreachable_stop(D("0.06"), D(20), hl) == limit
    assert unreachable_stop(D("0.0396"), D(20), hl) is None
    # at or past: a stop exactly at the liquidation distance never triggers either
    assert unreachable_stop(limit.max_stop, D(20), hl) is not None
    # 6%: 14x leaves 6.08% on BTC, but HYPE (10x max, mmr 5%) leaves 1/21 at 10x and up,
    # 5.82% at 9x, 7.14% at 8x
    assert max_leverage_for_stop(D("0.06"), hl, D(20)) == D(8)
    assert max_leverage_for_stop(D("0.95"), hl, D(20)) is None
    assert {v for v, _ in markets_for(listings, "MULTI")} == {"HYPERLIQUID", "OSTIUM"}


# -- the paper venue ---------------------------------------------------------------------


def paper(slippage_bps: str = "5") -> tuple[PaperVenue, PriceBook]:
    prices = PriceBook()
    prices.update(PriceTick(NOW, "ETH", D(2000)))
    fees = FeeConfig(D("4.5"), D(slippage_bps))
    return PaperVenue("HYPERLIQUID", default_markets()["HYPERLIQUID"], prices, fees), prices


def order(cid: str, side: str, size: str, close: bool = False, lev: str = "10") -> OrderRequest:
    return OrderRequest(cid, "paper:1:1", "ETH", side, D(size), D(lev), reduce_only=close)


def tick(prices: PriceBook, value: str) -> D:
    prices.update(PriceTick(NOW, "ETH", D(value)))
    return D(value)


def test_a_paper_long_at_10x_past_its_liquidation_loses_exactly_its_collateral() -> None:
    venue, prices = paper()
    opened = venue.fill(order("o1", "long", "0.5"))
    margin = opened.price * opened.size / 10  # isolated margin: notional / leverage
    liq = liquidation_price("long", opened.price, D(10), D("0.01"))
    assert venue.liquidation_price("paper:1:1", "ETH", "long") == liq
    assert venue.liquidations("ETH", tick(prices, "1900")) == []  # above: nothing

    # the mark gaps far past the liquidation price (and past the bankruptcy price, 1801)
    hit = venue.liquidations("ETH", tick(prices, "1500"))
    assert [(h.account, h.side, h.size, h.price) for h in hit] == [
        ("paper:1:1", "long", D("0.5"), liq)
    ]
    assert venue.liquidations("ETH", tick(prices, "1400")) == hit  # listed until closed
    closed = venue.fill(order("c1", "long", "0.5", close=True))
    assert closed.price == liq  # at the liquidation price, not at the 1400 mark
    taker = D("4.5") / 10_000 * liq * D("0.5")
    pnl = (closed.price - opened.price) * closed.size
    assert same(pnl - closed.fee, -(margin + taker))  # the maintenance margin went too
    balance = venue.account("paper:1:1").balance
    assert same(balance, -(margin + opened.fee + taker))  # the collateral plus fees, no more
    assert (D(1500) - opened.price) * D("0.5") < balance  # what the mark alone would lose
    assert venue.liquidations("ETH", tick(prices, "1300")) == []


def test_a_stop_that_gaps_past_liquidation_is_filled_as_the_liquidation() -> None:
    """Without the engine asking first, a close at a mark past liquidation still loses only
    the collateral."""
    venue, prices = paper()
    opened = venue.fill(order("o1", "short", "1"))
    liq = liquidation_price("short", opened.price, D(10), D("0.01"))
    tick(prices, "2600")
    closed = venue.fill(order("c1", "short", "1", close=True))
    assert closed.price == liq
    margin = opened.price / 10
    assert same(venue.account("paper:1:1").balance, -(margin + opened.fee + D("4.5e-4") * liq))


def test_no_paper_close_fills_beyond_the_bankruptcy_price() -> None:
    """Slippage wider than the maintenance margin: the fill stops where the margin is gone."""
    venue, prices = paper(slippage_bps="1500")
    opened = venue.fill(order("o1", "long", "1"))
    liq = liquidation_price("long", opened.price, D(10), D("0.01"))
    tick(prices, str((liq + 1).quantize(D("0.01"))))  # just inside: not liquidated
    closed = venue.fill(order("c1", "long", "1", close=True))
    assert closed.price == bankruptcy_price("long", opened.price, D(1), opened.price / 10)
    balance = venue.account("paper:1:1").balance
    assert same(balance, -(opened.price / 10 + opened.fee + closed.fee))


def test_paper_liquidation_of_part_closes_and_restored_books() -> None:
    venue, prices = paper()
    first = venue.fill(order("o1", "long", "1", lev="5"))
    second = venue.fill(order("o2", "long", "1", lev="5"))
    margin = (first.price + second.price) / 5
    liq = venue.liquidation_price("paper:1:1", "ETH", "long")
    assert liq == liquidation_price("long", first.price, D(5), D("0.01"))
    assert venue.liquidations("ETH", tick(prices, "1000"))[0].size == D(2)
    with pytest.raises(VenueRejected) as refused:  # no new orders while liquidating
        venue.fill(order("o3", "long", "1", lev="5"))
    assert refused.value.reason == "liquidating"
    for cid in ("c1", "c2"):  # our two positions close one by one, both at liq
        assert venue.fill(order(cid, "long", "1", close=True)).price == liq
    fees = first.fee + second.fee + 2 * D("4.5") / 10_000 * liq
    assert same(venue.account("paper:1:1").balance, -(margin + fees))

    # after a restart: the leverage gives the margin back; without it, no liquidation
    restored, prices = paper()
    restored.restore(
        [
            ("paper:1:1", "ETH", "short", D(1), D(2000), D(10)),
            ("paper:2:1", "ETH", "short", D(1), D(2000)),
        ]
    )
    hit = restored.liquidations("ETH", tick(prices, "2500"))
    assert [(h.account, h.price) for h in hit] == [
        ("paper:1:1", liquidation_price("short", D(2000), D(10), D("0.01")))
    ]
    assert restored.liquidation_price("paper:2:1", "ETH", "short") is None
