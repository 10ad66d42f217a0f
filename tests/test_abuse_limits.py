"""Per-user limits as people notice them: a flood through the real Telegram transport leaves
everyone else's replies untouched and gets the flooder one "slow down"; the same limits hold
on any transport (they sit in the router); a creator's /call is throttled per agent, and the
rate shows in the creator's reply and in the followers' alerts."""

from __future__ import annotations

import asyncio

import pytest
from sqlalchemy import select, update

from bot.telegram import TelegramBot
from bot.telegram_limits import ChatRateLimiter
from engine.notify import Dispatcher
from handlers.alerts import render
from handlers.limits import ChatLimits, LimitConfig
from storage.models import OutboxMessage, User
from tests.chat_helpers import World, make_world, text_of
from tests.peers.telegram_api import TelegramPeer
from tests.test_chat_features import Capture, deploy, make_agent

SLOW_DOWN = "Please slow down"


@pytest.fixture
async def world(sessions) -> World:
    world = await make_world(sessions)
    world.bot.services.limits = ChatLimits()  # the defaults `maxxit run` uses
    return world


async def test_a_flooding_user_is_told_once_and_everyone_else_is_answered(world: World) -> None:
    async with TelegramPeer() as peer:
        api = peer.base_url.removesuffix("/bot")
        bot = TelegramBot(peer.token, world.bot, api_url=api, limiter=ChatRateLimiter(30, 0.01))
        await bot.start(poll_timeout=1)
        try:
            flood, calm = peer.user(501, "Mallory", "en"), peer.user(502, "Ann", "en")
            # 2,000 updates as fast as Telegram hands them over, Ann's 20 among them
            for i in range(2000):
                await flood.send("/help")
                if i % 100 == 50:
                    await calm.send(f"/nosuchthing{i}")
            deadline = asyncio.get_running_loop().time() + 120
            while len(calm.messages) < 20 or peer._pending:
                assert asyncio.get_running_loop().time() < deadline, calm.transcript()
                await peer.wait_change(1.0)
            await asyncio.sleep(0.5)  # whatever was still being handled lands
        finally:
            await bot.stop()
    answers = [m.text for m in calm.messages]
    assert len(answers) == 20
    # each of Ann's commands answered, in order
    assert answers == [
        f"There is no /nosuchthing{i} command. Send /help to see them all."
        for i in range(50, 2000, 100)
    ]
    assert not any(SLOW_DOWN in a for a in answers)
    told = [m.text for m in flood.messages if SLOW_DOWN in m.text]
    assert len(told) == 1
    helped = [m for m in flood.messages if SLOW_DOWN not in m.text]
    assert 1 <= len(helped) <= 20  # the burst the limit allows, no more
    assert len(flood.messages) < 30


async def test_the_limit_holds_on_any_transport_and_for_buttons(world: World) -> None:
    """Discord and the console pass the same router: a console user flooding presses."""
    eve, ann = world.person("Eve", 7), world.person("Ann", 8)
    notices, replies = [], 0
    for _ in range(200):
        r = await eve.press("hp")
        if r.notice and SLOW_DOWN in r.notice:
            notices.append(r)
        replies += len(r.replies)
    assert len(notices) == 1 and notices[0].refused
    assert replies <= 20
    assert "There is no /nope command" in text_of(await ann.say("/nope"))  # Ann is unaffected


async def test_slow_down_speaks_the_users_language(world: World) -> None:
    ivan = world.person("Ivan", 9, language="ru")
    said = [text_of(await ivan.say("/help")) for _ in range(25)]
    told = [s for s in said if "помедленнее" in s]
    assert len(told) == 1 and said[-1] == ""


async def test_call_is_throttled_per_agent_and_each_call_shows_its_rate(world: World) -> None:
    # a roomy chat limit: creating two agents takes more messages than a flood's burst
    world.bot.services.limits = ChatLimits(
        LimitConfig("500 per minute", calls_per_agent="2 per hour")
    )
    ann, bob = world.person("Ann", 1), world.person("Bob", 2)
    await make_agent(ann, "Hawk")
    await make_agent(ann, "Owl", sources="@owl")
    await deploy(bob, "Hawk", collateral="50")
    # a creator with two agents names the one that calls (/call asks otherwise)
    first = text_of(await ann.say("/call Hawk ETH long"))
    assert "Hawk: call 1 of 2 allowed per 1 h" in first
    owl = text_of(await ann.say("/call Owl ETH long"))
    assert "Owl: call 1 of 2 allowed per 1 h" in owl  # each agent has its own budget
    second = text_of(await ann.say("/call Hawk BTC long"))
    assert "Hawk: call 2 of 2 allowed per 1 h" in second
    third = text_of(await ann.say("/call Hawk SOL long"))
    assert "Hawk: not posted, 2 calls per 1 h already made" in third
    assert "Owl: call 2 of 2" in text_of(await ann.say("/call Owl SOL long"))
    assert "Owl: not posted" in text_of(await ann.say("/call Owl BTC long"))
    positions = text_of(await bob.say("/positions"))
    assert "ETH" in positions and "BTC" in positions and "SOL" not in positions

    # Bob's alerts say the call and its rate
    capture = Capture()
    await Dispatcher(world.sessions, capture).deliver_pending()
    opened = [m for m in capture.got if m.kind == "position_opened"]
    assert len(opened) == 2
    texts = sorted(render(m.kind, m.payload, "en") for m in opened)
    assert "creator call 1/2 per hour" in texts[1] or "creator call 1/2 per hour" in texts[0]
    assert any("creator call 2/2 per hour" in t for t in texts)
    async with world.sessions() as s:
        kinds = (await s.execute(select(OutboxMessage.kind))).scalars().all()
    assert kinds.count("position_opened") == 2


async def test_call_rate_in_spanish(world: World) -> None:
    world.bot.services.limits = ChatLimits(
        LimitConfig("500 per minute", calls_per_agent="3 per 10 minutes")
    )
    ana = world.person("Ana", 3)
    await make_agent(ana, "Halcon")
    async with world.sessions() as s, s.begin():
        await s.execute(update(User).values(language="es"))
    said = text_of(await ana.say("/call ETH long"))
    assert "Halcon: señal 1 de 3 permitidas por 10 min" in said
