"""Real fees and funding at the venue (issue 19, item 5, venue side): the fee Hyperliquid
charged is read from its fills (not the 4.5 bps estimate) and equals what the stand-in took
from the balance, to the last digit; funding paid to open positions is read from userFunding
and equals the balance change. Through the real SDK against the stand-in."""

from __future__ import annotations

import time
from decimal import Decimal

from engine.venues.base import OrderRequest
from engine.venues.hyperliquid_history import combine
from tests.hl_helpers import funded_trader, venue_for
from tests.peers.hyperliquid_api import HyperliquidPeer


def order(account: str, cloid: str, **kw) -> OrderRequest:
    base = dict(client_order_id=cloid, account=account, market="ETH", side="long",
                size=Decimal("0.0512"), leverage=Decimal(3))  # fmt: skip
    return OrderRequest(**(base | kw))


async def account_value(venue, account: str) -> Decimal:
    state = await venue.info("clearinghouseState", {"user": account})
    return Decimal(state["marginSummary"]["accountValue"])


async def test_the_fee_recorded_is_the_fee_hyperliquid_charged(peer: HyperliquidPeer) -> None:
    trader = await funded_trader(peer)
    account = trader.user.address
    venue = venue_for(peer, [trader])
    await venue.refresh_markets()
    peer.set_fees(taker="0.00035", maker="0.0001")  # a fee tier below the base 4.5 bps
    peer.set_liquidity("ETH", "0.0123", "0.0389")  # two fills, each fee rounded by HL
    since = int(time.time() * 1000) - 1000
    cloid = "0x" + "0f" * 16
    sent = await venue.place_order(order(account, cloid))
    assert sent.fee == sent.price * sent.size * Decimal("0.00045")  # the estimate

    by_oid = await venue.fills_of(account, int(sent.venue_order_id), since)
    by_cloid = await venue.fills_of(account, cloid, since)
    assert by_oid == by_cloid and len(by_oid) == 2
    settled = combine(cloid, by_oid)
    charged = [f.fee for f in peer.fills(account)]
    # 0.0123 * 2000 * 3.5 bps = 0.00861; 0.0389 * 2000.1 * 3.5 bps = 0.02723136... -> 6 dp
    assert charged == [Decimal("0.008610"), Decimal("0.027231")]
    assert settled.fee == sum(charged) == Decimal("0.035841")
    assert settled.size == sent.size == Decimal("0.0512")
    assert settled.price == Decimal("2000.0759765625")  # exact; the answer's avgPx is rounded
    assert sent.price == Decimal("2000.07597656")
    # the stand-in took exactly that from the balance (the mid is the entry: no PnL yet)
    upnl = Decimal("0.0389") * (2000 - Decimal("2000.1"))
    assert await account_value(venue, account) == Decimal(10_000) - settled.fee + upnl
    # another account's order is not in this one's fills
    assert await venue.fills_of(account, int(sent.venue_order_id) + 1, since) == []


async def test_funding_paid_to_open_positions_is_read_back(peer: HyperliquidPeer) -> None:
    trader = await funded_trader(peer)
    flat = await funded_trader(peer)
    account = trader.user.address
    venue = venue_for(peer, [trader, flat])
    await venue.refresh_markets()
    since = int(time.time() * 1000) - 1000
    await venue.place_order(order(account, "0x" + "21" * 16, size=Decimal("0.5")))
    await venue.place_order(
        order(account, "0x" + "22" * 16, market="BTC", side="short", size=Decimal("0.01"))
    )
    before = await account_value(venue, account)
    hour = 3_600_000
    start = (int(time.time() * 1000) // hour + 1) * hour  # the next hours, as HL pays
    peer.pay_funding("ETH", "0.0000125", at_ms=start)  # longs pay a positive rate
    peer.pay_funding("BTC", "0.0000125", at_ms=start)  # shorts receive it
    peer.pay_funding("ETH", "-0.00002", oracle_px="2100", at_ms=start + hour)

    payments = await venue.funding_payments(account, since)
    got = [(p.coin, p.usdc, p.size, p.funding_rate) for p in payments]
    assert got == [
        ("BTC", Decimal("0.01125"), Decimal("-0.01"), Decimal("0.0000125")),
        ("ETH", Decimal("-0.0125"), Decimal("0.5"), Decimal("0.0000125")),
        ("ETH", Decimal("0.021"), Decimal("0.5"), Decimal("-0.00002")),
    ]
    assert [int(p.time.timestamp() * 1000) for p in payments] == [start, start, start + hour]
    assert len({p.key for p in payments}) == 3
    total = sum((p.usdc for p in payments), Decimal(0))
    assert await account_value(venue, account) - before == total == Decimal("0.01975")
    later = await venue.funding_payments(account, start + 1)
    assert [(p.coin, p.usdc) for p in later] == [("ETH", Decimal("0.021"))]
    assert await venue.funding_payments(flat.user.address, since) == []  # no position, no pay
    state = await venue.info("clearinghouseState", {"user": account})
    eth = next(p["position"] for p in state["assetPositions"] if p["position"]["coin"] == "ETH")
    assert eth["cumFunding"]["sinceOpen"] == "-0.0085"  # paid 0.0125, received 0.021


async def test_funding_and_fills_are_read_page_after_page(peer: HyperliquidPeer) -> None:
    trader = await funded_trader(peer, usdc="100000")
    account = trader.user.address
    venue = venue_for(peer, [trader])
    await venue.refresh_markets()
    since = int(time.time() * 1000) - 1000
    await venue.place_order(order(account, "0x" + "31" * 16))
    start = int(time.time() * 1000) + 1000
    for hour in range(620):  # more than one 500-row page of userFunding
        peer.pay_funding("ETH", "0.00001", at_ms=start + hour * 3_600_000)
    payments = await venue.funding_payments(account, since)
    assert len(payments) == 620 and len({p.key for p in payments}) == 620
    assert len([r for r in peer.requests if r.type == "userFunding"]) == 2
    for _ in range(1100):  # more than one 2,000-row page of userFillsByTime
        peer.trade_directly(account, "BTC", True, "0.001")
        peer.trade_directly(account, "BTC", False, "0.001")
    fills = await venue.fills_since(account, since)
    assert len(fills) == 2201 and len({f.tid for f in fills}) == 2201
    assert sum(f.fee for f in fills) == sum(f.fee for f in peer.fills(account))
