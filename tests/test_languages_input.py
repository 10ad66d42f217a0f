"""Input in the user's language: /call ETH largo as the buttons say LARGO, agent names in any
script, found case-insensitively on SQLite too; amounts formatted for the language."""

from __future__ import annotations

import pytest
from sqlalchemy import select

from storage.models import Position
from tests.chat_helpers import Person, World, make_world, text_of


async def make_agent(who: Person, name: str) -> None:
    """/create in any language: the answers are numbers and choices typed as values."""
    await who.say("/create")
    for answer in (name, "@CryptoHawk", "HYPERLIQUID", "100", "5", "3", "none", "none"):
        await who.say(answer)
    await who.say("ignore")
    summary = await who.say("10")
    created = await who.press(summary.replies[0].buttons[0][0].data or "")
    assert name in text_of(created)


@pytest.fixture
async def world(sessions) -> World:
    return await make_world(sessions)


async def test_a_spanish_creator_calls_largo_and_a_russian_one_calls_шорт(world: World) -> None:
    eva = world.person("Eva", 1, "es")
    await make_agent(eva, "Halcon")
    posted = await eva.say("/call ETH largo ruptura")
    assert "LARGO" in text_of(posted)
    ivan = world.person("Ivan", 2, "ru")
    await make_agent(ivan, "Ястреб")
    posted = await ivan.say("/call SOL шорт")
    assert "ШОРТ" in text_of(posted)
    assert "largo o corto" in text_of(await eva.say("/call ETH arriba"))


async def test_agent_names_in_any_script_are_found_whatever_the_case(world: World) -> None:
    ivan = world.person("Ivan", 1, "ru")
    await make_agent(ivan, "Ястреб Альфа")
    taken = await ivan.say("/create")
    taken = await ivan.say("ястреб альфа")
    assert "Имя ястреб альфа уже занято" in text_of(taken)  # the same name in another case
    await ivan.say("/cancel")
    ann = world.person("Ann", 2)
    r = await ann.say("/deploy ястреб альфа")
    assert "Deploying Ястреб Альфа" in text_of(r)
    await ann.say("100")
    await ann.say("2")
    r = await ann.say("Trade automatically")
    await ann.choose(r.replies[0], "Deploy")
    await world.post("@CryptoHawk", "Long $ETH", "p1")
    async with world.sessions() as s:
        assert len((await s.execute(select(Position))).all()) == 1
    assert "Names have 3 to 32 characters" in text_of(
        await (await _fresh_create(ann)).say("🚀🚀🚀")
    )


async def _fresh_create(who):  # type: ignore[no-untyped-def]
    await who.say("/create")
    return who


async def test_amounts_are_formatted_for_the_users_language(world: World) -> None:
    await make_agent(world.person("Ann", 1), "Hawk")
    eva = world.person("Eva", 2, "es")
    await eva.say("/deploy Hawk")
    r = await eva.say("1250")
    r = await eva.say("2")
    summary = text_of(await eva.say("Operar automáticamente"))
    assert "Colateral por operación: 1.250,00\xa0US$" in summary
    ivan = world.person("Ivan", 3, "ru")
    await ivan.say("/deploy Hawk")
    await ivan.say("1250")
    await ivan.say("2")
    summary = text_of(await ivan.say("Торговать автоматически"))
    assert "Залог на сделку: 1\xa0250,00\xa0$" in summary
    ann = world.person("Ann", 1)
    await ann.say("/deploy Hawk")
    await ann.say("1250")
    await ann.say("2")
    assert "Collateral per trade: $1,250.00" in text_of(await ann.say("Trade automatically"))
    assert r is not None
