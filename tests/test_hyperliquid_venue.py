"""The Hyperliquid venue through the real SDK against the local stand-in: IOC opens at mid
plus slippage on Hyperliquid's tick rules with our cloid, reduce-only closes, lookups by
cloid, and refusals in words a trader understands."""

from __future__ import annotations

from decimal import Decimal

import pytest

from engine.venues.base import OrderRequest, VenueRejected
from engine.venues.hyperliquid_rules import is_valid_price, round_price, round_size
from tests.hl_helpers import funded_trader, venue_for
from tests.peers.hyperliquid_api import HyperliquidPeer

CLOID = "0x" + "ab" * 16


@pytest.fixture
async def peer():
    async with HyperliquidPeer(mids={"ETH": "2000", "BTC": "90000", "DOGE": "0.1"}) as p:
        yield p


def order(account: str, cloid: str = CLOID, **kw) -> OrderRequest:
    base = dict(client_order_id=cloid, account=account, market="ETH", side="long",
                size=Decimal("0.05"), leverage=Decimal(3))  # fmt: skip
    return OrderRequest(**(base | kw))


async def test_open_find_and_close_with_cloid(peer: HyperliquidPeer) -> None:
    trader = await funded_trader(peer)
    venue = venue_for(peer, [trader])
    markets = await venue.refresh_markets()
    assert markets["ETH"].size_decimals == 4 and markets["BTC"].max_leverage == 50
    fill = await venue.place_order(order(trader.user.address, size=Decimal("0.05123456")))
    assert fill.size == Decimal("0.0512")  # rounded down to szDecimals
    assert fill.price == Decimal(2000)  # IOC at mid (the peer fills at mid, no slippage set)
    placed = peer.orders(trader.user.address)[-1]
    assert placed.cloid == CLOID and Decimal(placed.limit_px) == Decimal("2010")  # mid + 50 bps
    pos = peer.positions(trader.user.address)["ETH"]
    assert pos.szi == Decimal("0.0512") and pos.leverage.value == 3

    found = await venue.find_order(trader.user.address, CLOID)
    assert found is not None and (found.size, found.price) == (fill.size, fill.price)
    assert found.fee > 0  # the venue's own fee from its fills
    assert await venue.find_order(trader.user.address, "0x" + "cd" * 16) is None
    with pytest.raises(VenueRejected) as dup:
        await venue.place_order(order(trader.user.address))
    assert dup.value.reason == "duplicate_order"

    close = await venue.place_order(
        order(trader.user.address, "0x" + "ee" * 16, size=fill.size, reduce_only=True)
    )
    assert close.size == fill.size
    assert "ETH" not in peer.positions(trader.user.address)
    with pytest.raises(VenueRejected) as increase:
        await venue.place_order(order(trader.user.address, "0x" + "ef" * 16, reduce_only=True))
    assert increase.value.reason == "reduce_only_increase"


async def test_refusals_have_reasons(peer: HyperliquidPeer) -> None:
    stranger = await funded_trader(peer, approved=False)
    trader = await funded_trader(peer, usdc="50")
    venue = venue_for(peer, [stranger, trader])
    await venue.refresh_markets()
    with pytest.raises(VenueRejected) as unapproved:
        await venue.place_order(order(stranger.user.address))
    assert unapproved.value.reason == "agent_not_approved"
    assert "does not exist" in str(unapproved.value)
    with pytest.raises(VenueRejected) as small:
        await venue.place_order(order(trader.user.address, size=Decimal("0.004")))
    assert small.value.reason == "below_min_notional"
    with pytest.raises(VenueRejected) as margin:
        await venue.place_order(order(trader.user.address, size=Decimal("1"), leverage=Decimal(1)))
    assert margin.value.reason == "insufficient_margin"
    with pytest.raises(VenueRejected) as unlisted:
        await venue.place_order(order(trader.user.address, market="NOPE"))
    assert unlisted.value.reason == "not_listed"
    assert [o for o in peer.orders(stranger.user.address)] == []


@pytest.mark.parametrize(
    "price, sz, is_buy, expected",
    [
        ("2010.123", 4, True, "2010.2"),
        ("2010.123", 4, False, "2010.1"),
        ("90451.37", 5, True, "90452"),
        ("0.10050505", 0, False, "0.1005"),
        ("99999.7", 5, True, "100000"),
        ("1.2345678", 2, True, "1.2346"),
    ],
)
def test_tick_rules(price: str, sz: int, is_buy: bool, expected: str) -> None:
    rounded = round_price(Decimal(price), sz, is_buy)
    assert rounded == Decimal(expected) and is_valid_price(rounded, sz)
    assert (rounded >= Decimal(price)) if is_buy else (rounded <= Decimal(price))
    assert round_size(Decimal("1.23456789"), sz) <= Decimal("1.23456789")


async def test_isolated_margin_and_the_agents_slippage_reach_hyperliquid(peer) -> None:
    trader = await funded_trader(peer)
    venue = venue_for(peer, [trader])
    await venue.refresh_markets()
    await venue.place_order(
        order(trader.user.address, isolated=True, max_slippage_bps=Decimal(100))
    )
    placed = peer.orders(trader.user.address)[-1]
    assert Decimal(placed.limit_px) == Decimal("2020")  # mid + the agent's 1%
    lev = peer.positions(trader.user.address)["ETH"].leverage
    assert (lev.is_cross, lev.value) == (False, 3)
    leverage_calls = [r for r in peer.requests if r.type == "updateLeverage"]
    # same terms again: no second updateLeverage
    await venue.place_order(order(trader.user.address, "0x" + "12" * 16, isolated=True))
    assert len([r for r in peer.requests if r.type == "updateLeverage"]) == len(leverage_calls)


async def test_a_429_backs_off_every_request_and_leaves_the_order_retryable(peer) -> None:
    trader = await funded_trader(peer)
    venue = venue_for(peer, [trader])
    await venue.refresh_markets()
    peer.fail_next("order", status=429)
    with pytest.raises(VenueRejected) as limited:
        await venue.place_order(order(trader.user.address))
    assert limited.value.reason == "rate_limited" and limited.value.retryable
    # the shared limiter now holds every request back for a while
    assert venue.limiter._paused_until > venue.limiter.clock()
    assert peer.positions(trader.user.address) == {}
