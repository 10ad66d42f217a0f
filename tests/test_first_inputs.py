"""Inputs a new user types: profile links as handles, a percentage is not an amount of money,
'did you mean' for a near miss, presets in ascending order, 'no limit' instead of '-'."""

from __future__ import annotations

import pytest

from tests.chat_helpers import World, make_world, text_of
from tests.test_chat_features import make_agent


@pytest.fixture
async def world(sessions) -> World:
    return await make_world(sessions)


async def test_x_profile_links_are_handles(world: World) -> None:
    ann = world.person("Ann", 1)
    await ann.say("/create")
    await ann.say("Hawk")
    r = await ann.say("https://x.com/CryptoHawk, x.com/MacroMia twitter.com/GoldBug?s=20")
    assert "Where should Hawk trade?" in text_of(r)
    for answer in ("HYPERLIQUID", "100", "5", "3", "none", "none", "ignore"):
        await ann.say(answer)
    summary = text_of(await ann.say("10"))
    assert "Sources: @CryptoHawk, @MacroMia, @GoldBug" in summary
    assert "Trailing: none" in summary and "Take profit: none" in summary


async def test_a_percentage_is_refused_as_money_and_presets_ascend(world: World) -> None:
    await make_agent(world.person("Ann", 1), "Hawk")
    bob = world.person("Bob", 2)
    ask = await bob.say("/deploy Hawk")
    assert [b.label for b in ask.replies[0].buttons[0]] == ["$50.00", "$100.00", "$250.00"]
    refused = await bob.say("50%")
    assert "50% is not an amount in dollars. Send dollars, e.g. 100 or $100." in text_of(refused)
    assert "Leverage for Hawk" in text_of(await bob.say("$50"))


async def test_did_you_mean_for_a_near_miss(world: World) -> None:
    await make_agent(world.person("Ann", 1), "GoldDesk")
    bob = world.person("Bob", 2)
    r = await bob.say("/deploy GoldDesc")
    assert "There is no agent called GoldDesc. Did you mean GoldDesk?" in text_of(r)
    assert "Did you mean" not in text_of(await bob.say("/deploy Zebra"))


async def test_limits_say_no_limit(world: World) -> None:
    ann = world.person("Ann", 1)
    view = text_of(await ann.say("/settings"))
    assert "Max leverage: no limit" in view and "Daily loss limit: no limit" in view
    assert ": -" not in view
