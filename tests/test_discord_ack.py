"""A Discord button press is acknowledged (a deferred update, type 6) before its slow work:
the venue is held by an event the test controls while the interaction already shows as
acknowledged, and the pressed message shows the result once the venue answers. Both modes."""

from __future__ import annotations

from collections.abc import AsyncIterator

import pytest
from sqlalchemy import select

from storage.models import Position
from tests.discord_helpers import DiscordStack, create_and_deploy, discord_stack, press
from tests.venue_hold import orders_held

DEFERRED_UPDATE = 6


@pytest.fixture(params=["gateway", "http"])
async def dc(request: pytest.FixtureRequest, sessions) -> AsyncIterator[DiscordStack]:  # type: ignore[no-untyped-def]
    async with discord_stack(sessions, request.param) as stack:
        yield stack


async def test_close_is_acknowledged_before_the_slow_venue_answers(dc: DiscordStack) -> None:
    ann = dc.peer.user(1401, "Ann", "en-US")
    await create_and_deploy(ann)
    await dc.world.post("@CryptoHawk", "Long $ETH, breakout confirmed", "p1")
    await dc.deliver()
    alert = await ann.wait_for("opened LONG ETH")
    ask = await press(ann, alert, "Close", "Close this position")

    # the venue answers when the test says so (released whatever happens)
    async with orders_held(dc.world.engine.venues["HYPERLIQUID"]) as hold:
        pressed = await ann.press(ask, "Yes, close")
        await ann.until(
            lambda: pressed.acknowledged and hold.reached.is_set(), "the deferral", 60.0
        )
        assert pressed.response_type == DEFERRED_UPDATE
        assert "closed by you" not in dc.peer.messages[ask.id].text
        async with dc.world.sessions() as s:
            assert (await s.execute(select(Position.status))).scalar_one() == "open"

    closed = await ann.answer(pressed, "closed by you")
    assert closed.id == ask.id  # the pressed message shows the result
