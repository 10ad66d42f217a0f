"""The whole pipeline with `venue: HYPERLIQUID` against the local stand-in: post -> signal ->
order with cloid -> position -> prices over the websocket -> trailing stop -> reduce-only
close -> PnL from the venue's fills; refusals, a crash mid-order, a burst of orders, a
websocket drop."""

from __future__ import annotations

import asyncio
import contextlib
import time
from datetime import UTC, datetime
from decimal import Decimal

import pytest
from sqlalchemy import select

from engine.classify.rules import RulesClassifier
from engine.client_ids import client_order_id
from engine.ingest import IncomingPost
from engine.pipeline import Engine
from engine.prices import PriceBook
from engine.venues.base import OrderRequest
from engine.venues.hyperliquid import HyperliquidVenue
from engine.venues.hyperliquid_feed import HyperliquidPriceFeed
from engine.venues.hyperliquid_limits import WeightLimiter
from storage.enums import DeploymentMode
from storage.models import (
    Agent,
    Deployment,
    Order,
    OutboxMessage,
    Position,
    Source,
    User,
    agent_sources,
)
from tests.hl_helpers import Trader, funded_trader, venue_for

NOW = datetime(2026, 11, 24, 12, tzinfo=UTC)


async def seed(sessions, traders: list[Trader], collateral: str = "100") -> None:
    async with sessions() as s, s.begin():
        src = Source(kind="x", handle="@hawk")
        s.add(src)
        agent = Agent(
            name="Hawk",
            venue="HYPERLIQUID",
            leverage=Decimal(5),
            stop_loss_pct=Decimal("0.03"),
            trailing_activation_pct=Decimal("0.02"),
            trailing_distance_pct=Decimal("0.01"),
        )
        s.add(agent)
        await s.flush()
        await s.execute(agent_sources.insert(), [{"agent_id": agent.id, "source_id": src.id}])
        for i, t in enumerate(traders):
            user = User(display_name=f"u{i}", settings={})
            s.add(user)
            await s.flush()
            s.add(
                Deployment(
                    user_id=user.id,
                    agent_id=agent.id,
                    mode=DeploymentMode.LIVE,
                    collateral_usd=Decimal(collateral),
                    leverage=Decimal(3),
                    account=t.user.address,
                )
            )


async def live_engine(
    sessions, peer, traders: list[Trader], eth: str | None = None, clock=lambda: NOW
) -> tuple[Engine, HyperliquidVenue, PriceBook]:
    """The engine with the live Hyperliquid venue on the stand-in (ETH priced if `eth`)."""
    prices = PriceBook()
    if eth is not None:
        prices.update(_tick("ETH", eth))
    venue = venue_for(peer, traders, prices)
    await venue.refresh_markets()
    engine = Engine(sessions, {"HYPERLIQUID": venue}, prices, RulesClassifier(), clock=clock)
    return engine, venue, prices


async def until(predicate, timeout: float = 8.0) -> None:  # noqa: ASYNC109
    deadline = time.monotonic() + timeout
    while not await predicate():
        if time.monotonic() > deadline:
            raise AssertionError("condition not met in time")
        await asyncio.sleep(0.05)


@contextlib.asynccontextmanager
async def live_prices(engine: Engine, feed: HyperliquidPriceFeed):
    async def pump() -> None:
        async for tick in feed.ticks():
            await engine.on_price(tick)

    task = asyncio.create_task(pump())
    try:
        yield
    finally:
        task.cancel()
        with contextlib.suppress(asyncio.CancelledError):
            await task


async def test_post_to_trailing_close_with_pnl_from_the_venue(sessions, peer) -> None:
    trader = await funded_trader(peer)
    await seed(sessions, [trader])
    engine, venue, prices = await live_engine(sessions, peer, [trader])
    feed = HyperliquidPriceFeed(peer.base_url, lambda: venue.info("allMids", {}), poll_interval=0.1)
    async with live_prices(engine, feed):
        await until(lambda: _true(prices.price("ETH") is not None))
        outcome = await engine.ingest(IncomingPost("x", "@hawk", "1", "Long $ETH now", NOW))
        assert [s.venue for s in outcome.signals] == ["HYPERLIQUID"]
        async with sessions() as s:
            order = (await s.execute(select(Order))).scalar_one()
            pos = (await s.execute(select(Position))).scalar_one()
        assert order.status == "filled"
        at_venue = peer.orders(trader.user.address)
        assert [o.cloid for o in at_venue] == [order.client_order_id]
        assert peer.positions(trader.user.address)["ETH"].szi == pos.size == Decimal("0.15")
        peer.set_mid("ETH", "2050")  # +2.5%: trailing starts, stop at 2029.5
        await until(lambda: _true(engine.index.state(pos.id)[2]))
        peer.set_mid("ETH", "2025")  # through the trailing stop

        async def closed() -> bool:
            async with sessions() as s:
                return (await s.get_one(Position, pos.id)).status == "closed"

        await until(closed)
    assert "ETH" not in peer.positions(trader.user.address)
    close_order = peer.orders(trader.user.address)[-1]
    assert close_order.reduce_only and close_order.tif == "Ioc"
    async with sessions() as s:
        pos = await s.get_one(Position, pos.id)
    venue_fills = peer.fills(trader.user.address)
    assert pos.close_reason == "trailing_stop"
    assert pos.entry_price == Decimal(venue_fills[0].px) and pos.exit_price == Decimal(
        venue_fills[1].px
    )
    gross = (pos.exit_price - pos.entry_price) * pos.size
    assert pos.realized_pnl == gross - pos.open_fee - pos.close_fee
    assert gross == (Decimal(2025) - Decimal(2000)) * Decimal("0.15")


async def _true(value) -> bool:
    return bool(value)


async def test_an_unapproved_agent_is_refused_and_the_user_told(sessions, peer) -> None:
    trader = await funded_trader(peer, approved=False)
    await seed(sessions, [trader])
    engine, _, _ = await live_engine(sessions, peer, [trader], eth="2000")
    await engine.ingest(IncomingPost("x", "@hawk", "1", "Long $ETH now", NOW))
    async with sessions() as s:
        order = (await s.execute(select(Order))).scalar_one()
        alert = (await s.execute(select(OutboxMessage))).scalar_one()
    assert order.status == "rejected" and order.error == "agent_not_approved"
    assert alert.kind == "order_failed" and alert.payload["reason"] == "agent_not_approved"
    assert peer.positions(trader.user.address) == {}


def _tick(market: str, price: str):
    from engine.prices import PriceTick

    return PriceTick(NOW, market, Decimal(price))


async def test_a_lost_answer_is_adopted_after_a_restart_never_sent_twice(sessions, peer) -> None:
    trader = await funded_trader(peer)
    await seed(sessions, [trader])
    engine, _, _ = await live_engine(sessions, peer, [trader], eth="2000")
    # the order reaches Hyperliquid and fills, but its answer never comes back (timeout)
    peer.fail_next("order", status=200, delay=5)
    await engine.ingest(IncomingPost("x", "@hawk", "1", "Long $ETH now", NOW))
    async with sessions() as s:
        order = (await s.execute(select(Order))).scalar_one()
    assert order.status == "pending" and order.error is not None
    assert len(peer.orders(trader.user.address)) == 1  # it did fill there

    # restart: a new engine and venue, same database; the post arrives again too
    engine2, _, _ = await live_engine(sessions, peer, [trader], eth="2000")
    await engine2.start()
    await engine2.ingest(IncomingPost("x", "@hawk", "1", "Long $ETH now", NOW))
    async with sessions() as s:
        order = (await s.execute(select(Order))).scalar_one()
        positions = (await s.execute(select(Position))).scalars().all()
    assert order.status == "filled" and len(positions) == 1
    assert len(peer.orders(trader.user.address)) == 1  # nothing placed twice
    assert peer.positions(trader.user.address)["ETH"].szi == positions[0].size


async def test_a_burst_of_500_orders_stays_within_the_weight_budget(peer) -> None:
    traders = [await funded_trader(peer, usdc="1000000")]
    # a tight budget so the burst must queue: 120 weight per second on both sides
    scale = 60.0
    peer.clock = lambda: time.monotonic() * scale  # the peer's minute is one real second
    peer.weight_limit = 120
    prices = PriceBook()
    prices.update(_tick("ETH", "2000"))
    venue = venue_for(peer, traders, prices, WeightLimiter(budget=120, window=1.0))
    await venue.refresh_markets()
    sem = asyncio.Semaphore(64)  # the engine's order concurrency

    async def one(i: int):
        async with sem:
            return await venue.place_order(
                OrderRequest(
                    f"0x{i:032x}",
                    traders[0].user.address,
                    "ETH",
                    "long",
                    Decimal("0.01"),
                    Decimal(3),
                )
            )

    fills = await asyncio.gather(*(one(i) for i in range(1, 501)))
    assert len(fills) == 500
    assert not [r for r in peer.requests if r.status == 429]
    # the peer's own accounting: in no one-minute window (of its clock) above the budget
    late = [r for r in peer.requests if r.path == "/exchange" and r.at > 0]
    windows = [
        sum(u.weight for u in peer.requests if t <= u.at < t + scale) for t in (r.at for r in late)
    ]
    assert max(windows) <= 120
    assert len({f.client_order_id for f in fills}) == 500  # every order once


async def test_a_websocket_drop_falls_back_to_polling_and_recovers(peer) -> None:
    prices = PriceBook()
    venue = venue_for(peer, [], prices)
    feed = HyperliquidPriceFeed(peer.base_url, lambda: venue.info("allMids", {}), poll_interval=0.1)
    seen: list[tuple[str, Decimal]] = []

    async def pump() -> None:
        async for tick in feed.ticks():
            seen.append((tick.market, tick.price))

    task = asyncio.create_task(pump())
    try:
        await asyncio.wait_for(feed.connected.wait(), 5)
        peer.set_mid("ETH", "2001")
        await until(lambda: _true(("ETH", Decimal(2001)) in seen))
        peer.ws_enabled = False
        await peer.drop_websockets()
        peer.set_mid("ETH", "2002")  # no socket: only polling can see this
        await until(lambda: _true(("ETH", Decimal(2002)) in seen))
        assert feed.mode == "polling"
        polls = len([r for r in peer.requests if r.type == "allMids"])
        assert polls >= 1
        peer.ws_enabled = True
        await asyncio.wait_for(feed.connected.wait(), 10)
        assert feed.mode == "websocket"
        peer.set_mid("ETH", "2003")
        await until(lambda: _true(("ETH", Decimal(2003)) in seen))
    finally:
        task.cancel()
        with contextlib.suppress(asyncio.CancelledError):
            await task


@pytest.mark.parametrize("liquidation", [False, True])
async def test_a_position_closed_outside_maxxit_is_closed_in_our_books(
    sessions, peer, liquidation: bool
) -> None:
    trader = await funded_trader(peer)
    await seed(sessions, [trader])
    clock = [datetime.now(UTC)]
    engine, _, _ = await live_engine(sessions, peer, [trader], "2000", lambda: clock[0])
    await engine.ingest(IncomingPost("x", "@hawk", "1", "Long $ETH now", clock[0]))
    assert await engine.reconcile("HYPERLIQUID") == 0  # in agreement: nothing to do
    ours = lambda: [o for o in peer.orders(trader.user.address) if o.cloid]  # noqa: E731
    placed = len(ours())

    peer.set_mid("ETH", "1990")
    fill = peer.close_externally(trader.user.address, "ETH", liquidation=liquidation)
    assert await engine.reconcile("HYPERLIQUID") == 1
    async with sessions() as s:
        pos = (await s.execute(select(Position))).scalar_one()
        alerts = (
            (await s.execute(select(OutboxMessage).where(OutboxMessage.kind == "position_closed")))
            .scalars()
            .all()
        )
    assert pos.status == "closed"
    assert pos.close_reason == ("liquidation" if liquidation else "external")
    assert pos.exit_price == Decimal(fill.px) and pos.close_fee == Decimal(fill.fee)
    assert (
        pos.realized_pnl
        == (pos.exit_price - pos.entry_price) * pos.size - pos.open_fee - pos.close_fee
    )
    assert [a.payload["close_reason"] for a in alerts] == [pos.close_reason]
    assert len(ours()) == placed  # nothing sent to the venue
    assert await engine.reconcile("HYPERLIQUID") == 0  # and only once
    assert pos.id not in engine.index


async def test_a_partially_filled_close_is_reported_to_the_user(sessions, peer) -> None:
    trader = await funded_trader(peer)
    await seed(sessions, [trader])
    engine, _, _ = await live_engine(sessions, peer, [trader], eth="2000")
    await engine.ingest(IncomingPost("x", "@hawk", "1", "Long $ETH now", NOW))
    async with sessions() as s:
        pos = (await s.execute(select(Position))).scalar_one()
    # Hyperliquid fills only part of the reduce-only IOC (thin book)
    partial = {"filled": {"totalSz": "0.05", "avgPx": "1999", "oid": 77}}
    body = {"status": "ok", "response": {"type": "order", "data": {"statuses": [partial]}}}
    peer.fail_next("order", status=200, body=body)
    await engine.close_positions({pos.id: "manual"})
    async with sessions() as s:
        alerts = (
            (await s.execute(select(OutboxMessage).where(OutboxMessage.kind == "order_failed")))
            .scalars()
            .all()
        )
        pos = await s.get_one(Position, pos.id)
    assert [a.payload["reason"] for a in alerts] == ["partial_fill"]
    # issue 19, item 4: the piece that filled is accounted, the rest stays open and under
    # watch, and the next close attempt (a new client order id) is already written
    assert pos.status == "open" and pos.size == Decimal("0.10")
    assert pos.closed_size == Decimal("0.05") and pos.exit_price is None
    assert pos.closed_gross_pnl == (Decimal(1999) - pos.entry_price) * Decimal("0.05")
    assert pos.id in engine.close_retries.pending
    async with sessions() as s:
        closes = (
            (await s.execute(select(Order).where(Order.purpose == "close").order_by(Order.id)))
            .scalars()
            .all()
        )
    assert [(o.close_seq, o.status, o.size) for o in closes] == [
        (0, "filled", Decimal("0.15")),
        (1, "pending", Decimal("0.10")),
    ]
    assert closes[0].client_order_id != closes[1].client_order_id


async def test_a_duplicate_cloid_refusal_is_looked_up_and_adopted(sessions, peer) -> None:
    """An earlier send of the order reached Hyperliquid but its answer was lost (a timeout
    while the venue was slow); sent again, Hyperliquid refuses the cloid as a duplicate. The
    venue has the order: the engine looks it up and adopts its fill, never writes it off."""
    trader = await funded_trader(peer)
    await seed(sessions, [trader])
    engine, venue, _ = await live_engine(sessions, peer, [trader], eth="2000")
    cloid = client_order_id(await engine.namespace(), 1, 1, "open")  # the first signal's
    await venue.place_order(  # the lost first send, processed by the venue
        OrderRequest(cloid, trader.user.address, "ETH", "long", Decimal("0.15"), Decimal(3))
    )
    await engine.ingest(IncomingPost("x", "@hawk", "1", "Long $ETH now", NOW))
    async with sessions() as s:
        order = (await s.execute(select(Order))).scalar_one()
    assert (order.client_order_id, order.status) == (cloid, "pending")  # not written off
    await engine.resume_pending()
    async with sessions() as s:
        order = (await s.execute(select(Order))).scalar_one()
        pos = (await s.execute(select(Position))).scalar_one()
    assert order.status == "filled"
    assert pos.size == peer.positions(trader.user.address)["ETH"].szi == Decimal("0.15")
    assert pos.entry_price == Decimal(peer.fills(trader.user.address)[0].px)
