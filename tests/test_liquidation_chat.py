"""Liquidation as a user meets it: /create and /deploy refuse a stop the venue would liquidate
before, saying why with the numbers; /positions shows the liquidation price; a paper position
that gaps past it loses its collateral and no more."""

from __future__ import annotations

from decimal import Decimal

import pytest
from sqlalchemy import select, update

from engine.liquidation import liquidation_price
from handlers.format import price
from storage.models import Agent, Deployment, Position
from tests.chat_helpers import Person, World, make_world, text_of

REFUSAL_20X_6PCT = (
    "At 20x a short on BTC (HYPERLIQUID, maintenance margin 1%) is liquidated about 3.96% above"
    " its entry, a long about 4.04% below it: a 6% stop would never trigger. Use a stop under"
    " 3.96% or a lower leverage."
)


@pytest.fixture
async def world(sessions) -> World:
    return await make_world(sessions)


async def create_to_stop(who: Person, name: str, leverage: str, venue: str = "HYPERLIQUID"):
    await who.say("/create")
    await who.say(name)
    await who.say("@CryptoHawk")
    await who.say(venue)
    await who.say("100")
    return await who.say(leverage)


async def finish_create(who: Person, stop: str) -> None:
    r = await who.say(stop)
    assert "start trailing" in text_of(r), text_of(r)
    await who.say("none")
    await who.say("none")
    await who.say("ignore")
    summary = await who.say("10")
    done = await who.choose(summary.replies[0], "Create")
    assert "is live" in text_of(done), text_of(done)


async def test_create_refuses_a_stop_past_the_liquidation_price_and_says_why(
    world: World,
) -> None:
    ann = world.person("Ann", 1)
    r = await create_to_stop(ann, "Hawk", "20")
    assert "Stop loss" in text_of(r)
    refused = await ann.say("6")
    assert text_of(refused) == REFUSAL_20X_6PCT
    # still at the stop step: a stop under the limit is taken
    await finish_create(ann, "3.5")
    async with world.sessions() as s:
        agent = (await s.execute(select(Agent))).scalar_one()
    assert agent.leverage == 20 and agent.stop_loss_pct == Decimal("0.035")


async def test_create_checks_every_market_of_the_agents_venues(world: World) -> None:
    ann = world.person("Ann", 1, language="es")
    await create_to_stop(ann, "Goldie", "50", venue="OSTIUM")
    # Ostium's 50x markets (BTC, mmr 1%) leave 0.99% at 50x; its 100x ones (mmr 0.5%) 1.49%
    refused = await ann.say("1.2")
    text = text_of(refused)
    assert "Con 50x, un short en BTC (OSTIUM" in text and "menor que 0.99%" in text, text
    r = await ann.say("0.9")
    assert "trailing" in text_of(r).lower() or "Trailing" in text_of(r), text_of(r)


async def test_deploy_refuses_a_leverage_that_puts_the_agents_stop_past_liquidation(
    world: World,
) -> None:
    ann = world.person("Ann", 1)
    await create_to_stop(ann, "Hawk", "20")
    await finish_create(ann, "3")
    async with world.sessions() as s, s.begin():  # an agent made before the check existed
        await s.execute(update(Agent).values(stop_loss_pct=Decimal("0.06")))

    await ann.say("/deploy Hawk")
    ask = await ann.say("100")
    labels = [b.label for row in ask.replies[0].buttons for b in row]
    assert "5x" in labels and "20x" not in labels  # only leverages the stop survives
    refused = await ann.say("20")
    text = text_of(refused)
    assert text.startswith("At 20x a short on BTC (HYPERLIQUID, maintenance margin 1%)"), text
    assert "Hawk's 6% stop would never trigger (a stop must stay under 3.96%)" in text
    # at 9x HYPE (10x max, mmr 5%) is liquidated 5.82% away; at 8x 7.14%
    assert text.endswith("Choose 8x or less."), text
    assert "manual approval" not in text  # still at the leverage step
    assert "manual approval" in text_of(await ann.say("8"))

    # an agent whose stop no leverage makes reachable cannot be deployed at all
    async with world.sessions() as s, s.begin():
        await s.execute(update(Agent).values(stop_loss_pct=Decimal("0.95")))
    await ann.say("/cancel")
    await ann.say("/deploy Hawk")
    await ann.say("100")
    text = text_of(await ann.say("1"))
    assert text.startswith("Even at 1x a short on HYPE (HYPERLIQUID, maintenance margin 5%)"), text
    assert "cannot be deployed safely" in text
    async with world.sessions() as s:
        assert (await s.execute(select(Deployment))).first() is None


async def deploy(who: Person, agent: str, leverage: str) -> None:
    await who.say(f"/deploy {agent}")
    await who.say("100")
    await who.say(leverage)
    r = await who.say("Trade automatically")
    r = await who.choose(r.replies[0], "Deploy")
    assert "is deployed" in text_of(r), text_of(r)


async def test_positions_show_the_liquidation_price(world: World) -> None:
    ann = world.person("Ann", 1)
    await create_to_stop(ann, "Hawk", "10")
    await finish_create(ann, "3")
    await deploy(ann, "Hawk", "10")
    await world.post("@CryptoHawk", "Long $ETH here", "p1")
    async with world.sessions() as s:
        pos = (await s.execute(select(Position))).scalar_one()
    assert pos.leverage == 10
    # ETH lists 50x: mmr 1%, a 10x long is liquidated at entry * 0.9 / 0.99
    expected = pos.entry_price * Decimal("0.9") / Decimal("0.99")
    assert liquidation_price("long", pos.entry_price, pos.leverage, Decimal("0.01")) == expected
    text = text_of(await ann.say("/positions"))
    assert f"Liq. ≈ {price(expected)}" in text, text
    assert price(expected).startswith("181")  # entry about 2001


async def test_a_paper_long_gapping_past_liquidation_loses_its_collateral_and_no_more(
    world: World,
) -> None:
    ann = world.person("Ann", 1)
    await create_to_stop(ann, "Hawk", "10")
    await finish_create(ann, "3")
    await deploy(ann, "Hawk", "10")
    await world.post("@CryptoHawk", "Long $ETH here", "p1")
    # one tick from 2000 to 1500: past the stop (1941), the liquidation (1819) and the
    # price at which the position's whole margin is gone (1801)
    assert await world.price("ETH", "1500") == 1
    async with world.sessions() as s:
        pos = (await s.execute(select(Position))).scalar_one()
    assert (pos.status, pos.close_reason) == ("closed", "liquidation")
    collateral = pos.entry_price * pos.size / pos.leverage
    liq = liquidation_price("long", pos.entry_price, pos.leverage, Decimal("0.01"))
    assert abs(pos.exit_price - liq) < Decimal("0.0001")
    taker = Decimal("4.5e-4") * pos.exit_price * pos.size
    loss = -pos.realized_pnl
    assert abs(loss - (collateral + pos.open_fee + taker)) < Decimal("0.0001"), loss
    assert loss < (pos.entry_price - 1500) * pos.size  # what a fill at the mark would lose
