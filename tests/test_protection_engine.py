"""Protection that outlives the process, through the engine and the unmodified SDK against the
Hyperliquid stand-in: a live position's stop (and take profit) rest on the venue, fire there
when the mark crosses them, move with the trailing stop within a budget, and are reconciled
with the books after downtime."""

from __future__ import annotations

from datetime import timedelta
from decimal import Decimal
from typing import Any

import pytest
from hyperliquid.info import Info
from hyperliquid.utils.types import Cloid
from sqlalchemy import select

from engine.ingest import IncomingPost
from engine.protection import MoveSettings, move_stops, protect_opened, protection_cloid
from engine.protection_reconcile import reconcile_protection
from engine.venues.hyperliquid_protection import HyperliquidProtection
from storage.enums import CloseReason
from storage.models import Order, Position, ProtectiveOrder
from tests.hl_helpers import Trader, funded_trader
from tests.test_hyperliquid_peer import call
from tests.test_hyperliquid_pipeline import NOW, live_engine, seed


@pytest.fixture
async def info(peer):
    client = await call(Info, peer.base_url, True)
    yield client
    client.session.close()


async def open_long(sessions, peer, take_profit: str | None = None):
    """A live ETH long opened through the engine (stop 3% under the 2000 entry: 1940)."""
    trader = await funded_trader(peer)
    await seed(sessions, [trader])
    if take_profit is not None:
        from storage.models import Agent

        async with sessions() as s, s.begin():
            (await s.execute(select(Agent))).scalar_one().take_profit_pct = Decimal(take_profit)
    engine, venue, _ = await live_engine(sessions, peer, [trader], eth="2000")
    await engine.ingest(IncomingPost("x", "@hawk", "1", "Long $ETH now", NOW))
    async with sessions() as s:
        pos = (await s.execute(select(Position))).scalar_one()
    assert (pos.entry_price, pos.stop_price) == (Decimal(2000), Decimal(1940))
    return trader, engine, HyperliquidProtection(venue), pos


async def triggers(info: Info, trader: Trader) -> list[dict[str, Any]]:
    rows = await call(info.frontend_open_orders, trader.user.address)
    return [r for r in rows if r["isTrigger"]]


async def rows(sessions) -> dict[str, ProtectiveOrder]:
    async with sessions() as s:
        return {r.kind: r for r in (await s.execute(select(ProtectiveOrder))).scalars()}


async def test_the_stop_rests_on_the_venue_and_fires_there(sessions, peer, info) -> None:
    trader, _, protection, pos = await open_long(sessions, peer, take_profit="0.05")
    placed = await protect_opened(sessions, protection, [pos.id])
    assert [o.kind for o in placed[pos.id]] == ["sl", "tp"]
    sl, tp = protection_cloid(pos.id, "sl", 1), protection_cloid(pos.id, "tp", 1)
    by_type = {r["orderType"]: r for r in await triggers(info, trader)}
    assert (by_type["Stop Market"]["triggerPx"], by_type["Stop Market"]["cloid"]) == ("1940.0", sl)
    assert by_type["Take Profit Market"]["triggerPx"] == "2100.0"
    assert by_type["Stop Market"]["isPositionTpsl"] and by_type["Stop Market"]["sz"] == "0.15"
    recorded = await rows(sessions)
    assert {k: (r.status, r.cloid) for k, r in recorded.items()} == {
        "sl": ("resting", sl),
        "tp": ("resting", tp),
    }
    assert await protect_opened(sessions, protection, [pos.id]) == {}  # placed once

    peer.set_mid("ETH", "1935")  # our process does nothing: the venue closes the position
    assert peer.positions(trader.user.address) == {}
    fill = (await call(info.user_fills, trader.user.address))[0]
    assert (fill["dir"], fill["px"], fill["sz"], fill["cloid"]) == (
        "Close Long",
        "1935.0",
        "0.15",
        sl,
    )
    assert fill["oid"] == int(recorded["sl"].venue_order_id)
    assert await triggers(info, trader) == []  # the take profit went with the position


async def test_a_moved_stop_replaces_the_resting_one_within_the_budget(
    sessions, peer, info
) -> None:
    trader, _, protection, pos = await open_long(sessions, peer)
    await protect_opened(sessions, protection, [pos.id])
    now = NOW + timedelta(minutes=1)
    settings = MoveSettings(min_interval=timedelta(seconds=30), min_step_pct=Decimal("0.001"))

    async def move(price: str, at) -> str:
        return (await move_stops(sessions, protection, {pos.id: Decimal(price)},
                                 settings=settings, clock=lambda: at))[pos.id]  # fmt: skip

    assert await move("1960", now) == "moved"
    [row] = await triggers(info, trader)
    assert (row["triggerPx"], row["cloid"]) == ("1960.0", protection_cloid(pos.id, "sl", 2))
    assert (await rows(sessions))["sl"].version == 2
    sent = len(peer.requests)
    assert await move("1980", now + timedelta(seconds=10)) == "too_soon"
    assert await move("1961", now + timedelta(seconds=40)) == "too_small"  # 0.05% of 1960
    assert len(peer.requests) == sent  # neither reached the venue
    assert await move("1980", now + timedelta(seconds=41)) == "moved"
    [row] = await triggers(info, trader)
    assert row["triggerPx"] == "1980.0"
    peer.set_mid("ETH", "1975")  # above the first stops, below the moved one: it fires
    assert peer.positions(trader.user.address) == {}
    assert peer.fills(trader.user.address)[-1].cloid == protection_cloid(pos.id, "sl", 3)


async def test_a_stop_that_filled_while_we_were_down_closes_the_books_once(
    sessions, peer, info
) -> None:
    trader, _, protection, pos = await open_long(sessions, peer)
    await protect_opened(sessions, protection, [pos.id])
    # the process is gone; the mark falls through the stop
    peer.set_mid("ETH", "1930")
    venue_fill = peer.fills(trader.user.address)[-1]

    # restart: a new engine on the same database
    engine, venue, _ = await live_engine(sessions, peer, [trader], eth="1930")
    protection = HyperliquidProtection(venue)
    [closed] = await reconcile_protection(sessions, protection)
    assert (closed.position_id, closed.kind, closed.reason) == (pos.id, "sl", CloseReason.STOP_LOSS)
    assert (closed.price, closed.size, closed.fee) == (
        venue_fill.px,
        Decimal("0.15"),
        venue_fill.fee,
    )
    assert closed.venue_order_id == str(venue_fill.oid)
    assert (await rows(sessions))["sl"].status == "filled"
    # reported while our books hold the position open, from the row: no second venue look-up
    assert await reconcile_protection(sessions, protection) == [closed]

    # the engine's reconcile closes it at the venue's fill (the lead wires `closed` into it)
    assert await engine.reconcile("HYPERLIQUID") == 1
    assert await engine.reconcile("HYPERLIQUID") == 0
    async with sessions() as s:
        done = await s.get_one(Position, pos.id)
        closes = (await s.execute(select(Order).where(Order.purpose == "close"))).scalars().all()
    assert (done.status, done.exit_price) == ("closed", venue_fill.px)
    assert len(closes) == 1
    assert await reconcile_protection(sessions, protection) == []


async def test_reconcile_replaces_a_missing_stop_and_cancels_our_orphans(
    sessions, peer, info
) -> None:
    trader, _, protection, pos = await open_long(sessions, peer, take_profit="0.05")
    await protect_opened(sessions, protection, [pos.id])
    owner = trader.user  # the user cancels our stop in Hyperliquid's app, adds a stop of their own
    from hyperliquid.exchange import Exchange

    app = await call(Exchange, owner, peer.base_url)
    sl_v1 = protection_cloid(pos.id, "sl", 1)
    assert (await call(app.cancel_by_cloid, "ETH", Cloid.from_str(sl_v1)))["status"] == "ok"
    own = {"trigger": {"isMarket": True, "triggerPx": 1800, "tpsl": "sl"}}
    assert "resting" in str(await call(app.order, "ETH", False, 0.05, 1620, own, True))
    async with sessions() as s, s.begin():  # and our books no longer want a take profit
        (await s.get_one(Position, pos.id)).take_profit_price = None

    assert await reconcile_protection(sessions, protection) == []
    by_px = {r["triggerPx"]: r for r in await triggers(info, trader)}
    assert set(by_px) == {"1940.0", "1800.0"}  # ours again, theirs untouched, the tp canceled
    assert by_px["1940.0"]["cloid"] == protection_cloid(pos.id, "sl", 2)
    recorded = await rows(sessions)
    assert (recorded["sl"].status, recorded["sl"].version) == ("resting", 2)
    assert recorded["tp"].status == "canceled"
    app.session.close()
    app.info.session.close()


async def test_a_position_without_protection_gets_it_at_reconcile(sessions, peer, info) -> None:
    trader, _, protection, pos = await open_long(sessions, peer)
    assert await triggers(info, trader) == []  # opened before protection existed
    assert await reconcile_protection(sessions, protection) == []
    [row] = await triggers(info, trader)
    assert (row["triggerPx"], row["cloid"]) == ("1940.0", protection_cloid(pos.id, "sl", 1))


async def test_a_move_whose_answer_was_lost_is_settled_at_reconcile(sessions, peer, info) -> None:
    trader, _, protection, pos = await open_long(sessions, peer)
    await protect_opened(sessions, protection, [pos.id])
    v1, v2 = protection_cloid(pos.id, "sl", 1), protection_cloid(pos.id, "sl", 2)
    async with sessions() as s, s.begin():  # the intent was written...
        row = (await s.execute(select(ProtectiveOrder))).scalar_one()
        row.status, row.target_price = "moving", Decimal(1960)
    # ...the venue applied the modify, and the process died before recording the answer
    moved = await protection.move_stop(
        trader.user.address, "ETH", "long", Decimal("0.15"), Decimal(1960), v1, v2
    )
    assert moved.venue_order_id is not None
    assert await reconcile_protection(sessions, protection) == []
    row = (await rows(sessions))["sl"]
    assert (row.status, row.version, row.cloid, row.trigger_price) == (
        "resting", 2, v2, Decimal(1960)
    )  # fmt: skip
    [resting] = await triggers(info, trader)
    assert (resting["cloid"], resting["triggerPx"]) == (v2, "1960.0")
