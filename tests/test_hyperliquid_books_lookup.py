"""Lost answers looked up properly (issue 19, item 3): an order we may have sent is looked up
by cloid on the stand-in through the real SDK, and the answer keeps "unknown", "open",
"filled", "filled, fills not found yet" and "canceled" apart. A filled order older than the
account's last 2,000 fills is found by time and adopted with its real price, size and fee."""

from __future__ import annotations

import time
from decimal import Decimal

import pytest
from hyperliquid.utils.types import Cloid

from engine.venues.base import OrderRequest, OrderState, VenueRejected
from tests.hl_helpers import funded_trader, venue_for

CLOID = "0x" + "ab" * 16


def order(account: str, cloid: str = CLOID, **kw) -> OrderRequest:
    base = dict(client_order_id=cloid, account=account, market="ETH", side="long",
                size=Decimal("0.05"), leverage=Decimal(3))  # fmt: skip
    return OrderRequest(**(base | kw))


async def test_a_filled_order_pushed_out_of_the_last_2000_fills_is_adopted(peer) -> None:
    trader = await funded_trader(peer, usdc="100000")
    account = trader.user.address
    venue = venue_for(peer, [trader])
    await venue.refresh_markets()
    peer.set_fees(taker="0.00035", maker="0.0001")  # not the 4.5 bps the venue estimates
    sent = await venue.place_order(order(account))
    ours = peer.fills(account)[0]
    # the account keeps trading elsewhere: 2,002 newer fills, flat again at the end
    for _ in range(1001):
        peer.trade_directly(account, "BTC", True, "0.001")
        peer.trade_directly(account, "BTC", False, "0.001")
    assert len(peer.fills(account)) == 2003
    recent = await venue.user_fills(account)
    assert len(recent) == 2000 and ours.oid not in {f["oid"] for f in recent}  # userFills lost it

    found = await venue.look_up(account, CLOID)
    assert found.state == OrderState.FILLED and found.fill is not None
    fill = found.fill
    assert (fill.price, fill.size, fill.venue_order_id) == (ours.px, ours.sz, str(ours.oid))
    assert fill.fee == ours.fee == Decimal("0.035")  # 2000 * 0.05 * 3.5 bps, as charged
    assert fill.fee != sent.fee  # the order's answer had only the estimate
    assert fill.filled_at is not None and int(fill.filled_at.timestamp() * 1000) == ours.time
    assert await venue.find_order(account, CLOID) == fill
    # what the look-up asked: the order, then its fills by time from the order's timestamp
    status_ask = next(r for r in peer.requests if r.type == "orderStatus")
    by_time = [r.payload for r in peer.requests if r.type == "userFillsByTime"]
    assert status_ask.payload["oid"] == CLOID
    assert by_time and by_time[0]["startTime"] == peer.orders(account)[0].timestamp


async def test_a_filled_order_whose_fills_are_not_visible_yet_is_pending(peer) -> None:
    trader = await funded_trader(peer)
    account = trader.user.address
    venue = venue_for(peer, [trader])
    await venue.refresh_markets()
    peer.set_fills_delay(60_000)  # /info trails the block: the order is filled, no fill shown
    await venue.place_order(order(account))
    found = await venue.look_up(account, CLOID)
    assert found.state == OrderState.FILLED_FILLS_PENDING and found.fill is None
    assert await venue.find_order(account, CLOID) is None  # the old interface: not a fill yet
    peer.set_fills_delay(0)
    again = await venue.look_up(account, CLOID)
    assert again.state == OrderState.FILLED and again.fill is not None
    assert again.fill.size == Decimal("0.05")


async def test_an_ioc_that_found_no_liquidity_is_canceled(peer) -> None:
    trader = await funded_trader(peer)
    account = trader.user.address
    venue = venue_for(peer, [trader])
    await venue.refresh_markets()
    peer.set_liquidity("ETH", 0)  # an empty book
    with pytest.raises(VenueRejected) as refused:
        await venue.place_order(order(account))
    assert refused.value.reason == "no_liquidity"
    found = await venue.look_up(account, CLOID)
    assert (found.state, found.fill, found.detail) == (
        OrderState.CANCELED,
        None,
        "iocCancelRejected",
    )
    assert not [r for r in peer.requests if r.type == "userFillsByTime"]  # nothing to look for
    with pytest.raises(VenueRejected):  # never adopted as a fill, never "unknown"
        await venue.find_order(account, CLOID)


async def test_an_unknown_cloid_is_unknown_and_an_ioc_filled_in_part_is_filled(peer) -> None:
    trader = await funded_trader(peer)
    account = trader.user.address
    venue = venue_for(peer, [trader])
    await venue.refresh_markets()
    assert (await venue.look_up(account, "0x" + "cd" * 16)).state == OrderState.UNKNOWN
    assert await venue.find_order(account, "0x" + "cd" * 16) is None

    peer.set_liquidity("ETH", "0.02")  # a thin book: the IOC fills 0.02 of 0.05
    sent = await venue.place_order(order(account))
    assert sent.size == Decimal("0.02")
    assert peer.orders(account)[-1].status == "canceled"  # its rest
    found = await venue.look_up(account, CLOID)
    assert found.state == OrderState.FILLED and found.fill is not None
    assert (found.fill.size, found.fill.price) == (Decimal("0.02"), Decimal(2000))
    assert found.fill.fee == peer.fills(account)[-1].fee


async def test_a_resting_order_is_open_until_the_mid_fills_it(peer) -> None:
    trader = await funded_trader(peer)
    account = trader.user.address
    venue = venue_for(peer, [trader])
    await venue.refresh_markets()
    # a GTC bid below the mid, as a trigger or a maker order of ours would rest
    exchange = await venue._exchange(account)
    result = await venue._signed(
        exchange,
        exchange.order,
        "ETH",
        True,
        0.05,
        1900.0,
        {"limit": {"tif": "Gtc"}},
        False,
        Cloid.from_str(CLOID),
    )
    assert "resting" in result["response"]["data"]["statuses"][0]
    found = await venue.look_up(account, CLOID)
    assert (found.state, found.detail) == (OrderState.OPEN, "open")
    peer.set_mid("ETH", "1890")  # the mid walks through it: filled as a maker
    filled = await venue.look_up(account, CLOID)
    assert filled.state == OrderState.FILLED and filled.fill is not None
    assert filled.fill.price == Decimal(1900)
    assert filled.fill.fee == (Decimal("0.05") * 1900 * Decimal("0.00015")).quantize(
        Decimal("0.000001")
    )
    assert time.time() * 1000 - filled.fill.filled_at.timestamp() * 1000 < 60_000
