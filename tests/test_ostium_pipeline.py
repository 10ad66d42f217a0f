"""The whole pipeline on Ostium against the local stand-in: a post -> a MULTI agent's signal
for gold (only Ostium lists XAU) -> a delegated open -> the keeper's fill -> the stop set on the
trade on chain and moved as the trailing stop moves -> the trailing stop closes it -> PnL from
the chain's events (opening fee and rollover) to the last digit; a crash between the order and
the keeper's fill adopted on restart; refusals (below the minimum, no delegation) told."""

from __future__ import annotations

import asyncio
import contextlib
import time
from decimal import Decimal

from sqlalchemy import select

from engine.classify.rules import RulesClassifier
from engine.ingest import IncomingPost
from engine.markets import hyperliquid_markets
from engine.pipeline import Engine
from engine.prices import PriceBook, PriceTick
from engine.venues.ostium_feed import OstiumPriceFeed
from engine.venues.ostium_protection import OstiumProtection, ProtectionSet
from engine.venues.paper import PaperVenue
from handlers.alerts import render
from storage.enums import DeploymentMode
from storage.models import (
    Agent,
    Deployment,
    Order,
    OutboxMessage,
    Position,
    RoutingDecision,
    Source,
    User,
    agent_sources,
)
from storage.types import utcnow
from tests.ostium_helpers import Trader, funded_trader, venue_for

E18 = Decimal(10**18)


async def seed(sessions, traders: list[Trader], collateral: str = "100") -> None:
    async with sessions() as s, s.begin():
        src = Source(kind="x", handle="@goldbug")
        s.add(src)
        agent = Agent(
            name="Goldbug",
            venue="MULTI",
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
                    leverage=Decimal(5),
                    account=t.user.address,
                )
            )


async def live_engine(sessions, ostium, traders, fill_wait: float = 5.0):
    prices = PriceBook()
    venue = venue_for(ostium, sessions, traders, prices, fill_wait=fill_wait)
    await venue.refresh_markets()
    # Hyperliquid's listing beside it (paper here): it has no XAU, so MULTI must pick Ostium
    hyperliquid = PaperVenue("HYPERLIQUID", hyperliquid_markets(), prices)
    venues = {"HYPERLIQUID": hyperliquid, "OSTIUM": venue}
    engine = Engine(sessions, venues, prices, RulesClassifier(), clock=utcnow)
    engine.protection = ProtectionSet([OstiumProtection(sessions, venue)])  # type: ignore[assignment]
    return engine, venue, prices


async def is_closed(sessions, position_id: int) -> bool:
    async with sessions() as s:
        return (await s.get_one(Position, position_id)).status == "closed"


async def until(predicate, timeout: float = 10.0) -> None:  # noqa: ASYNC109
    deadline = time.monotonic() + timeout
    while not await predicate():
        if time.monotonic() > deadline:
            raise AssertionError("condition not met in time")
        await asyncio.sleep(0.05)


@contextlib.asynccontextmanager
async def live_prices(engine: Engine, venue):
    feed = OstiumPriceFeed(venue.quotes, poll_interval=0.05)

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


async def _true(value) -> bool:
    return bool(value)


async def test_post_to_trailing_close_on_ostium_with_pnl_from_the_chain(sessions, ostium) -> None:
    ostium.keeper.triggers = False  # our trailing stop closes it, not Ostium's automation
    trader = funded_trader(ostium, usdc="1000")
    await seed(sessions, [trader])
    engine, venue, prices = await live_engine(sessions, ostium, [trader])
    async with live_prices(engine, venue):
        await until(lambda: _true(prices.price("XAU") is not None))
        outcome = await engine.ingest(IncomingPost("x", "@goldbug", "1", "Long $XAU now", utcnow()))
        assert [s.venue for s in outcome.signals] == ["OSTIUM"]
        async with sessions() as s:
            order = (await s.execute(select(Order))).scalar_one()
            pos = (await s.execute(select(Position))).scalar_one()
            decision = (await s.execute(select(RoutingDecision))).scalar_one()
        assert order.status == "filled" and order.venue == "OSTIUM"
        assert [c["venue"] for c in decision.candidates if c["lists_market"]] == ["OSTIUM"]
        # 100 USDC at 5x: 0.25 XAU; the opening fee Ostium charged (0.04 % of 500)
        assert (pos.entry_price, pos.size, pos.open_fee) == (
            Decimal(2000),
            Decimal("0.25"),
            Decimal("0.2"),
        )
        assert ostium.usdc_balance(trader.user.address) == Decimal(900)
        # the stop rests on the trade on chain
        [trade] = ostium.open_trades(trader.user.address)
        assert Decimal(trade["stopLossPrice"]) / E18 == pytest_approx(Decimal(1940))

        ostium.set_price("XAU", "2050")  # +2.5 %: trailing starts, the stop at 2029.5
        await until(lambda: _true(engine.index.state(pos.id)[2]))
        await engine.checkpoint()  # the trailing stop saved, and moved on chain
        [trade] = ostium.open_trades(trader.user.address)
        assert Decimal(trade["stopLossPrice"]) / E18 == pytest_approx(Decimal("2029.5"))

        ostium.set_price("XAU", "2025")  # through the trailing stop
        await until(lambda: is_closed(sessions, pos.id))
    async with sessions() as s:
        pos = await s.get_one(Position, pos.id)
    assert pos.close_reason == "trailing_stop" and pos.exit_price == Decimal(2025)
    assert ostium.open_trades(trader.user.address) == []
    gross = (pos.exit_price - pos.entry_price) * pos.size
    assert gross == Decimal("6.25")
    # no closing fee; the rollover Ostium charged for the blocks it was open, as funding
    assert pos.close_fee == 0 and pos.funding_usd < 0
    assert pos.realized_pnl == gross - pos.open_fee + pos.funding_usd
    # the books equal the wallet: what came back minus what went in, to the last digit
    assert ostium.usdc_balance(trader.user.address) - Decimal(1000) == pos.realized_pnl


def pytest_approx(value: Decimal):
    import pytest

    return pytest.approx(value, rel=Decimal("1e-9"))


async def test_a_crash_before_the_keepers_fill_is_adopted_on_restart(sessions, ostium) -> None:
    trader = funded_trader(ostium, usdc="1000")
    await seed(sessions, [trader])
    engine, _, prices = await live_engine(sessions, ostium, [trader], fill_wait=0.2)
    ostium.keeper.hold = True
    prices.update(PriceTick(utcnow(), "XAU", Decimal(2000)))
    await engine.ingest(IncomingPost("x", "@goldbug", "1", "Long $XAU now", utcnow()))
    async with sessions() as s:
        order = (await s.execute(select(Order))).scalar_one()
    assert order.status == "pending" and order.error == "pending"

    # the process dies; the keeper fills while it is down; a new process starts
    ostium.keeper.hold = False
    await until(lambda: _true(ostium.open_trades(trader.user.address)))
    engine2, _, prices2 = await live_engine(sessions, ostium, [trader])
    prices2.update(PriceTick(utcnow(), "XAU", Decimal(2000)))
    await engine2.start()
    async with sessions() as s:
        order = (await s.execute(select(Order))).scalar_one()
        positions = (await s.execute(select(Position))).scalars().all()
    assert order.status == "filled" and len(positions) == 1
    assert positions[0].size == Decimal("0.25") and positions[0].open_fee == Decimal("0.2")
    # one order ever asked of Ostium, one trade: adopted, never sent again (the agent's other
    # transaction is the stop set on the trade)
    assert ostium.contracts.ostium.functions.orderCounter().call() == 1
    assert len(ostium.open_trades(trader.user.address)) == 1


async def test_below_the_minimum_is_refused_and_the_user_told_why(sessions, ostium) -> None:
    trader = funded_trader(ostium, usdc="1000")
    await seed(sessions, [trader], collateral="20")  # 20 x 5 = 100 < XAU's 250 minimum
    engine, _, prices = await live_engine(sessions, ostium, [trader])
    prices.update(PriceTick(utcnow(), "XAU", Decimal(2000)))
    await engine.ingest(IncomingPost("x", "@goldbug", "1", "Long $XAU now", utcnow()))
    async with sessions() as s:
        order = (await s.execute(select(Order))).scalar_one()
        alerts = (await s.execute(select(OutboxMessage))).scalars().all()
    # refused before any transaction: Ostium's minimum (the subgraph's minLevPos) is the
    # market's minimum notional, which sizing checks
    assert order.status == "rejected" and order.error == "below_min_notional"
    assert [a.payload["reason"] for a in alerts if a.kind == "order_failed"] == [
        "below_min_notional"
    ]
    failed = next(a for a in alerts if a.kind == "order_failed")
    assert "minimum size" in render(failed.kind, failed.payload, "en")
    assert ostium.w3.eth.get_transaction_count(trader.agent.address) == 0


async def test_an_agent_key_without_delegation_is_refused_and_the_user_told(
    sessions, ostium
) -> None:
    trader = funded_trader(ostium, usdc="1000", delegated=False)
    await seed(sessions, [trader])
    engine, _, prices = await live_engine(sessions, ostium, [trader])
    prices.update(PriceTick(utcnow(), "XAU", Decimal(2000)))
    await engine.ingest(IncomingPost("x", "@goldbug", "1", "Long $XAU now", utcnow()))
    async with sessions() as s:
        order = (await s.execute(select(Order))).scalar_one()
        alert = (await s.execute(select(OutboxMessage))).scalar_one()
    assert order.status == "rejected" and order.error == "delegation_missing"
    assert alert.kind == "order_failed" and alert.payload["reason"] == "delegation_missing"
    assert ostium.usdc_balance(trader.user.address) == Decimal(1000)


async def test_a_stop_ostium_triggered_while_we_were_down_is_closed_in_the_books(
    sessions, ostium
) -> None:
    trader = funded_trader(ostium, usdc="1000")
    await seed(sessions, [trader])
    engine, _, prices = await live_engine(sessions, ostium, [trader])
    prices.update(PriceTick(utcnow(), "XAU", Decimal(2000)))
    await engine.ingest(IncomingPost("x", "@goldbug", "1", "Long $XAU now", utcnow()))
    [trade] = ostium.open_trades(trader.user.address)
    assert Decimal(trade["stopLossPrice"]) / E18 == pytest_approx(Decimal(1940))

    # our process is down; gold falls through the stop resting on the trade, and Ostium's
    # automation (the keeper here) closes it
    ostium.set_price("XAU", "1930")
    await until(lambda: _true(not ostium.open_trades(trader.user.address)))

    restarted, _, prices2 = await live_engine(sessions, ostium, [trader])
    prices2.update(PriceTick(utcnow(), "XAU", Decimal(1930)))
    await restarted.start()
    assert await restarted.reconcile("OSTIUM") == 1
    async with sessions() as s:
        pos = (await s.execute(select(Position))).scalar_one()
    assert pos.status == "closed" and pos.close_reason == "stop_loss"
    assert pos.exit_price == Decimal(1930)
    # no closing fee: the rollover Ostium charged at the close is the position's funding
    assert pos.close_fee == 0 and pos.funding_usd < 0
    assert pos.realized_pnl == (pos.exit_price - pos.entry_price) * pos.size - pos.open_fee + (
        pos.funding_usd
    )
    assert ostium.usdc_balance(trader.user.address) - Decimal(1000) == pos.realized_pnl
    assert await restarted.reconcile("OSTIUM") == 0  # closed once
