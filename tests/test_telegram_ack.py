"""A press whose work waits on a venue is acknowledged at once, before that work: the user's
spinner stops while the venue is still closing the position, and the pressed message shows
the result when the venue answers. The venue is held by an event the test controls (no
timing assertions). Other presses are answered with their result, a refusal as a pop-up."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator

import pytest
from sqlalchemy import select

from bot.telegram_limits import ChatRateLimiter
from storage.models import Position
from tests.test_telegram import Stack, create_and_deploy, forged_press, press, stack
from tests.venue_hold import orders_held


@pytest.fixture
async def tg(sessions) -> AsyncIterator[Stack]:  # type: ignore[no-untyped-def]
    async with stack(sessions, ChatRateLimiter(per_chat_seconds=0.01)) as s:
        yield s


async def test_close_is_acknowledged_before_the_slow_venue_answers(tg: Stack) -> None:
    ann = tg.peer.user(1201, "Ann", "en")
    await create_and_deploy(ann)
    await tg.world.post("@CryptoHawk", "Long $ETH, breakout confirmed", "p1")
    await tg.deliver()
    alert = await ann.wait_for("opened LONG ETH")
    ask = await press(ann, alert, "Close", "Close this position")

    # the venue answers when the test says so (released whatever happens)
    async with orders_held(tg.world.engine.venues["HYPERLIQUID"]) as hold:
        query = await ann.press(ask, "Yes, close")
        await asyncio.wait_for(hold.reached.wait(), 60)  # the close is at the venue, held there
        answer = await ann.wait_answer(query, timeout=60)  # and the press is answered already
        assert not answer.get("show_alert") and not hold.release.is_set()
        assert "closed by you" not in ann.find(ask.message_id).text
        async with tg.world.sessions() as s:
            assert (await s.execute(select(Position.status))).scalar_one() == "open"
    closed = await ann.wait_for("closed by you")
    assert closed.message_id == ask.message_id  # the pressed message shows the result
    answers = [
        c for c in tg.peer.calls_to("answerCallbackQuery") if c.params["callback_query_id"] == query
    ]
    assert len(answers) == 1  # one answer per press, as Telegram allows


async def test_a_quick_refusal_still_pops_up_on_the_press(tg: Stack) -> None:
    ann = tg.peer.user(1202, "Ann", "en")
    await ann.send("/start")
    msg = await ann.wait_for("Welcome")
    # stale button data (an action nobody knows any more): refused as the press's pop-up
    q = forged_press(tg.peer, ann, msg, "zz:1")
    answer = await ann.wait_answer(q)
    assert answer.get("show_alert") and answer.get("text")
