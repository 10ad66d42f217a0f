"""Paper trading on Ostium's live prices: a paper deployment of an Ostium agent fills in the
paper venue at the price Ostium's price API publishes, with Ostium's live listing (its minimum
position from the subgraph), and nothing reaches the chain."""

from __future__ import annotations

import asyncio
from decimal import Decimal

from sqlalchemy import select

from engine.classify.rules import RulesClassifier
from engine.ingest import IncomingPost
from engine.markets import ostium_markets
from engine.pipeline import Engine
from engine.prices import PriceBook
from engine.venues.ostium_feed import OstiumPriceFeed
from engine.venues.paper import FeeConfig, PaperVenue
from engine.venues.routed import AccountRoutedVenue
from storage.enums import DeploymentMode
from storage.models import Agent, Deployment, Order, Source, User, agent_sources
from storage.types import utcnow
from tests.ostium_helpers import venue_for


async def test_a_paper_deployment_fills_at_ostiums_price_and_nothing_on_chain(
    sessions, ostium
) -> None:
    prices = PriceBook()
    live = venue_for(ostium, sessions, [], prices)
    await live.refresh_markets()
    paper = PaperVenue("OSTIUM", ostium_markets(), prices, FeeConfig(Decimal(0), Decimal(0)))
    venue = AccountRoutedVenue(paper, live)
    assert venue.markets()["XAU"].min_notional == Decimal(250)  # the live listing
    engine = Engine(sessions, {"OSTIUM": venue}, prices, RulesClassifier(), clock=utcnow)
    async with sessions() as s, s.begin():
        src = Source(kind="x", handle="@gold")
        agent = Agent(
            name="Gold", venue="OSTIUM", leverage=Decimal(5), stop_loss_pct=Decimal("0.03")
        )
        user = User(display_name="p", settings={})
        s.add_all([src, agent, user])
        await s.flush()
        await s.execute(agent_sources.insert(), [{"agent_id": agent.id, "source_id": src.id}])
        s.add(
            Deployment(
                user_id=user.id,
                agent_id=agent.id,
                mode=DeploymentMode.PAPER,
                collateral_usd=Decimal(100),
                leverage=Decimal(5),
                account=f"paper:{user.id}",
            )
        )
    ostium.set_price("XAU", "2345.5")
    feed = OstiumPriceFeed(live.quotes, poll_interval=0.05)
    ticks = feed.ticks()
    tick = await asyncio.wait_for(anext(_markets(ticks, "XAU")), 5)
    await engine.on_price(tick)
    await engine.ingest(IncomingPost("x", "@gold", "1", "Long $XAU now", utcnow()))
    async with sessions() as s:
        order = (await s.execute(select(Order))).scalar_one()
    assert order.status == "filled" and order.fill_price == Decimal("2345.5")
    assert ostium.contracts.ostium.functions.orderCounter().call() == 0  # paper: no chain
    await ticks.aclose()


async def _markets(ticks, market: str):
    async for tick in ticks:
        if tick.market == market:
            yield tick
