"""Complete chat flows through the transport-independent handlers, as a new user lives them."""

from __future__ import annotations

from decimal import Decimal

import pytest
from sqlalchemy import select

from storage.models import Agent, Deployment, Order, Position, User
from tests.chat_helpers import World, make_world, text_of


@pytest.fixture
async def world(sessions) -> World:
    return await make_world(sessions)


async def create_agent(world: World, who, name: str = "Hawk"):
    await who.say("/create")
    await who.say(name)
    await who.say("@CryptoHawk, @MacroMia")
    await who.say("hyperliquid")  # a choice step also takes the choice typed
    await who.say("100")
    await who.say("5")
    await who.say("3")
    await who.say("2")
    await who.say("1")
    await who.say("8")
    await who.say("ignore")  # a market already held: skip the call
    summary = await who.say("10")  # the creator's share
    return summary


async def test_create_then_deploy_then_a_post_opens_a_position_with_an_alert(world: World) -> None:
    ann = world.person("Ann", 1001)
    welcome = await ann.say("/start")
    assert "Welcome to Maxxit" in text_of(welcome)

    r = await ann.say("/create")
    assert "name" in text_of(r)
    await ann.say("Hawk")
    bad = await ann.say("@this_handle_is_far_too_long !!")
    assert "not valid X handles" in text_of(bad)
    r = await ann.say("@CryptoHawk, @MacroMia")
    assert [b.label for b in r.replies[0].buttons[0]] == ["HYPERLIQUID", "OSTIUM", "MULTI"]
    r = await ann.choose(r.replies[0], "HYPERLIQUID")
    assert r.replies[0].edit
    r = await ann.say("lots")
    assert "amount in dollars" in text_of(r)
    await ann.say("$100")
    await ann.say("5x")
    await ann.say("3%")
    await ann.say("2")
    await ann.say("1")
    policy = await ann.say("8")
    # what to do with a call in a market already held, each choice explained
    assert "Flip: the opposite direction closes the position" in text_of(policy)
    labels = [b.label for row in policy.replies[0].buttons for b in row]
    assert labels[:4] == ["Ignore", "Add", "Close", "Flip"]
    share = await ann.choose(policy.replies[0], "Flip")
    # the creator's share, asked with its presets in ascending order
    assert "Your share as the creator" in text_of(share)
    assert [b.label for b in share.replies[0].buttons[0]] == ["0%", "5%", "10%"]
    summary = await ann.choose(share.replies[0], "5%")
    text = text_of(summary)
    assert "Creator share: 5% of followers' live profits" in text
    assert "Name: Hawk" in text and "Stop loss: 3%" in text and "Trailing: 2% / 1%" in text
    assert "Market already held: Flip" in text
    done = await ann.choose(summary.replies[0], "Create")
    assert "Hawk is live" in text_of(done)
    async with world.sessions() as s:
        agent = (await s.execute(select(Agent))).scalar_one()
    assert agent.stop_loss_pct == Decimal("0.03") and agent.leverage == 5
    assert agent.take_profit_pct == Decimal("0.08")
    assert agent.position_policy == "flip" and agent.creator_share_pct == Decimal("0.05")

    r = await ann.choose(done.replies[0], "Deploy")
    assert "collateral per trade" in text_of(r)
    r = await ann.choose(r.replies[0], "$100")
    r = await ann.choose(r.replies[0], "3x")
    r = await ann.choose(r.replies[0], "Trade automatically")
    assert "Mode: paper" in text_of(r)
    r = await ann.choose(r.replies[0], "Deploy")
    assert "is deployed" in text_of(r)

    await world.post("@CryptoHawk", "Long $ETH here, breakout", "p1")
    positions = await ann.say("/positions")
    assert "LONG ETH" in text_of(positions)
    async with world.sessions() as s:
        dep = (await s.execute(select(Deployment))).scalar_one()
        pos = (await s.execute(select(Position))).scalar_one()
    assert dep.leverage == 3 and pos.deployment_id == dep.id

    # a stranger presses the position's Close: refused, nothing changes
    eve = world.person("Eve", 666)
    r = await eve.press(f"pcy:{pos.id}")
    assert r.refused and not r.replies
    async with world.sessions() as s:
        assert (await s.get_one(Position, pos.id)).status == "open"

    ask = await ann.choose(positions.replies[1], "Close")
    assert "Close this position" in text_of(ask)
    closed = await ann.choose(ask.replies[0], "Yes, close")
    assert closed.replies[0].edit and "closed by you" in text_of(closed)
    async with world.sessions() as s:
        assert (await s.get_one(Position, pos.id)).status == "closed"
    assert "realized" in text_of(await ann.say("/pnl"))
    assert "ETH" in text_of(await ann.say("/history"))


async def test_manual_approval_confirm_skip_and_expiry(world: World) -> None:
    ann = world.person("Ann", 1)
    bob = world.person("Bob", 2)
    await create_agent(world, ann)
    summary = ann.last
    assert summary is not None
    await ann.choose(summary.replies[0], "Create")
    for who in (ann, bob):
        r = await who.say("/deploy hawk")
        r = await who.say("100")
        r = await who.say("2")
        r = await who.choose(r.replies[0], "Ask me first")
        await who.choose(r.replies[0], "Deploy")
    await world.post("@CryptoHawk", "Long $ETH", "p1")
    async with world.sessions() as s:
        orders = {o.deployment_id: o for o in (await s.execute(select(Order))).scalars().all()}
    assert {o.status for o in orders.values()} == {"awaiting_approval"}
    ann_order, bob_order = sorted(orders.values(), key=lambda o: o.deployment_id)
    # Bob cannot decide Ann's order
    r = await bob.press(f"ok:{ann_order.id}")
    assert r.refused
    r = await ann.press(f"ok:{ann_order.id}")
    assert "filled" in text_of(r)
    again = await ann.press(f"ok:{ann_order.id}")
    assert "already" in (again.notice or "")
    world.advance(400)  # past the 5-minute approval window
    late = await bob.press(f"ok:{bob_order.id}")
    assert "expired" in text_of(late)
    async with world.sessions() as s:
        statuses = {o.id: o.status for o in (await s.execute(select(Order))).scalars().all()}
        assert len((await s.execute(select(Position))).scalars().all()) == 1
    assert statuses == {ann_order.id: "filled", bob_order.id: "skipped"}


async def test_every_wrong_input_gets_a_clear_message_and_nothing_changes(world: World) -> None:
    ann = world.person("Ann", 1, language="es-419")
    r = await ann.say("hello?")
    assert r.replies and "/help" in text_of(r)
    r = await ann.say("/nonsense")
    assert "/nonsense" in text_of(r)
    r = await ann.press("zz:1")
    assert r.refused
    r = await ann.press("pc:99999999")
    assert r.refused
    r = await ann.say("/deploy NoSuchAgent")
    assert "NoSuchAgent" in text_of(r)
    r = await ann.say("/call DOGGO long")
    assert "DOGGO" in text_of(r)
    async with world.sessions() as s:
        user = (await s.execute(select(User))).scalar_one()
    assert user.language == "es"
