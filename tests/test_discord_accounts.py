"""One Maxxit account across Telegram and Discord: a one-time code shown in one app and entered
in the other, or the same wallet signed for in both, joins the chat accounts; alerts then
reach the person once. An account that holds something is never merged away."""

from __future__ import annotations

import contextlib
from collections.abc import AsyncIterator
from dataclasses import dataclass

import pytest
from eth_account import Account
from sqlalchemy import func, select

from bot.discord_delivery import DiscordTransport, FirstReachable
from bot.telegram import TelegramBot, TelegramTransport
from bot.telegram_limits import ChatRateLimiter
from engine.notify import Dispatcher
from storage.models import Identity
from tests.chat_helpers import sign_text, step
from tests.discord_helpers import DiscordStack, create_and_deploy, discord_stack, run, say
from tests.peers.telegram_api import TelegramPeer


@dataclass
class Both:
    dc: DiscordStack
    tg: TelegramPeer
    dispatcher: Dispatcher


@pytest.fixture
async def both(sessions) -> AsyncIterator[Both]:  # type: ignore[no-untyped-def]
    async with discord_stack(sessions, "http") as dc, TelegramPeer() as tg:
        api = tg.base_url.removesuffix("/bot")
        bot = TelegramBot(tg.token, dc.world.bot, api_url=api, limiter=ChatRateLimiter(30, 0.01))
        await bot.start(poll_timeout=1)
        chats = FirstReachable(
            [TelegramTransport(bot.bot, sessions), DiscordTransport(dc.rest, sessions)]
        )
        try:
            yield Both(dc, tg, Dispatcher(sessions, chats))
        finally:
            with contextlib.suppress(Exception):
                await bot.stop()


async def owners(both: Both) -> dict[str, int]:
    async with both.dc.world.sessions() as s:
        rows = (await s.execute(select(Identity.platform, Identity.user_id))).all()
    return {f"{p}:{i}": uid for i, (p, uid) in enumerate(rows)}


async def test_a_code_from_discord_entered_in_telegram_joins_the_accounts(both: Both) -> None:
    ann_dc = both.dc.peer.user(501, "Ann", "en-US")
    await create_and_deploy(ann_dc)  # Ann's Discord account holds an agent and a deployment
    shown = await run(ann_dc, "linkaccount", "Your link code")
    code = shown.text.split("Your link code: ", 1)[1].split()[0]

    ann_tg = both.tg.user(601, "Ann", "en")
    await step(ann_tg, "/start", "Welcome")
    await step(ann_tg, "/linkaccount WRONG-CODE", "unknown, already used or expired")
    # Ann's Discord account holds things: it may not be merged into the empty Telegram one
    carl_code = (await step(ann_tg, "/linkaccount", "Your link code")).text
    carl_code = carl_code.split("Your link code: ", 1)[1].split()[0]
    await say(ann_dc, f"/linkaccount {carl_code}", "can't be merged")

    await step(ann_tg, f"/linkaccount {code.lower()}", "now part of your Maxxit account")
    await step(ann_tg, f"/linkaccount {code}", "unknown, already used or expired")  # single use
    ids = await owners(both)
    assert len(set(ids.values())) == 1  # one user behind both chat accounts
    listing = await step(ann_tg, "/deployments", "Hawk")
    assert "Hawk" in listing.text

    await both.dc.world.post("@CryptoHawk", "Long $ETH", "p1")
    assert await both.dispatcher.deliver_pending() == 1
    await ann_tg.wait_for("opened LONG ETH")  # once, in the first app that reaches her
    assert not [m for m in ann_dc.messages if "opened LONG" in m.text]


async def test_the_same_wallet_signed_for_in_both_apps_joins_them(both: Both) -> None:
    wallet = Account.create()
    bob_tg = both.tg.user(602, "Bob", "en")
    await step(bob_tg, "/link", "Send your wallet address")
    ask = await step(bob_tg, wallet.address, "paste the signature")
    message = ask.text.split("here:\n\n", 1)[1]
    await step(bob_tg, sign_text(message, wallet), "is linked")

    bob_dc = both.dc.peer.user(502, "Bob", "en-US")
    await run(bob_dc, "link", "Send your wallet address")
    ask_dc = await say(bob_dc, wallet.address, "paste the signature")
    message = ask_dc.text.split("here:\n\n", 1)[1]
    # another key signing for Bob's address proves nothing: no join
    await say(bob_dc, sign_text(message, Account.create()), "signature")
    assert len(set((await owners(both)).values())) == 2

    await run(bob_dc, "link", "Send your wallet address")
    ask_dc = await say(bob_dc, wallet.address, "paste the signature")
    message = ask_dc.text.split("here:\n\n", 1)[1]
    await say(bob_dc, sign_text(message, wallet), "has joined that account")
    async with both.dc.world.sessions() as s:
        users = (await s.execute(select(func.count(func.distinct(Identity.user_id))))).scalar()
    assert users == 1
    view = await run(bob_dc, "wallet", "Wallet:")
    assert wallet.address in view.text
