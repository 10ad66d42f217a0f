"""What the chat keeps in memory to answer fast, and the changes it must never miss
(handlers/known_users.py, handlers/performance.py): a language changed here shows on the
next message; one changed on another replica, an account marked unreachable or a wizard
started there within the poll's bound (or at once for a wizard's next step); /pnl's daily rows
agree with a close or a fee recorded by this engine or another one."""

from __future__ import annotations

from collections.abc import AsyncIterator
from decimal import Decimal

import pytest
from sqlalchemy import select, text, update
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from engine.classify.rules import RulesClassifier
from engine.markets import default_markets
from engine.pipeline import Engine, EngineConfig
from engine.venues.paper import PaperVenue
from handlers.base import Request, Services
from handlers.known_users import POLL_SECONDS, KnownUsers
from handlers.router import Bot
from storage.db import create_engine, session_factory
from storage.enums import CloseReason
from storage.models import Identity, Position, User
from tests.chat_helpers import World, make_world, text_of
from tests.test_chat_features import deploy, make_agent


@pytest.fixture
async def world(sessions) -> World:
    return await make_world(sessions)


@pytest.fixture
async def other_sessions(db_url: str) -> AsyncIterator[async_sessionmaker[AsyncSession]]:
    """Another process's connections to the same database (no listener of ours on them)."""
    eng = create_engine(db_url)
    yield session_factory(eng)
    await eng.dispose()


class Replica:
    """A second chat process on the same database, with its own memory and a clock for it."""

    def __init__(self, world: World, sessions: async_sessionmaker[AsyncSession]) -> None:
        self.tick = [0.0]
        self.known = KnownUsers(sessions, clock=lambda: self.tick[0])
        services = Services(sessions, world.engine, clock=lambda: world.clock[0], known=self.known)
        self.bot = Bot(services)

    async def say(self, uid: str, message: str) -> str:
        return text_of(await self.bot.handle(Request("console", uid, uid, text=message)))

    def wait_out_the_poll(self) -> None:
        self.tick[0] += POLL_SECONDS


async def test_a_language_change_shows_on_the_next_message(world: World) -> None:
    ann = world.person("Ann", 1)
    for _ in range(2):  # met, then kept
        assert "You have no open positions." in text_of(await ann.say("/positions"))
    await ann.press("sl:es")
    assert "No tienes posiciones abiertas." in text_of(await ann.say("/positions"))
    # and a change through any statement of this process (an admin's script, a merge)
    async with world.sessions() as s, s.begin():
        await s.execute(update(User).values(language="ru"))
    assert "No tienes" not in text_of(await ann.say("/positions"))


async def test_another_replicas_language_change_is_seen_within_the_poll(
    world: World, other_sessions
) -> None:
    b = Replica(world, other_sessions)
    ann = world.person("Ann", 1)
    for _ in range(2):  # met, then kept
        assert "You have no open positions." in await b.say("1", "/positions")
    await ann.press("sl:es")  # on the first replica
    b.wait_out_the_poll()
    assert "No tienes posiciones abiertas." in await b.say("1", "/positions")


async def test_an_account_marked_unreachable_elsewhere_is_reachable_again_when_it_writes(
    world: World, other_sessions
) -> None:
    b = Replica(world, other_sessions)
    for _ in range(2):  # met, then kept
        await b.say("1", "/positions")
    # another replica's delivery found the chat blocked (bot/telegram.py), in plain SQL
    async with world.sessions() as s, s.begin():
        await s.execute(text("UPDATE identities SET reachable = false"))
    b.wait_out_the_poll()
    await b.say("1", "/positions")  # they unblocked the bot and wrote again
    async with world.sessions() as s:
        assert (await s.execute(select(Identity.reachable))).scalar_one() is True


async def test_a_wizard_started_on_another_replica_takes_its_next_step_here(
    world: World, other_sessions
) -> None:
    b = Replica(world, other_sessions)
    ann = world.person("Ann", 1)
    for _ in range(2):  # met, then kept
        assert "I didn't understand that" in await b.say("1", "hello")
    assert "What is its name?" in text_of(await ann.say("/create"))  # on the first replica
    # at once, not after the poll: a wizard's next step is read from the database
    assert "should Hawk follow?" in await b.say("1", "Hawk")


async def test_a_command_leaves_behind_a_wizard_another_replica_started_within_the_poll(
    world: World, other_sessions
) -> None:
    b = Replica(world, other_sessions)
    ann = world.person("Ann", 1)
    for _ in range(2):  # met, then kept: no wizard
        await b.say("1", "/positions")
    await ann.say("/create")  # on the first replica
    b.wait_out_the_poll()
    await b.say("1", "/positions")  # a new command: the wizard is left behind
    assert "I didn't understand that" in await b.say("1", "Hawk")


async def test_a_command_leaves_behind_a_wizard_started_since_it_was_kept(world: World) -> None:
    ann = world.person("Ann", 1)
    for _ in range(2):  # met, then kept: no wizard
        await ann.say("/positions")
    await ann.say("/create")
    await ann.say("/positions")  # a new command: the wizard is left behind
    assert "I didn't understand that" in text_of(await ann.say("Hawk"))


async def _ann_with_a_position(world: World):
    ann = world.person("Ann", 1)
    await make_agent(ann, "Hawk")
    await deploy(ann, "Hawk")
    await world.post("@CryptoHawk", "Long $ETH", "p1")
    async with world.sessions() as s:
        position_id = (await s.execute(select(Position.id))).scalar_one()
    return ann, position_id


def _today(pnl: str) -> str:
    return pnl.split("Today: ")[1].split("\n")[0]


async def test_pnl_shows_a_close_this_engine_recorded(world: World) -> None:
    ann, position_id = await _ann_with_a_position(world)
    assert "trades: 0" in _today(text_of(await ann.say("/pnl")))
    await world.price("ETH", "2100")
    await world.engine.close_positions({position_id: CloseReason.MANUAL})
    assert "trades: 1" in _today(text_of(await ann.say("/pnl")))


async def test_pnl_shows_a_close_another_engine_recorded_and_a_fee_settled_after(
    world: World, other_sessions
) -> None:
    ann, position_id = await _ann_with_a_position(world)
    assert "trades: 0" in _today(text_of(await ann.say("/pnl")))
    await world.price("ETH", "2100")
    venues = {n: PaperVenue(n, m, world.engine.prices) for n, m in default_markets().items()}
    other = Engine(other_sessions, venues, world.engine.prices, RulesClassifier(),
                   EngineConfig(), clock=lambda: world.clock[0])  # fmt: skip
    await other.start()
    await other.close_positions({position_id: CloseReason.MANUAL})
    async with world.sessions() as s:
        pnl = (await s.execute(select(Position.realized_pnl))).scalar_one()
    assert f"+${pnl:,.2f}" in _today(text_of(await ann.say("/pnl")))
    # a fee the venue settled after the close (engine/money/fees.py): the same trade count
    async with other_sessions() as s, s.begin():
        await s.execute(update(Position).values(realized_pnl=pnl - Decimal("1")))
    today = _today(text_of(await ann.say("/pnl")))
    assert f"+${pnl - 1:,.2f}" in today and "trades: 1" in today


@pytest.mark.parametrize("language", ["en", "es", "ru"])
def test_amounts_kept_in_memory_are_babels_text(language: str) -> None:
    from babel.numbers import format_currency

    from handlers.format import LANGUAGE, money, signed_money

    token = LANGUAGE.set(language)
    try:
        # equal values of other exponents, and -0 after 0 (equal, but Babel writes its sign)
        for v in ["0", "-0", "0.00", "-0.001", "1.5", "1.50", "1.005", "-2.675", "1234567.891"]:
            assert money(v) == format_currency(Decimal(v), "USD", locale=language), v
            d = Decimal(v)
            sign = "+" if d >= 0 else "-"
            assert signed_money(v) == sign + format_currency(abs(d), "USD", locale=language)
    finally:
        LANGUAGE.reset(token)


async def test_changes_older_than_kept_are_deleted(world: World) -> None:
    from handlers.known_users import KEEP_SECONDS, PRUNE_SECONDS
    from storage.models import ChatChange

    ann = world.person("Ann", 1)
    await ann.press("sl:es")  # a change now
    async with world.sessions() as s, s.begin():
        now = (await s.execute(select(ChatChange.at_s))).scalar_one()
        s.add(ChatChange(user_id=1, at_s=now - KEEP_SECONDS - 1))
    tick = [0.0]
    known = KnownUsers(world.sessions, clock=lambda: tick[0])
    await known.current()
    tick[0] += PRUNE_SECONDS
    await known.current()
    assert known._pruning is not None
    await known._pruning
    async with world.sessions() as s:
        assert (await s.execute(select(ChatChange.at_s))).scalars().all() == [now]


@pytest.mark.parametrize("language", ["en", "es", "ru"])
def test_counts_kept_in_memory_are_babels_text(language: str) -> None:
    from babel.numbers import format_decimal

    from handlers.i18n import count_text

    for n in [0, 1, -1, 2, 5, 21, 999, 1000, 12345, 1234567, -4321]:
        assert count_text(language, n) == format_decimal(n, locale=language), n
    assert count_text(language, Decimal("1.50")) == format_decimal(Decimal("1.5"), locale=language)
