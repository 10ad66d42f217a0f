"""Partial fills at the venue (issue 19, item 4, venue side): against a thin book on the
stand-in, an IOC fills what it meets within its limit and the rest is canceled, and the
venue reports the size that filled, for an open and for a reduce-only close, through the real
SDK."""

from __future__ import annotations

from decimal import Decimal

from engine.venues.base import OrderRequest
from tests.hl_helpers import funded_trader, venue_for
from tests.peers.hyperliquid_api import HyperliquidPeer


def order(account: str, cloid: str, **kw) -> OrderRequest:
    base = dict(client_order_id=cloid, account=account, market="ETH", side="long",
                size=Decimal("0.05"), leverage=Decimal(3))  # fmt: skip
    return OrderRequest(**(base | kw))


async def test_an_open_and_a_reduce_only_close_fill_in_part(peer: HyperliquidPeer) -> None:
    trader = await funded_trader(peer)
    account = trader.user.address
    venue = venue_for(peer, [trader])
    await venue.refresh_markets()
    # 0.02 ETH at 2000 and 0.01 one tick worse: a 0.05 buy meets 0.03 of it
    peer.set_liquidity("ETH", "0.02", "0.01")
    opened = await venue.place_order(order(account, "0x" + "01" * 16))
    assert opened.size == Decimal("0.03")  # what filled, not the 0.05 asked
    assert opened.price == Decimal("2000.03333333")  # HL's avgPx of 2000 and 2000.1
    assert peer.positions(account)["ETH"].szi == Decimal("0.03")
    [placed] = peer.orders(account)
    assert (placed.orig_sz, placed.status) == (Decimal("0.05"), "canceled")  # the rest
    assert [f.sz for f in peer.fills(account)] == [Decimal("0.02"), Decimal("0.01")]
    book = await venue.info("l2Book", {"coin": "ETH"})
    assert book["levels"][1] == []  # the asks are used up

    peer.set_liquidity("ETH", "0.01")  # the close meets 0.01 of the 0.03 held
    closed = await venue.place_order(
        order(account, "0x" + "02" * 16, size=opened.size, reduce_only=True)
    )
    assert closed.size == Decimal("0.01") and closed.price == Decimal(2000)
    assert peer.positions(account)["ETH"].szi == Decimal("0.02")  # still open at the venue
    peer.set_liquidity("ETH")  # the book refills: the rest closes
    rest = await venue.place_order(
        order(account, "0x" + "03" * 16, size=Decimal("0.02"), reduce_only=True)
    )
    assert rest.size == Decimal("0.02") and "ETH" not in peer.positions(account)


async def test_an_ioc_stops_at_its_limit_in_a_deep_thin_book(peer: HyperliquidPeer) -> None:
    trader = await funded_trader(peer)
    account = trader.user.address
    venue = venue_for(peer, [trader])
    await venue.refresh_markets()
    peer.set_liquidity("ETH", *["0.01"] * 150)  # 0.01 a tick (0.1) from 2000 up to 2014.9
    fill = await venue.place_order(order(account, "0x" + "04" * 16, size=Decimal("2")))
    # the venue's limit is mid + 50 bps = 2010: the levels 2000.0 .. 2010.0 fill, no more
    assert fill.size == Decimal("1.01")
    fills = peer.fills(account)
    assert len(fills) == 101 and max(f.px for f in fills) == Decimal(2010)
    assert fill.price == Decimal(2005)  # the average of 2000.0 .. 2010.0
