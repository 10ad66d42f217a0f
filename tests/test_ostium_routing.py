"""MULTI routes by cost where both venues list the market: Hyperliquid (its stand-in, taker
both ways) against Ostium (its stand-in, an opening fee only); the decision keeps every
candidate's cost, the alert says why, and the trade goes where it was routed. Eligibility:
a size below a venue's minimum, or no account there, takes the venue out."""

from __future__ import annotations

from datetime import timedelta
from decimal import Decimal

from sqlalchemy import select

from engine.classify.rules import RulesClassifier
from engine.ingest import IncomingPost
from engine.pipeline import Engine
from engine.prices import PriceBook, PriceTick
from engine.route_cost import TradeShape, cheapest, quote
from engine.venues.cost_terms import CostTerms
from handlers.alerts import render
from storage.enums import DeploymentMode
from storage.models import (
    Agent,
    AgentKey,
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
from tests import hl_helpers
from tests.ostium_helpers import funded_trader, venue_for


async def seed(sessions, account: str, collateral: str = "100") -> None:
    async with sessions() as s, s.begin():
        src = Source(kind="x", handle="@both")
        agent = Agent(
            name="Both", venue="MULTI", leverage=Decimal(5), stop_loss_pct=Decimal("0.05")
        )
        s.add_all([src, agent])
        await s.flush()
        await s.execute(agent_sources.insert(), [{"agent_id": agent.id, "source_id": src.id}])
        user = User(display_name="u", settings={})
        s.add(user)
        await s.flush()
        s.add(
            Deployment(
                user_id=user.id,
                agent_id=agent.id,
                mode=DeploymentMode.LIVE,
                collateral_usd=Decimal(collateral),
                leverage=Decimal(5),
                account=account,
            )
        )
        # Maxxit's keys for this user on both venues (Hyperliquid's approved)
        for venue in ("HYPERLIQUID", "OSTIUM"):
            s.add(
                AgentKey(
                    user_id=user.id,
                    venue=venue,
                    address="0x" + "ab" * 20,
                    ciphertext=b"-",
                    master_key_id="test",
                    approved_at=utcnow(),
                )
            )


async def both_venues(sessions, peer, ostium, ostium_taker_fee_p: int):
    ostium.pair("ETH").taker_fee_p = ostium_taker_fee_p
    trader = funded_trader(ostium, usdc="1000")
    # the same wallet on Hyperliquid, funded, with an agent approved there
    peer.fund(trader.user.address, Decimal(1000))
    await hl_helpers.approve(peer, trader.user, trader.agent)
    prices = PriceBook()
    prices.update(PriceTick(utcnow(), "ETH", Decimal(2000)))
    hyperliquid = hl_helpers.venue_for(peer, [hl_helpers.Trader(trader.user, trader.agent)], prices)
    await hyperliquid.refresh_markets()
    venue = venue_for(ostium, sessions, [trader], prices)
    await venue.refresh_markets()
    await venue.quotes()  # the last quote, for the spread
    engine = Engine(
        sessions, {"HYPERLIQUID": hyperliquid, "OSTIUM": venue}, prices, RulesClassifier()
    )
    await seed(sessions, trader.user.address)
    return engine, trader


async def test_multi_routes_to_ostium_when_it_is_cheaper_and_says_why(
    sessions, peer, ostium
) -> None:
    # Ostium: 0.03 % to open, nothing to close; Hyperliquid: 0.045 % each way and its book's
    # spread (the stand-in's: 0.01 % of 2000), no funding
    engine, trader = await both_venues(sessions, peer, ostium, ostium_taker_fee_p=30_000)
    outcome = await engine.ingest(IncomingPost("x", "@both", "1", "Long $ETH now", utcnow()))
    assert [s.venue for s in outcome.signals] == ["OSTIUM"]
    async with sessions() as s:
        decision = (await s.execute(select(RoutingDecision))).scalar_one()
        order = (await s.execute(select(Order))).scalar_one()
        opened = (
            await s.execute(select(OutboxMessage).where(OutboxMessage.kind == "position_opened"))
        ).scalar_one()
    assert decision.reason == "cheapest"
    costs = {c["venue"]: (c["cost_pct"], c["eligible"]) for c in decision.candidates}
    assert costs == {"HYPERLIQUID": ("0.1000", True), "OSTIUM": ("0.0300", True)}
    assert order.venue == "OSTIUM" and order.status == "filled"
    assert len(ostium.open_trades(trader.user.address)) == 1
    assert peer.positions(trader.user.address) == {}
    text = render(opened.kind, opened.payload, "en")
    assert "Ostium: 0.07% cheaper than Hyperliquid for this size" in text


async def test_multi_routes_to_hyperliquid_when_ostium_costs_more(sessions, peer, ostium) -> None:
    engine, trader = await both_venues(sessions, peer, ostium, ostium_taker_fee_p=200_000)
    outcome = await engine.ingest(IncomingPost("x", "@both", "1", "Long $ETH now", utcnow()))
    assert [s.venue for s in outcome.signals] == ["HYPERLIQUID"]
    async with sessions() as s:
        decision = (await s.execute(select(RoutingDecision))).scalar_one()
        position = (await s.execute(select(Position))).scalar_one()
    costs = {c["venue"]: c["cost_pct"] for c in decision.candidates}
    assert costs == {"HYPERLIQUID": "0.1000", "OSTIUM": "0.2000"}
    assert position.venue == "HYPERLIQUID"
    assert peer.positions(trader.user.address)["ETH"].szi == position.size
    assert ostium.open_trades(trader.user.address) == []


def _terms(fee: str, min_notional: str = "0", max_leverage: str = "50") -> CostTerms:
    return CostTerms(
        Decimal(fee), Decimal(0), Decimal("0.00001"), Decimal(0), Decimal(min_notional),
        Decimal(1), Decimal(max_leverage),
    )  # fmt: skip


def test_the_cheapest_venue_is_skipped_when_the_size_or_account_does_not_fit() -> None:
    shape = TradeShape(Decimal(100), Decimal(5), timedelta(hours=10))
    cheap_but_big_minimum = quote("OSTIUM", _terms("0.0001", min_notional="250"), shape, True)
    dear = quote("HYPERLIQUID", _terms("0.0009"), shape, True)
    assert cheap_but_big_minimum["why"] == "below_min"
    # 0.09 % fees + 10 hours at 0.001 % an hour
    assert dear["cost_pct"] == "0.1000" and dear["holding_pct"] == "0.0100"
    assert cheapest([cheap_but_big_minimum, dear])[:2] == ("HYPERLIQUID", "only_eligible")
    no_account = quote("OSTIUM", _terms("0.0001"), shape, has_account=False)
    assert no_account["why"] == "no_account"
    too_much_leverage = quote("OSTIUM", _terms("0.0001", max_leverage="3"), shape, True)
    assert too_much_leverage["why"] == "leverage_out_of_bounds"
    venue, reason, saving = cheapest([quote("OSTIUM", _terms("0.0001"), shape, True), dear])
    assert (venue, reason, saving) == ("OSTIUM", "cheapest", Decimal("0.0800"))
