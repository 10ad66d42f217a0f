"""Liquidation at Hyperliquid's maintenance margin, on the stand-in, and our books after it:
the account is liquidated only once the mark passes the liquidation price Hyperliquid reports,
and reconciliation closes our position as liquidated at the liquidator's fill, once."""

from __future__ import annotations

from datetime import UTC, datetime
from decimal import Decimal

import pytest
from sqlalchemy import func, select

from engine.ingest import IncomingPost
from storage.models import Order, OutboxMessage, Position
from tests.hl_helpers import funded_trader
from tests.peers.hyperliquid_api import HyperliquidPeer
from tests.test_hyperliquid_pipeline import live_engine, seed

NOW = datetime(2026, 11, 29, 12, tzinfo=UTC)


@pytest.fixture
async def peer():
    async with HyperliquidPeer(mids={"ETH": "2000"}) as p:
        yield p


async def test_a_position_the_venue_liquidates_is_closed_as_liquidated_once(sessions, peer) -> None:
    # $110 on the account, a $300 long at 3x: thin, as accounts that get liquidated are
    trader = await funded_trader(peer, usdc="110")
    await seed(sessions, [trader])
    engine, venue, _ = await live_engine(sessions, peer, [trader], eth="2000")
    await engine.ingest(IncomingPost("x", "@hawk", "1", "Long $ETH now", NOW))
    address = trader.user.address
    state = await venue.info("clearinghouseState", {"user": address})
    liq_px = Decimal(state["assetPositions"][0]["position"]["liquidationPx"])
    assert Decimal(1000) < liq_px < Decimal(1500)
    # while our process is down, the market falls: just above the liquidation price nothing
    # happens; past it, the liquidator closes the account's position at the mark
    peer.set_mid("ETH", liq_px + 1)
    assert "ETH" in peer.positions(address)
    peer.set_mid("ETH", liq_px - 1)
    assert peer.positions(address) == {}
    liquidation = peer.fills(address)[-1]
    assert liquidation.liquidation is not None
    assert await engine.reconcile("HYPERLIQUID") == 1
    assert await engine.reconcile("HYPERLIQUID") == 0  # once
    async with sessions() as s:
        pos = (await s.execute(select(Position))).scalar_one()
        closes = (
            await s.execute(select(func.count()).select_from(Order).where(Order.purpose == "close"))
        ).scalar_one()
        alerts = (
            (
                await s.execute(
                    select(OutboxMessage.payload).where(OutboxMessage.kind == "position_closed")
                )
            )
            .scalars()
            .all()
        )
    assert (pos.status, pos.close_reason) == ("closed", "liquidation")
    assert pos.exit_price == Decimal(liquidation.px)
    assert pos.close_fee == Decimal(liquidation.fee)
    assert closes == 1 and len(alerts) == 1 and alerts[0]["close_reason"] == "liquidation"
