"""Outbox alerts to Discord DMs within Discord's limits: a 429 is waited out and the alert
delivered, buckets and the global limit are kept without Discord having to refuse anything,
and a user with closed DMs gets one note where they last used the bot, then no retries."""

from __future__ import annotations

from collections.abc import AsyncIterator

import pytest
from sqlalchemy import select

from bot.discord_delivery import DiscordTransport
from bot.discord_rest import DiscordRest
from engine.events import PositionOpened
from engine.notify import Dispatcher, write_outbox
from storage.enums import OutboxStatus
from storage.models import Identity, OutboxMessage
from tests.discord_helpers import DiscordStack, discord_stack, run
from tests.peers.discord_users import SimUser

MESSAGES = "/channels/{channel}/messages"


@pytest.fixture
async def dc(sessions) -> AsyncIterator[DiscordStack]:  # type: ignore[no-untyped-def]
    async with discord_stack(sessions, "http") as stack:
        yield stack


def opened(user_id: int, position_id: int, market: str = "ETH") -> PositionOpened:
    return PositionOpened(
        user_id, position_id, "Hawk", "HYPERLIQUID", market, "long", 1, 100, 3, 100, 95, None
    )


async def our_id(dc: DiscordStack, user: SimUser) -> int:
    async with dc.world.sessions() as s:
        return (
            await s.execute(select(Identity.user_id).where(Identity.external_id == user.id))
        ).scalar_one()


async def queue(dc: DiscordStack, events: list[PositionOpened]) -> None:
    async with dc.world.sessions() as s, s.begin():
        await write_outbox(s, events)


async def test_a_429_is_waited_out_and_the_alert_delivered(dc: DiscordStack) -> None:
    ann = dc.peer.user(11, "Ann", "en-US")
    await run(ann, "start", "Welcome")
    await queue(dc, [opened(await our_id(dc, ann), 1)])
    dc.peer.fail_next(MESSAGES, retry_after=0.4)
    assert await dc.deliver() == 1
    alert = await ann.wait_for("opened LONG ETH")
    assert alert.button_labels() == ["Close"]
    assert [c.status for c in dc.peer.calls_to(MESSAGES, "POST")] == [429, 200]


async def test_buckets_and_the_global_limit_are_kept(sessions) -> None:  # type: ignore[no-untyped-def]
    async with discord_stack(sessions, "http") as dc:
        dc.peer.bucket_limit, dc.peer.bucket_seconds = 3, 0.5
        dc.peer.global_per_second = 20
        # our client paces itself to the same global limit Discord enforces
        rest = DiscordRest(dc.peer.token, dc.peer.base_url, global_per_second=20)
        dispatcher = Dispatcher(dc.world.sessions, DiscordTransport(rest, dc.world.sessions))
        people = [dc.peer.user(100 + i, f"U{i}", "en-US") for i in range(12)]
        for p in people:
            await run(p, "start", "Welcome")
        ids = [await our_id(dc, p) for p in people]
        events = [opened(uid, 10 + i) for i, uid in enumerate(ids)]
        events += [opened(ids[0], 50 + i, "BTC") for i in range(6)]  # one DM channel, 7 alerts
        await queue(dc, events)
        start = len(dc.peer.calls)
        delivered = 0
        for _ in range(3):  # one dispatcher round takes what is due
            delivered += await dispatcher.deliver_pending()
        await rest.aclose()
        assert delivered == 18
        assert [c.status for c in dc.peer.calls[start:] if c.status != 200] == []
        assert len([m for m in people[0].messages if "opened LONG" in m.text]) == 7


async def test_closed_dms_note_in_the_last_channel_then_no_retries(dc: DiscordStack) -> None:
    _, channel = dc.peer.guild()
    bob = dc.peer.user(12, "Bob", "en-US")
    eve = dc.peer.user(13, "Eve", "en-US")
    await run(bob, "start", "Welcome", channel=channel)
    dc.peer.close_dms(bob.id)
    uid = await our_id(dc, bob)
    await queue(dc, [opened(uid, 1), opened(uid, 2, "BTC")])
    assert await dc.deliver() == 0
    note = await eve.wait_for("can't send you direct messages")  # public: in the channel
    assert note.channel_id == channel and note.content.startswith(f"<@{bob.id}>")
    assert "ETH" not in note.text  # the alert itself stays private
    async with dc.world.sessions() as s:
        statuses = (await s.execute(select(OutboxMessage.status))).scalars().all()
        reachable = (
            await s.execute(select(Identity.reachable).where(Identity.external_id == bob.id))
        ).scalar_one()
    assert statuses == [OutboxStatus.DEAD, OutboxStatus.DEAD] and reachable is False
    calls = len(dc.peer.calls)
    await queue(dc, [opened(uid, 3, "SOL")])
    assert await dc.deliver() == 0
    assert len(dc.peer.calls) == calls  # unreachable: Discord is not asked again

    # Bob opens his DMs and uses the bot again: alerts reach him once more
    dc.peer.closed_dms.discard(bob.id)
    await run(bob, "positions", "", channel=channel)
    await queue(dc, [opened(uid, 4, "XAU")])
    assert await dc.deliver() == 1
    await bob.wait_for("opened LONG XAU")
    assert len([m for m in eve.messages if "direct messages" in m.text]) == 1
