"""/monitor on Telegram, against the Bot API stand-in: one message listing the user's open
positions, pinned, edited after a price move, not edited when nothing changed nor more often
than the interval (time driven by a clock the test holds), another user's monitor untouched,
one editor per chat among replicas, the same message after a restart, and forgotten when the
user deletes it or turns it off."""

from __future__ import annotations

from collections.abc import AsyncIterator
from datetime import UTC, datetime, timedelta

import pytest
from sqlalchemy import select

from bot.telegram_limits import ChatRateLimiter
from bot.telegram_monitor import TelegramMonitor
from storage.models import TradeMonitor
from tests.chat_helpers import step
from tests.test_telegram import Stack, create_and_deploy, stack

START = datetime(2026, 11, 29, 12, tzinfo=UTC)


@pytest.fixture
async def tg(sessions) -> AsyncIterator[Stack]:  # type: ignore[no-untyped-def]
    async with stack(sessions, ChatRateLimiter(per_chat_seconds=0.01)) as s:
        yield s


def editor(tg: Stack, clock: list[datetime], name: str = "a") -> TelegramMonitor:
    services = tg.world.bot.services
    return TelegramMonitor(tg.bot.bot, services, name, timedelta(seconds=5), clock=lambda: clock[0])


def edits(tg: Stack, message_id: int) -> int:
    calls = tg.peer.calls_to("editMessageText")
    return sum(1 for c in calls if c.params.get("message_id") == message_id)


async def test_pinned_monitor_edits_itself_as_prices_move(tg: Stack) -> None:
    clock = [START]
    ann = tg.peer.user(1301, "Ann", "en")
    await create_and_deploy(ann)
    await tg.world.post("@CryptoHawk", "Long $ETH, breakout confirmed", "p1")
    bob = tg.peer.user(1302, "Bob", "es")
    await step(bob, "/start", "Maxxit")
    await step(ann, "/monitor", "Trade monitor on")
    await step(bob, "/monitor", "Monitor de operaciones activado")

    mon = editor(tg, clock)
    assert await mon.round() == 2  # both sent (and pinned)
    board = await ann.wait_for("Trade monitor (updates as prices move)")
    assert "[PAPER] Hawk: LONG ETH at 2000" in board.text and "PnL" in board.text
    assert board.pinned
    pins = tg.peer.calls_to("pinChatMessage")
    assert {c.params["chat_id"] for c in pins} == {1301, 1302}
    assert all(c.params.get("disable_notification") for c in pins)
    theirs = await bob.wait_for("No hay posiciones abiertas")

    clock[0] += timedelta(seconds=60)
    assert await mon.round() == 0  # nothing changed: no edit at all
    assert edits(tg, board.message_id) == 0

    await tg.world.price("ETH", "2020")
    clock[0] += timedelta(seconds=60)
    assert await mon.round() == 1  # Ann's message only: Bob's text did not change
    assert "at 2020" in ann.find(board.message_id).text
    assert "+" in ann.find(board.message_id).text.split("PnL")[1]
    assert edits(tg, board.message_id) == 1 and edits(tg, theirs.message_id) == 0

    await tg.world.price("ETH", "2030")
    clock[0] += timedelta(seconds=4)  # within the 5-second interval: no edit yet
    assert await mon.round() == 0
    assert "at 2020" in ann.find(board.message_id).text
    clock[0] += timedelta(seconds=1)
    assert await mon.round() == 1
    assert "at 2030" in ann.find(board.message_id).text
    assert len(ann.messages) == len([m for m in ann.history if not m.deleted])  # no new message

    # another replica: nothing while "a" holds the chats, all of them once its lease lapsed
    other = editor(tg, clock, "b")
    await tg.world.price("ETH", "2040")
    clock[0] += timedelta(seconds=10)
    assert await other.round() == 0
    assert "at 2030" in ann.find(board.message_id).text
    clock[0] += timedelta(seconds=31)
    sent_before = ann.sent
    assert await other.round() == 1  # a restart (or the other replica) edits the same message
    assert "at 2040" in ann.find(board.message_id).text and ann.sent == sent_before

    # the user deletes the message: the next edit finds it gone and the monitor is forgotten
    ann.find(board.message_id).deleted = True
    await tg.world.price("ETH", "2045")
    clock[0] += timedelta(seconds=10)
    assert await other.round() == 0
    async with tg.world.sessions() as s:
        left = (await s.execute(select(TradeMonitor.chat_id))).scalars().all()
    assert left == ["1302"]  # Bob's is untouched

    # /monitor off: unpinned and forgotten
    await step(bob, "/monitor off", "desactivado")
    clock[0] += timedelta(seconds=10)
    await other.round()
    assert not bob.find(theirs.message_id).pinned
    async with tg.world.sessions() as s:
        assert (await s.execute(select(TradeMonitor))).scalars().all() == []


async def test_monitor_elsewhere_says_it_is_telegram_only(tg: Stack) -> None:
    eve = tg.world.person("Eve", 1399, "ru")
    reply = (await eve.say("/monitor")).replies[0].text
    assert "Telegram" in reply and "/positions" in reply
    assert "/monitor on" in (await eve.say("/monitor maybe")).replies[0].text


async def test_maxxit_run_sends_and_pins_the_monitor(tmp_path, monkeypatch) -> None:  # type: ignore[no-untyped-def]
    from pydantic import SecretStr

    from bot.settings import Settings
    from tests.peers.telegram_api import TelegramPeer
    from tests.test_discord_run import running

    async with TelegramPeer() as peer:
        settings = Settings(
            _env_file=None,
            data_dir=tmp_path,
            host="127.0.0.1",
            port=0,
            price_feed="none",
            telegram_bot_token=SecretStr(peer.token),
            telegram_api_url=peer.base_url.removesuffix("/bot"),
        )
        async with running(settings, monkeypatch):
            ann = peer.user(51, "Ann", "en")
            await step(ann, "/monitor", "Trade monitor on")
            # sent and pinned by the service's own loop
            await ann.wait_for(lambda m: m.pinned and "No open positions." in m.text)
