"""A call's entry on Hyperliquid, through the real SDK against the stand-in: a GTC limit with
our cloid rests at the entry, fills as a maker when the mid crosses it and is then adopted by
its cloid; one cancelled by cloid before filling is final; an entry already reached goes IOC
with its limit capped at the entry."""

from __future__ import annotations

from decimal import Decimal

import pytest

from engine.venues.base import OrderRequest, OrderResting, OrderState, VenueRejected
from engine.venues.hyperliquid import HyperliquidVenue
from tests.hl_helpers import funded_trader, venue_for
from tests.peers.hyperliquid_api import HyperliquidPeer

D = Decimal


@pytest.fixture
async def peer():
    async with HyperliquidPeer(mids={"ETH": "2100"}) as p:
        yield p


def entry(account: str, cloid: str, limit: str, resting: bool = True) -> OrderRequest:
    return OrderRequest(
        client_order_id=cloid, account=account, market="ETH", side="long", size=D("0.05"),
        leverage=D(3), limit_price=D(limit), resting=resting,
    )  # fmt: skip


async def _trader(peer: HyperliquidPeer) -> tuple[HyperliquidVenue, str]:
    trader = await funded_trader(peer)
    venue = venue_for(peer, [trader])
    await venue.refresh_markets()
    return venue, trader.user.address


async def test_a_resting_entry_fills_when_the_mid_crosses_it_and_is_adopted(peer) -> None:
    venue, account = await _trader(peer)
    cloid = "0x" + "a1" * 16
    with pytest.raises(OrderResting):
        await venue.place_order(entry(account, cloid, "2010"))
    placed = peer.orders(account)[-1]
    assert placed.cloid == cloid and D(placed.limit_px) == 2010 and placed.tif == "Gtc"
    assert (await venue.look_up(account, cloid)).state == OrderState.OPEN
    with pytest.raises(VenueRejected):  # the same cloid is never placed twice
        await venue.place_order(entry(account, cloid, "2010"))

    peer.set_mid("ETH", "2050")
    assert (await venue.look_up(account, cloid)).state == OrderState.OPEN
    peer.set_mid("ETH", "2000")
    found = await venue.look_up(account, cloid)
    assert found.state == OrderState.FILLED and found.fill is not None
    assert (found.fill.price, found.fill.size) == (D(2010), D("0.05"))
    assert peer.positions(account)["ETH"].szi == D("0.05")


async def test_a_resting_entry_cancelled_by_cloid_never_fills(peer) -> None:
    venue, account = await _trader(peer)
    cloid = "0x" + "b2" * 16
    with pytest.raises(OrderResting):
        await venue.place_order(entry(account, cloid, "2010"))
    await venue.cancel_order(account, "ETH", cloid)
    peer.set_mid("ETH", "2000")
    assert "ETH" not in peer.positions(account)
    assert (await venue.look_up(account, cloid)).state in (
        OrderState.CANCELED,
        OrderState.FILLED_FILLS_PENDING,  # canceled just now: looked at again, never re-sent
    )
    await venue.cancel_order(account, "ETH", cloid)  # again: harmless


async def test_an_entry_already_reached_goes_ioc_capped_at_the_entry(peer) -> None:
    venue, account = await _trader(peer)
    fill = await venue.place_order(entry(account, "0x" + "c3" * 16, "2105", resting=False))
    placed = peer.orders(account)[-1]
    # mid + 50 bps would be 2110.5: the entry caps it
    assert placed.tif == "Ioc" and D(placed.limit_px) == 2105 and fill.price == 2100
