"""The Telegram Bot API stand-in, driven by python-telegram-bot's own Bot over HTTP."""

from __future__ import annotations

import asyncio
import re
import time
from collections.abc import AsyncIterator

import pytest
from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import Route
from telegram import Bot, InlineKeyboardButton, InlineKeyboardMarkup, MessageEntity
from telegram.constants import ParseMode
from telegram.error import BadRequest, Conflict, Forbidden, InvalidToken, RetryAfter

from tests.peers.telegram_api import NOT_MODIFIED, BotMessage, TelegramPeer, serve_app

# PTB drops the "Bad Request: " prefix and str.capitalize()s the rest of the description, so
# "BUTTON_DATA_INVALID" surfaces as "Button_data_invalid": match case-insensitively.

KEYBOARD = InlineKeyboardMarkup(
    [
        [InlineKeyboardButton("Buy", callback_data="buy:1")],
        [InlineKeyboardButton("Docs", url="https://x.io")],
    ]
)


@pytest.fixture
async def peer() -> AsyncIterator[TelegramPeer]:
    async with TelegramPeer() as p:
        yield p


@pytest.fixture
async def bot(peer: TelegramPeer) -> AsyncIterator[Bot]:
    async with Bot(peer.token, base_url=peer.base_url) as b:
        yield b


async def test_get_me_and_wrong_token(peer: TelegramPeer, bot: Bot) -> None:
    me = await bot.get_me()
    assert (me.id, me.is_bot, me.username) == (123456, True, "maxxit_test_bot")
    with pytest.raises(InvalidToken):
        async with Bot("999:WRONG", base_url=peer.base_url):  # initialize() calls getMe
            pass
    assert [c.status for c in peer.calls_to("getMe")] == [200, 200, 401]  # Bot() init + ours


async def test_send_then_edit_is_what_the_user_sees(peer: TelegramPeer, bot: Bot) -> None:
    ann = peer.user(42)
    sent = await bot.send_message(
        42, "Pick <b>one</b> &amp; go", parse_mode=ParseMode.HTML, reply_markup=KEYBOARD
    )
    assert sent.from_user is not None and sent.from_user.is_bot
    assert sent.chat.type == "private" and sent.reply_markup == KEYBOARD
    [shown] = ann.messages
    assert shown.text == "Pick one & go"
    assert shown.buttons == [
        [{"text": "Buy", "callback_data": "buy:1"}],
        [{"text": "Docs", "url": "https://x.io"}],
    ]
    assert shown.button_labels() == ["Buy", "Docs"]

    edited = await bot.edit_message_text("Bought", chat_id=42, message_id=sent.message_id)
    assert edited.text == "Bought" and edited.edit_date is not None
    assert (ann.messages[0].text, ann.messages[0].edits) == ("Bought", 1)
    assert ann.messages[0].buttons == []  # an edit without reply_markup drops the keyboard
    with pytest.raises(BadRequest, match=r"(?i)message is not modified"):
        await bot.edit_message_text("Bought", chat_id=42, message_id=sent.message_id)
    with pytest.raises(BadRequest, match=r"(?i)message to edit not found"):
        await bot.edit_message_text("x", chat_id=42, message_id=999)
    assert await bot.delete_message(42, sent.message_id)
    assert ann.messages == [] and ann.sent == 1
    assert NOT_MODIFIED.startswith("message is not modified")


async def test_send_photo_is_a_multipart_upload(peer: TelegramPeer, bot: Bot) -> None:
    ann = peer.user(42)
    sent = await bot.send_photo(
        42, photo=b"\x89PNG fake bytes", caption="chart", reply_markup=KEYBOARD
    )
    assert sent.photo and sent.caption == "chart"
    assert ann.messages[0].photo and ann.messages[0].text == "chart"
    assert peer.calls_to("sendPhoto")[0].params["photo"]["size"] == 15
    with pytest.raises(BadRequest, match=r"(?i)there is no text in the message to edit"):
        await bot.edit_message_text("x", chat_id=42, message_id=sent.message_id)


async def test_refuses_what_telegram_refuses(peer: TelegramPeer, bot: Bot) -> None:
    peer.user(42)
    too_long = InlineKeyboardMarkup([[InlineKeyboardButton("x", callback_data="d" * 65)]])
    cases = [
        ({"text": "hi", "reply_markup": too_long}, "BUTTON_DATA_INVALID"),
        ({"text": "  "}, "message text is empty"),
        ({"text": "x" * 4097}, "message is too long"),
        ({"text": "a < b", "parse_mode": ParseMode.HTML}, "can't parse entities"),
        ({"text": "<b>open", "parse_mode": ParseMode.HTML}, "Can't find end tag"),
        ({"text": "Price 1.5", "parse_mode": ParseMode.MARKDOWN_V2}, "Character '.' is reserved"),
        ({"text": "hi", "chat_id": 7}, "chat not found"),
    ]
    for kwargs, error in cases:
        with pytest.raises(BadRequest, match=f"(?i){re.escape(error)}"):
            await bot.send_message(**{"chat_id": 42} | kwargs)  # type: ignore[arg-type]
    ok = await bot.send_message(42, r"*Price* 1\.5", parse_mode=ParseMode.MARKDOWN_V2)
    assert ok.text == "Price 1.5"
    assert len(peer.calls_to("sendMessage")) == len(cases) + 1


async def test_long_poll_gets_commands_and_button_presses(peer: TelegramPeer, bot: Bot) -> None:
    ann = peer.user(42, first_name="Ann", language_code="de", username="ann")
    await ann.send("/start@maxxit_test_bot ref123")
    [update] = await bot.get_updates(timeout=2)
    assert update.message is not None and update.message.text.startswith("/start")
    assert update.message.entities == (MessageEntity("bot_command", 0, 22),)
    assert update.effective_user is not None and update.effective_user.language_code == "de"

    menu = await bot.send_message(42, "Menu", reply_markup=KEYBOARD)
    poll = asyncio.create_task(bot.get_updates(offset=update.update_id + 1, timeout=3))
    await asyncio.sleep(0.1)  # the poll is now parked on the peer
    started = time.monotonic()
    query_id = await ann.press(await ann.wait_for("Menu"), "Buy")
    [pressed] = await poll
    assert time.monotonic() - started < 1  # woken by the press, not by the timeout
    query = pressed.callback_query
    assert query is not None and (query.id, query.data) == (query_id, "buy:1")
    assert query.message is not None and query.message.message_id == menu.message_id
    with pytest.raises(AssertionError, match=re.escape("('Docs', 'https://x.io')")):
        await ann.press(BotMessage(menu.message_id, 42, "Menu"), "Sell")

    assert await bot.answer_callback_query(query_id, text="Done", show_alert=True)
    assert await ann.wait_answer(query_id) == {"text": "Done", "show_alert": True}
    with pytest.raises(BadRequest, match=r"(?i)query is too old"):
        await bot.answer_callback_query(query_id)
    assert await bot.get_updates(offset=pressed.update_id + 1, timeout=0.2) == ()
    with pytest.raises(AssertionError, match="bot #2: Menu"):
        await ann.wait_for("never", timeout=0.05)


async def test_injected_429_is_retry_after(
    peer: TelegramPeer, bot: Bot, monkeypatch: pytest.MonkeyPatch
) -> None:
    # Without this PTB 22 warns (DeprecationWarning, an error in our suite) inside RetryAfter().
    monkeypatch.setenv("PTB_TIMEDELTA", "true")
    peer.user(42)
    peer.fail_next("sendMessage", code=429, retry_after=1)
    with pytest.raises(RetryAfter) as caught:
        await bot.send_message(42, "hi")
    assert caught.value.retry_after.total_seconds() == 1  # type: ignore[union-attr]
    await bot.send_message(42, "hi")  # only the next call failed
    assert [c.status for c in peer.calls_to("sendMessage")] == [429, 200]


async def test_blocked_user_is_forbidden(peer: TelegramPeer, bot: Bot) -> None:
    peer.user(42)
    peer.block(42)
    with pytest.raises(Forbidden, match="bot was blocked by the user"):
        await bot.send_message(42, "hi")


async def test_webhook_delivery_with_secret(peer: TelegramPeer, bot: Bot) -> None:
    received: list[tuple[str | None, dict[str, object]]] = []
    refusals = [500]  # the first delivery fails: the peer must retry it

    async def hook(request: Request) -> Response:
        secret = request.headers.get("X-Telegram-Bot-Api-Secret-Token")
        if secret != "s3cret":
            return Response(status_code=403)
        if refusals:
            return Response(status_code=refusals.pop())
        received.append((secret, await request.json()))
        return Response()

    ann = peer.user(42)
    async with serve_app(Starlette(routes=[Route("/tg", hook, methods=["POST"])])) as root:
        assert await bot.set_webhook(f"{root}/tg", secret_token="s3cret")
        assert peer.webhook is not None and peer.webhook["secret_token"] == "s3cret"
        await ann.send("/help")
        await ann.send("hello")
        for _ in range(100):
            if len(received) == 2:
                break
            await asyncio.sleep(0.02)
        assert [u["message"]["text"] for _, u in received] == ["/help", "hello"]  # type: ignore[index]
        assert (await bot.get_webhook_info()).last_error_message == (
            "Wrong response from the webhook: 500 Internal Server Error"
        )
        with pytest.raises(Conflict, match="webhook is active"):
            await bot.get_updates()
        assert await peer.deliver_raw(ann.make_update("forged"), secret="nope") == 403
        assert await peer.deliver_raw(ann.make_update("no header"), secret=None) == 403
        assert await bot.delete_webhook()
    assert peer.webhook is None and await bot.get_updates(timeout=0) == ()


async def test_commands_per_language(peer: TelegramPeer, bot: Bot) -> None:
    await bot.set_my_commands([("start", "Start"), ("help", "Help")])
    await bot.set_my_commands([("start", "Starten")], language_code="de")
    assert peer.commands == {
        "": [
            {"command": "start", "description": "Start"},
            {"command": "help", "description": "Help"},
        ],
        "de": [{"command": "start", "description": "Starten"}],
    }
    assert [c.description for c in await bot.get_my_commands(language_code="de")] == ["Starten"]
    with pytest.raises(BadRequest, match=r"(?i)BOT_COMMAND_INVALID"):
        await bot.set_my_commands([("Buy-Now", "uppercase and dashes are refused")])
    assert await bot.delete_my_commands(language_code="de")
    assert set(peer.commands) == {""}


async def test_allowed_updates_filter_and_competing_pollers(peer: TelegramPeer, bot: Bot) -> None:
    ann = peer.user(42)
    menu = await bot.send_message(42, "Menu", reply_markup=KEYBOARD)
    assert await bot.get_updates(timeout=0, allowed_updates=["message"]) == ()
    await ann.press(await ann.wait_for("Menu"), "buy:1")  # by callback_data this time
    assert "[callback_query dropped: allowed_updates=['message']]" in ann.transcript()
    assert await bot.get_updates(timeout=0) == ()  # Telegram never created that update

    # A second bot process polling (one Bot's getUpdates pool has a single connection).
    first = asyncio.create_task(bot.get_updates(timeout=3))
    await asyncio.sleep(0.05)
    async with Bot(peer.token, base_url=peer.base_url) as other:
        second = asyncio.create_task(other.get_updates(timeout=3))
        with pytest.raises(Conflict, match=r"(?i)terminated by other getUpdates request"):
            await first
        await ann.send("hi")
        [update] = await second
    assert update.message is not None and update.message.message_id == menu.message_id + 1
