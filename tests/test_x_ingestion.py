"""X accounts flow into the pipeline through the real X API v2 wire format (local stand-in):
handles resolved once, timelines polled with since_id (persisted), replies excluded, quotes
kept with their quoted text, a 429 delays without losing posts, a failing source is marked and
its creator told, and new posts become signals and positions."""

from __future__ import annotations

import pytest
from sqlalchemy import select

from engine.sources.poll import FAILING_AFTER, XPoller
from engine.sources.x_api import XClient
from storage.models import OutboxMessage, Position, Post, Source, User
from tests.chat_helpers import make_world, text_of
from tests.peers.x_api import XPeer


@pytest.fixture
async def x():
    async with XPeer() as peer:
        yield peer


async def setup(world, x: XPeer):
    ann = world.person("Ann", 1)
    await ann.say("/create")
    for answer in (
        "Hawk",
        "@CryptoHawk @MacroMia @ghost_account",
        "HYPERLIQUID",
        "100",
        "5",
        "3",
        "none",
        "none",
        "ignore",
        "10",
    ):
        await ann.say(answer)
    await ann.choose(ann.last.replies[0], "Create")
    bob = world.person("Bob", 2)
    await bob.say("/deploy Hawk")
    await bob.say("100")
    await bob.say("2")
    r = await bob.say("Trade automatically")
    await bob.choose(r.replies[0], "Deploy")
    x.add_user("CryptoHawk")
    x.add_user("MacroMia")
    client = XClient(x.base_url, x.bearer_token)
    return ann, bob, client


async def test_new_posts_become_signals_with_cursors_and_quotes(sessions, x: XPeer) -> None:
    world = await make_world(sessions)
    _, bob, client = await setup(world, x)
    old = x.post("CryptoHawk", "Long $SOL, been in since last week")  # before we started
    poller = XPoller(sessions, client, world.engine.ingest)
    try:
        first = await poller.poll()
        assert first.polled == 2 and first.new_posts == 0  # history is not traded
        async with sessions() as s:
            hawk = (
                await s.execute(select(Source).where(Source.handle == "@CryptoHawk"))
            ).scalar_one()
        assert hawk.external_user_id and hawk.cursor == old

        call = x.post("CryptoHawk", "Longing $ETH here, stop 1900 🚀")
        x.post("CryptoHawk", "thanks man!", reply_to=call)  # a reply: not a post to trade
        base = x.post("MacroMia", "$BTC breaks 60k, 50k next")
        quote = x.post("MacroMia", "Fading this. Short $BTC here, stop 62k.", quote_of=base)
        second = await poller.poll()
        assert second.new_posts == 3 and second.failed == ["@ghost_account"]
        async with sessions() as s:
            posts = {p.external_id: p.text for p in (await s.execute(select(Post))).scalars()}
            positions = (await s.execute(select(Position))).scalars().all()
        assert set(posts) == {call, base, quote}
        assert (
            "QT @CryptoHawk" not in posts[quote]
            and 'QT @MacroMia: "$BTC breaks 60k' in posts[quote]
        )
        assert sorted((p.market, p.side) for p in positions) == [("BTC", "short"), ("ETH", "long")]
        assert "LONG ETH" in text_of(await bob.say("/positions"))
        # the same posts again (a restart, an overlap) change nothing
        poller2 = XPoller(sessions, client, world.engine.ingest)
        again = await poller2.poll()
        assert again.new_posts == 0
        # the restart asked only for what came after the stored cursor
        last = x.calls_to("/2/users/")[-1]
        assert dict(last.params).get("since_id") in {quote, call}
    finally:
        await client.aclose()


async def test_a_429_delays_without_losing_posts_and_failing_sources_are_reported(
    sessions, x: XPeer
) -> None:
    world = await make_world(sessions)
    _, _, client = await setup(world, x)
    poller = XPoller(sessions, client, world.engine.ingest)
    try:
        await poller.poll()  # cursors set
        first = x.post("CryptoHawk", "Short $ETH, sl 2100")
        async with sessions() as s:
            hawk_id = (
                await s.execute(
                    select(Source.external_user_id).where(Source.handle == "@CryptoHawk")
                )
            ).scalar_one()
        x.fail_next(f"/2/users/{hawk_id}/tweets", 429)
        limited = await poller.poll()
        assert limited.rate_limited and limited.new_posts == 0
        assert not client.can_call("user_tweets")  # waits for the window's reset
        x.advance(901)
        import time as _t

        client.windows["user_tweets"].reset_at = _t.time() - 1  # our clock catches up too
        after = await poller.poll()
        assert after.new_posts == 1
        async with sessions() as s:
            assert (await s.execute(select(Post.external_id))).scalars().all() == [first]

        # @ghost_account does not exist: after FAILING_AFTER polls its creator is told, once
        for _ in range(FAILING_AFTER + 1):
            await poller.poll()
        async with sessions() as s:
            ghost = (
                await s.execute(select(Source).where(Source.handle == "@ghost_account"))
            ).scalar_one()
            alerts = (
                (
                    await s.execute(
                        select(OutboxMessage).where(OutboxMessage.kind == "source_failing")
                    )
                )
                .scalars()
                .all()
            )
            ann_id = (
                await s.execute(select(User.id).where(User.display_name == "Ann"))
            ).scalar_one()
        assert ghost.failing_since is not None and ghost.failure_count >= FAILING_AFTER
        assert [(a.user_id, a.payload["handle"]) for a in alerts] == [(ann_id, "@ghost_account")]
    finally:
        await client.aclose()
