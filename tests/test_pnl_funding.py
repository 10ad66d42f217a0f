"""/pnl shows the funding the venue paid or charged, counted in the PnL it reports (issue 19,
item 5), in the user's language."""

from __future__ import annotations

import re
from decimal import Decimal

import pytest
from sqlalchemy import select, update

from storage.models import Position, User
from tests.chat_helpers import World, make_world, text_of
from tests.test_chat_features import deploy, make_agent


@pytest.fixture
async def world(sessions) -> World:
    return await make_world(sessions)


def unrealized(text: str) -> Decimal:
    sign, amount = re.search(r"Total: .*unrealized ([+-])\$([0-9.,]+)", text).groups()
    return Decimal(amount.replace(",", "")) * (1 if sign == "+" else -1)


async def ann_long_eth(world: World):
    ann = world.person("Ann", 1)
    await make_agent(ann, "Hawk")
    await deploy(ann, "Hawk", collateral="100", leverage="5")
    await world.post("@CryptoHawk", "Long $ETH", "p1")
    return ann


async def test_pnl_shows_funding_and_counts_it(world: World) -> None:
    ann = await ann_long_eth(world)
    before = text_of(await ann.say("/pnl"))
    assert "Funding" not in before  # nothing paid yet, nothing shown
    # what engine/money/funding.py accrues to an open position: $1.50 received
    async with world.sessions() as s, s.begin():
        pos = (await s.execute(select(Position))).scalar_one()
        await s.execute(
            update(Position).where(Position.id == pos.id).values(funding_usd=Decimal("1.5"))
        )
    text = text_of(await ann.say("/pnl"))
    assert "Funding received (paid, if negative), included above: +$1.50" in text
    # the mark has not moved: the open position's PnL grew by the funding, exactly
    assert unrealized(text) == unrealized(before) + Decimal("1.50")
    async with world.sessions() as s, s.begin():
        await s.execute(update(User).values(language="es"))
    assert "Financiación recibida" in text_of(await ann.say("/pnl"))


async def test_positions_counts_the_accrued_funding_or_rollover(world: World) -> None:
    ann = await ann_long_eth(world)
    before = text_of(await ann.say("/positions"))
    assert "Funding" not in before
    # what Ostium's rollover accrual (engine/venues/ostium_accrual.py) or Hyperliquid's
    # funding recorded on the open position: $0.25 paid
    async with world.sessions() as s, s.begin():
        await s.execute(update(Position).values(funding_usd=Decimal("-0.25")))
    text = text_of(await ann.say("/positions"))
    assert "Funding received (paid, if negative), included above: -$0.25" in text
    # the mark has not moved: the PnL fell by exactly what holding cost
    assert "Mark 2000 · PnL -$0.25" in before and "Mark 2000 · PnL -$0.50" in text
