"""A creator's own tools: /myagents to edit, pause and retire an agent; /call asks which agent
(or takes `/call <agent> ...`); the agent's own source is not listed as one of its sources."""

from __future__ import annotations

from decimal import Decimal

import pytest
from sqlalchemy import select

from storage.models import Agent, Deployment, Position
from tests.chat_helpers import World, make_world, text_of
from tests.test_chat_features import deploy, make_agent


@pytest.fixture
async def world(sessions) -> World:
    return await make_world(sessions)


async def test_the_marketplace_lists_followed_accounts_not_the_agents_own_source(
    world: World,
) -> None:
    ann = world.person("Ann", 1)
    await make_agent(ann, "Hawk", sources="@CryptoHawk @MacroMia")
    card = text_of(await ann.say("/agents"))
    # the own source (the creator's /call, a source named Hawk) is not one of them
    assert "\nSources: @CryptoHawk, @MacroMia\n" in card


async def test_a_creator_edits_pauses_and_retires_an_agent(world: World) -> None:
    ann, bob = world.person("Ann", 1), world.person("Bob", 2)
    await make_agent(ann, "Hawk")
    await deploy(bob, "Hawk")
    mine = await ann.say("/myagents")
    assert "Hawk (active)" in text_of(mine)
    # nobody else can act on it
    assert (await bob.choose(mine.replies[0], "Pause")).refused

    # Edit: every setting asked again, contradictions still refused
    r = await ann.choose(mine.replies[0], "Edit")
    assert "Maximum leverage for Hawk? Now 5x" in text_of(r)
    await ann.say("3")
    await ann.say("2")
    await ann.say("4")
    assert "not smaller than the 4% gain" in text_of(await ann.say("5"))
    await ann.say("1")
    await ann.say("none")
    ask = await ann.say("20")
    assert "how many hours may its limit order wait for it? Now 24 h" in text_of(ask)
    assert "whole number of hours from 1 to 168" in text_of(await ann.say("2.5"))
    assert "whole number of hours from 1 to 168" in text_of(await ann.say("500"))
    summary = await ann.say("12h")
    assert "Leverage: 3x" in text_of(summary) and "Creator share: 20%" in text_of(summary)
    assert "Limit entries wait: 12 h" in text_of(summary)
    await ann.choose(summary.replies[0], "Save")
    async with world.sessions() as s:
        agent = (await s.execute(select(Agent))).scalar_one()
    assert agent.leverage == 3 and agent.stop_loss_pct == Decimal("0.02")
    assert agent.trailing_activation_pct == Decimal("0.04") and agent.take_profit_pct is None
    assert agent.creator_share_pct == Decimal("0.2") and agent.limit_ttl_hours == 12

    # Pause: its calls are not traded, it is not offered; Resume brings it back
    mine = await ann.say("/myagents")
    paused = await ann.choose(mine.replies[0], "Pause")
    assert "paused: no new calls are traded" in text_of(paused)
    await world.post("@CryptoHawk", "Long $ETH", "p1")
    async with world.sessions() as s:
        assert (await s.execute(select(Position))).first() is None
    assert "Hawk" not in text_of(await ann.say("/agents"))
    await ann.choose(paused.replies[0], "Resume")
    await world.post("@CryptoHawk", "Long $ETH", "p2")
    async with world.sessions() as s:
        assert len((await s.execute(select(Position))).all()) == 1

    # Retire: asked first, then followers' deployments stop
    mine = await ann.say("/myagents")
    ask = await ann.choose(mine.replies[0], "Retire")
    assert "Retire Hawk for good?" in text_of(ask)
    done = await ann.choose(ask.replies[0], "Yes, retire it")
    assert "Hawk is retired. Deployments stopped: 1." in text_of(done)
    async with world.sessions() as s:
        assert (await s.execute(select(Deployment.status))).scalar_one() == "stopped"
    assert "not created an agent" in text_of(await ann.say("/myagents"))
    assert "is deployed" not in text_of(await bob.say("/deploy Hawk"))


async def test_call_asks_which_agent_or_takes_it_named(world: World) -> None:
    ann, bob, cid = world.person("Ann", 1), world.person("Bob", 2), world.person("Cid", 3)
    await make_agent(ann, "Hawk")
    await make_agent(ann, "Gold Desk", sources="@MacroMia")
    await deploy(bob, "Hawk")
    await deploy(cid, "Gold Desk")
    ask = await ann.say("/call ETH long breakout")
    assert "Which of your agents posts LONG ETH?" in text_of(ask)
    assert [b.label for b in ask.replies[0].buttons[0]] == ["Hawk", "Gold Desk"]
    posted = await ann.choose(ask.replies[0], "Gold Desk")
    assert "Gold Desk" in text_of(posted) and "Hawk" not in text_of(posted)
    async with world.sessions() as s:
        holders = (
            await s.execute(
                select(Deployment.user_id).join(Position, Position.deployment_id == Deployment.id)
            )
        ).all()
    assert len(holders) == 1  # only Gold Desk's follower trades it
    named = await ann.say("/call gold desk SOL short")
    assert "Gold Desk" in text_of(named) and "Which" not in text_of(named)
