"""Telegram transport: users are served at once while each user's updates keep their order,
and the bot token never reaches the logs (httpx's request lines are turned down)."""

from __future__ import annotations

import asyncio
import logging

from telegram import Update

from bot.telegram_limits import ChatRateLimiter
from bot.telegram_order import PerUserOrder
from tests.chat_helpers import step
from tests.test_telegram import stack


def _update(update_id: int, user_id: int) -> Update:
    return Update.de_json(
        {
            "update_id": update_id,
            "message": {
                "message_id": update_id,
                "date": 0,
                "chat": {"id": user_id, "type": "private"},
                "from": {"id": user_id, "is_bot": False, "first_name": "U"},
                "text": "hi",
            },
        },
        None,
    )


async def test_other_users_go_ahead_while_one_users_updates_stay_in_order() -> None:
    order = PerUserOrder(16)
    done: list[str] = []
    slow = asyncio.Event()

    async def work(name: str, wait: asyncio.Event | None = None) -> None:
        if wait is not None:
            await wait.wait()
        done.append(name)

    ann_first = asyncio.create_task(order.process_update(_update(1, 1), work("ann 1", slow)))
    await asyncio.sleep(0)
    ann_second = asyncio.create_task(order.process_update(_update(2, 1), work("ann 2")))
    bob = asyncio.create_task(order.process_update(_update(3, 2), work("bob")))
    await bob
    assert done == ["bob"]  # Bob was not held behind Ann's slow update
    assert not ann_second.done()  # Ann's second waits for her first
    slow.set()
    await asyncio.gather(ann_first, ann_second)
    assert done == ["bob", "ann 1", "ann 2"]


async def test_the_bot_token_is_never_logged(sessions, caplog) -> None:
    caplog.set_level(logging.INFO)  # LOG_LEVEL's default
    async with stack(sessions, ChatRateLimiter(per_chat_seconds=0.01)) as tg:
        ann = tg.peer.user(1, "Ann", "en")
        await step(ann, "/start", "Welcome")
        token = tg.peer.token
    assert caplog.records  # the run did log
    assert token.split(":")[-1] not in caplog.text
