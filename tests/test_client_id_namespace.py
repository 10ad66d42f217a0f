"""Client order ids are unique across databases (issue 19, item 2): a database reset, or a
staging copy, trading the same Hyperliquid account with the same signal and deployment ids
makes new cloids, so its first order is accepted instead of refused as a duplicate."""

from __future__ import annotations

from datetime import UTC, datetime
from decimal import Decimal

import pytest
from sqlalchemy import delete, select, text

from engine.ingest import IncomingPost
from storage.models import Base, Order
from tests.hl_helpers import funded_trader
from tests.peers.hyperliquid_api import HyperliquidPeer
from tests.test_hyperliquid_pipeline import live_engine, seed

NOW = datetime(2026, 11, 29, 12, tzinfo=UTC)


@pytest.fixture
async def peer():
    async with HyperliquidPeer(mids={"ETH": "2000"}) as p:
        yield p


async def _reset(sessions, db_url: str) -> None:
    """What a fresh database is: every table empty, the installation's namespace included,
    ids starting over (SQLite reuses them once the rows are gone)."""
    async with sessions() as s, s.begin():
        if "postgresql" in db_url:
            names = ", ".join(f'"{t.name}"' for t in Base.metadata.sorted_tables)
            await s.execute(text(f"TRUNCATE {names} RESTART IDENTITY CASCADE"))
        else:
            for table in reversed(Base.metadata.sorted_tables):
                await s.execute(delete(table))


async def test_a_reset_database_trades_the_same_account_normally(sessions, db_url, peer) -> None:
    trader = await funded_trader(peer)
    await seed(sessions, [trader])
    engine, _, _ = await live_engine(sessions, peer, [trader], eth="2000")
    await engine.ingest(IncomingPost("x", "@hawk", "1", "Long $ETH now", NOW))
    async with sessions() as s:
        first = (await s.execute(select(Order))).scalar_one()
    assert first.status == "filled"

    await _reset(sessions, db_url)
    await seed(sessions, [trader])
    engine, _, _ = await live_engine(sessions, peer, [trader], eth="2000")
    await engine.ingest(IncomingPost("x", "@hawk", "1", "Long $ETH now", NOW))
    async with sessions() as s:
        again = (await s.execute(select(Order))).scalar_one()
    assert (again.signal_id, again.deployment_id) == (first.signal_id, first.deployment_id)
    assert again.client_order_id != first.client_order_id
    assert again.status == "filled", again.error  # not refused as a duplicate cloid
    held = peer.positions(trader.user.address)["ETH"].szi
    assert held == first.filled_size + again.filled_size == Decimal("0.3")
