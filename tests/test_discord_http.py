"""Discord's HTTP interactions endpoint refuses anything not signed by the application's key,
or signed too long ago, with 401, before acting on it: an owner's own "Yes, close" replayed
or forged changes nothing. PING gets PONG (Discord checks that when the URL is saved)."""

from __future__ import annotations

import time
from collections.abc import AsyncIterator

import pytest
from sqlalchemy import func, select

from storage.models import Position, User
from tests.discord_helpers import DiscordStack, create_and_deploy, discord_stack, press
from tests.peers.discord_users import COMPONENT, Interaction, post_signed


@pytest.fixture
async def dc(sessions) -> AsyncIterator[DiscordStack]:  # type: ignore[no-untyped-def]
    async with discord_stack(sessions, "http") as stack:
        yield stack


async def test_unsigned_badly_signed_or_stale_interactions_get_401_and_change_nothing(
    dc: DiscordStack,
) -> None:
    peer = dc.peer
    assert (await post_signed(peer, {"type": 1})).body == {"type": 1}  # PING -> PONG

    ann = peer.user(21, "Ann", "en-US")
    await create_and_deploy(ann)
    await dc.world.post("@CryptoHawk", "Long $ETH", "p1")
    await dc.deliver()
    alert = await ann.wait_for("opened LONG ETH")
    ask = await press(ann, alert, "Close", "Close this position")
    confirm = next(b["custom_id"] for b in ask.buttons() if b["label"].startswith("Yes"))
    # the owner's own confirmation, as Discord would send it, but not signed by Discord
    forged = Interaction("9001", "tok-forged", COMPONENT, ann.id, ask.channel_id, None,
                         {"custom_id": confirm, "component_type": 2}, "en-US", ask.id)  # fmt: skip
    peer.interactions[forged.id] = forged
    payload = forged.payload(peer)
    other_key = "ab" * 64
    stale = str(int(time.time()) - 3600)
    tries = [
        await post_signed(peer, payload, signature=None),
        await post_signed(peer, payload, signature=other_key),
        await post_signed(peer, payload, signature="zz-not-hex"),
        await post_signed(peer, payload, timestamp=stale),  # validly signed, an hour old
        await post_signed(peer, payload, signed_body={"type": 1}),  # signed for another body
        await post_signed(peer, {"type": 1}, signature=None),  # even a PING
    ]
    assert [t.status for t in tries] == [401] * 6
    async with dc.world.sessions() as s:
        assert (await s.execute(select(Position.status))).scalar_one() == "open"
        assert (await s.execute(select(func.count(User.id)))).scalar_one() == 1
    assert not forged.acknowledged and ask.button_labels()[0].startswith("Yes")

    # the real press, signed: it closes
    closed = await press(ann, ask, "Yes, close", "closed by you")
    assert closed.id == alert.id
