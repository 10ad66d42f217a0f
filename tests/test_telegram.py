"""The Telegram bot end to end: the real python-telegram-bot against the local Bot API
stand-in, with our handlers, engine and outbox behind it, as a new user lives it."""

from __future__ import annotations

import asyncio
import contextlib
import itertools
import time
from collections.abc import AsyncIterator
from dataclasses import dataclass

import httpx
import pytest
from sqlalchemy import select

from bot.telegram import TelegramBot, TelegramTransport
from bot.telegram_limits import ChatRateLimiter
from bot.web import SECRET_HEADER, make_app
from engine.events import PositionOpened
from engine.notify import Dispatcher, write_outbox
from handlers.i18n import SUPPORTED
from handlers.router import MENU
from storage.models import Identity, Order, OutboxMessage, Position, User
from tests.chat_helpers import World, make_world, step
from tests.peers.telegram_api import BotMessage, SimUser, TelegramPeer, serve_app


@dataclass
class Stack:
    world: World
    peer: TelegramPeer
    bot: TelegramBot
    dispatcher: Dispatcher

    async def deliver(self) -> int:
        return await self.dispatcher.deliver_pending()


@contextlib.asynccontextmanager
async def stack(sessions, limiter: ChatRateLimiter) -> AsyncIterator[Stack]:
    world = await make_world(sessions)
    async with TelegramPeer() as peer:
        api_url = peer.base_url.removesuffix("/bot")
        bot = TelegramBot(peer.token, world.bot, api_url=api_url, limiter=limiter)
        await bot.start(poll_timeout=1)
        dispatcher = Dispatcher(sessions, TelegramTransport(bot.bot, sessions))
        try:
            yield Stack(world, peer, bot, dispatcher)
        finally:
            await bot.stop()


@pytest.fixture
async def tg(sessions) -> AsyncIterator[Stack]:
    """Flows: Telegram's per-chat pace (1/s) would make each step wait a second."""
    async with stack(sessions, ChatRateLimiter(per_chat_seconds=0.01)) as s:
        yield s


@pytest.fixture
async def tg_real_limits(sessions) -> AsyncIterator[Stack]:
    async with stack(sessions, ChatRateLimiter()) as s:
        yield s


async def press(user: SimUser, message: BotMessage, label: str, expect: str) -> BotMessage:
    await user.press(message, label)
    return await user.wait_for(expect)


def forged_press(peer: TelegramPeer, who: SimUser, message: BotMessage, data: str) -> str:
    """A callback query from someone else carrying another user's button data (as a
    modified client can send): the bot must check ownership, not trust the data."""
    query_id = str(next(peer.query_ids))
    peer.open_queries[query_id] = who
    query = {"id": query_id, "from": who.user_json, "chat_instance": "42"}
    query |= {"message": peer.message_json(message), "data": data}
    peer.enqueue({"update_id": peer.next_update_id(), "callback_query": query})
    return query_id


async def create_and_deploy(ann: SimUser, approval: str = "Trade automatically") -> None:
    await step(ann, "/create", "What is its name?")
    await step(ann, "Hawk", "Which X accounts")
    bad = await step(ann, "@way_too_long_handle_here", "not valid X handles")
    assert "way_too_long_handle_here" in bad.text
    venue = await step(ann, "@CryptoHawk @MacroMia", "Where should Hawk trade?")
    assert venue.button_labels()[:3] == ["HYPERLIQUID", "OSTIUM", "MULTI"]
    await press(ann, venue, "HYPERLIQUID", "collateral per trade")
    await step(ann, "100", "Maximum leverage")
    await step(ann, "5", "Stop loss")
    await step(ann, "3", "Trailing stop")
    await step(ann, "2", "Trail at what distance")
    await step(ann, "1", "Take profit")
    await step(ann, "8", "the agent already holds")
    await step(ann, "Ignore", "Your share as the creator")
    summary = await step(ann, "10", "Create it?")
    done = await press(ann, summary, "Create", "is live in the marketplace")
    assert done.message_id == summary.message_id  # the summary became the confirmation
    ask = await press(ann, done, "Deploy Hawk", "Deploying Hawk")
    ask = await press(ann, ask, "$100.00", "Leverage for Hawk")
    ask = await press(ann, ask, "3x", "manual approval")
    ask = await press(ann, ask, approval, "Confirm?")
    await press(ann, ask, "Deploy", "is deployed")


async def test_start_create_deploy_alert_close_and_a_stranger_cannot_close(tg: Stack) -> None:
    ann = tg.peer.user(1001, "Ann", "en")
    welcome = await step(ann, "/start", "Welcome to Maxxit")
    assert "Browse agents" in welcome.button_labels()
    # the command menu exists in every language we speak, and by default
    assert set(tg.peer.commands) == {"", *SUPPORTED}
    assert [c["command"] for c in tg.peer.commands["ru"]] == list(MENU)
    assert tg.peer.commands["es"][0]["description"] != tg.peer.commands["en"][0]["description"]

    await create_and_deploy(ann)
    await tg.world.post("@CryptoHawk", "Long $ETH, breakout confirmed", "p1")
    assert await tg.deliver() == 1
    alert = await ann.wait_for("opened LONG ETH")
    assert alert.button_labels() == ["Close"]

    eve = tg.peer.user(666, "Eve", "en")
    await step(eve, "/start", "Welcome")
    data = alert.buttons[0][0]["callback_data"]
    q = forged_press(tg.peer, eve, alert, data)
    answer = await eve.wait_answer(q)
    assert answer.get("show_alert") and "not yours" in answer.get("text", "")
    q = forged_press(tg.peer, eve, alert, data.replace("pc:", "pcy:"))
    await eve.wait_answer(q)
    async with tg.world.sessions() as s:
        assert (await s.execute(select(Position.status))).scalar_one() == "open"
    assert ann.find(alert.message_id).text == alert.text  # untouched

    ask = await press(ann, alert, "Close", "Close this position")
    assert ask.message_id == alert.message_id
    closed = await press(ann, ask, "Yes, close", "closed by you")
    assert closed.message_id == alert.message_id and closed.buttons == []
    async with tg.world.sessions() as s:
        assert (await s.execute(select(Position.status))).scalar_one() == "closed"
    # one message for a manual close: the edited alert says the result (exit and PnL), and
    # no second "closed" alert follows through the outbox
    assert "→" in closed.text and "$" in closed.text.split("→")[1]
    assert await tg.deliver() == 0


async def test_manual_approval_confirm_skip_and_expiry(tg: Stack) -> None:
    ann = tg.peer.user(7, "Ann", "en")
    await create_and_deploy(ann, approval="Ask me first")
    await tg.world.post("@CryptoHawk", "Long $ETH", "p1")
    await tg.deliver()
    ask = await ann.wait_for("wants to LONG ETH")
    assert ask.button_labels() == ["Confirm", "Skip"]
    await press(ann, ask, "Confirm", "order is filled")

    await tg.world.post("@MacroMia", "Short $BTC", "p2")
    await tg.deliver()
    ask = await ann.wait_for("wants to SHORT BTC")
    await press(ann, ask, "Skip", "Skipped")

    await tg.world.post("@MacroMia", "Long $SOL", "p3")
    await tg.deliver()
    ask = await ann.wait_for("wants to LONG SOL")
    tg.world.advance(301)
    assert len(await tg.world.engine.expire_approvals()) == 1
    await tg.deliver()
    await ann.wait_for("expired without your answer")
    late = await press(ann, ask, "Confirm", "has expired")
    assert late.message_id == ask.message_id
    async with tg.world.sessions() as s:
        statuses = sorted((await s.execute(select(Order.status))).scalars().all())
        positions = (await s.execute(select(Position.market))).scalars().all()
    assert statuses == ["filled", "skipped", "skipped"]
    assert positions == ["ETH"]


def opened(user_id: int, position_id: int, market: str = "ETH", side: str = "long"):
    return PositionOpened(
        user_id, position_id, "Hawk", "HYPERLIQUID", market, side, 1, 100, 3, 100, 95, None
    )


async def queue(tg: Stack, events: list[PositionOpened]) -> None:
    async with tg.world.sessions() as s, s.begin():
        await write_outbox(s, events)


async def test_outbox_delivery_respects_flood_limits_429_and_blocked_users(
    tg_real_limits: Stack,
) -> None:
    tg = tg_real_limits
    users = []
    for uid in range(2000, 2036):
        u = tg.peer.user(uid, f"U{uid}", "en")
        await step(u, "/start", "Welcome")
        users.append(u)
    async with tg.world.sessions() as s:
        ids = dict((await s.execute(select(Identity.external_id, Identity.user_id))).all())
    uid = {u.id: ids[str(u.id)] for u in users}
    # one alert for each of 36 users, and two more for the first one
    await queue(tg, [opened(uid[u.id], 10_000 + i) for i, u in enumerate(users)])
    await queue(tg, [opened(uid[users[0].id], 20_000 + i, "BTC") for i in range(2)])
    start = len(tg.peer.calls)
    assert await tg.deliver() == 38
    sends = [c for c in tg.peer.calls[start:] if c.method == "sendMessage"]
    assert len(sends) == 38
    times = [c.at for c in sends]
    # never more than 30 in any one-second window
    assert max(sum(1 for u in times if t <= u < t + 1) for t in times) <= 30
    first_chat = [c.at for c in sends if int(c.params["chat_id"]) == users[0].id]
    assert len(first_chat) == 3
    gaps = [b - a for a, b in itertools.pairwise(first_chat)]
    assert min(gaps) >= 0.95, gaps  # one a second in a chat, measured where Telegram is

    # a 429: the message waits retry_after and is then delivered, not lost
    await queue(tg, [opened(uid[users[1].id], 30_000, "SOL", "short")])
    tg.peer.fail_next("sendMessage", 429, retry_after=1)
    began = time.monotonic()
    assert await tg.deliver() == 1
    assert time.monotonic() - began >= 1.0
    await users[1].wait_for("opened SHORT SOL")

    # a user who blocked the bot: marked unreachable, the message is dead, never retried
    tg.peer.block(users[2].id)
    await queue(tg, [opened(uid[users[2].id], 40_000, "ETH", "short")])
    assert await tg.deliver() == 0
    async with tg.world.sessions() as s:
        row = (
            await s.execute(select(OutboxMessage).where(OutboxMessage.dedupe_key == "opened:40000"))
        ).scalar_one()
        identity = (
            await s.execute(select(Identity).where(Identity.external_id == str(users[2].id)))
        ).scalar_one()
    assert row.status == "dead" and "blocked" in (row.error or "")
    assert identity.reachable is False
    calls = len(tg.peer.calls_to("sendMessage"))
    assert await tg.deliver() == 0
    assert len(tg.peer.calls_to("sendMessage")) == calls
    # writing to the bot again makes them reachable again
    tg.peer.unblock(users[2].id)
    await step(users[2], "/help", "Maxxit runs")
    async with tg.world.sessions() as s:
        assert (await s.get_one(Identity, identity.id)).reachable is True


async def test_webhook_accepts_telegram_and_rejects_a_wrong_secret(sessions) -> None:
    world = await make_world(sessions)
    async with TelegramPeer() as peer:
        bot = TelegramBot(
            peer.token, world.bot, api_url=peer.base_url.removesuffix("/bot"), webhook=True
        )
        secret = "s3cret_Token-1"
        app = make_app(bot.feed, secret)
        async with serve_app(app) as root:
            await bot.start(public_url=root, secret=secret)
            try:
                assert peer.webhook is not None
                assert peer.webhook["url"] == f"{root}/telegram/webhook"
                assert peer.webhook.get("secret_token") == secret
                ann = peer.user(5, "Ann", "es")
                welcome = await step(ann, "/start", "Maxxit")
                assert "bienvenida" in welcome.text  # Telegram's language_code picks Spanish

                forged = ann.make_update("/start")
                for wrong in (None, "nope", secret + "x"):
                    assert await peer.deliver_raw(forged, wrong) == 403
                async with httpx.AsyncClient() as client:
                    r = await client.post(f"{root}/telegram/webhook", content=b"{not json",
                                          headers={SECRET_HEADER: secret})  # fmt: skip
                    assert r.status_code == 400
                    health = await client.get(f"{root}/healthz")
                    assert health.status_code == 200 and health.json()["status"] == "ok"
                await asyncio.sleep(0.3)
                assert len(ann.messages) == 1  # the forged updates were never processed
                async with world.sessions() as s:
                    assert len((await s.execute(select(User))).scalars().all()) == 1
            finally:
                await bot.stop()


async def test_maxxit_run_with_a_token_answers_in_telegram(tmp_path) -> None:
    from bot.service import run
    from bot.settings import Settings

    async with TelegramPeer() as peer:
        settings = Settings(
            data_dir=tmp_path,
            database_url=None,
            port=0,
            telegram_bot_token=peer.token,
            telegram_api_url=peer.base_url.removesuffix("/bot"),
            price_feed="none",  # no test reaches the internet
        )
        stop = asyncio.Event()
        task = asyncio.create_task(run(settings, stop))
        try:
            ann = peer.user(31, "Ann", "ru")
            welcome = await step(ann, "/start", "Maxxit")
            assert "maxxit_test_bot" in welcome.text  # the referral link names the real bot
            assert set(peer.commands) == {"", *SUPPORTED}
            assert peer.calls_to("deleteWebhook")  # polling mode clears any old webhook
        finally:
            stop.set()
            await asyncio.wait_for(task, 15)
