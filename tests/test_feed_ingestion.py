"""A research feed (Atom over HTTP) as a signal source: the first poll starts from now, new
entries become posts (and signals) once, an unchanged feed costs a 304, a broken feed is a
failure of that source only."""

from __future__ import annotations

from decimal import Decimal

from sqlalchemy import select
from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import Route

from engine.sources.rss import FeedPoller
from storage.models import Agent, Deployment, Position, Post, Source, User, agent_sources
from tests.chat_helpers import make_world
from tests.peers.public_tls import public_https

ENTRY = """<entry><id>{id}</id><title>{title}</title><updated>{when}</updated>
<summary type="html">&lt;p&gt;{summary}&lt;/p&gt;</summary></entry>"""


def atom(entries: list[tuple[str, str, str, str]]) -> str:
    body = "".join(ENTRY.format(id=i, title=t, summary=s, when=w) for i, t, s, w in entries)
    return (
        '<?xml version="1.0" encoding="utf-8"?><feed xmlns="http://www.w3.org/2005/Atom">'
        "<title>Desk notes</title><id>urn:desk</id>"
        f"<updated>2026-11-24T10:00:00Z</updated>{body}</feed>"
    )


async def test_feed_entries_become_posts_once(sessions) -> None:
    world = await make_world(sessions)
    entries = [
        ("urn:1", "Weekly outlook", "Range-bound, no trades this week", "2026-11-23T10:00:00Z")
    ]
    served = {"etag": '"v1"', "broken": False}

    async def feed(request: Request) -> Response:
        if served["broken"]:
            return Response("oops", status_code=500)
        if request.headers.get("if-none-match") == served["etag"]:
            return Response(status_code=304)
        return Response(
            atom(entries), media_type="application/atom+xml", headers={"ETag": served["etag"]}
        )

    # users' feed URLs are fetched over HTTPS from public addresses only: the feed is served
    # as https://desk.example.com (tests/peers/public_tls.py)
    app = Starlette(routes=[Route("/desk.atom", feed)])
    async with public_https(app, name="desk.example.com") as site:
        url = f"{site.url}/desk.atom"
        async with sessions() as s, s.begin():
            src = Source(kind="rss", handle=url)
            agent = Agent(
                name="Desk", venue="HYPERLIQUID", leverage=Decimal(3), stop_loss_pct=Decimal("0.03")
            )
            user = User(display_name="u", settings={})
            s.add_all([src, agent, user])
            await s.flush()
            await s.execute(agent_sources.insert(), [{"agent_id": agent.id, "source_id": src.id}])
            account = f"paper:{user.id}:{agent.id}"
            s.add(Deployment(user_id=user.id, agent_id=agent.id, collateral_usd=Decimal(100),
                             leverage=Decimal(2), account=account))  # fmt: skip
        poller = FeedPoller(sessions, world.engine.ingest, fetcher=site.fetcher())
        try:
            first = await poller.poll()
            assert (first.polled, first.new_posts) == (1, 0)  # history is not traded
            entries.append(
                (
                    "urn:2",
                    "Long $ETH into the upgrade",
                    "Buying ETH here, stop 1900",
                    "2026-11-24T09:00:00Z",
                )
            )
            served["etag"] = '"v2"'
            second = await poller.poll()
            assert second.new_posts == 1
            unchanged = await poller.poll()
            assert unchanged.new_posts == 0  # a 304
            served["broken"] = True
            broken = await poller.poll()
            assert broken.failed == [url]
        finally:
            await poller.aclose()
    async with sessions() as s:
        posts = (await s.execute(select(Post))).scalars().all()
        positions = (await s.execute(select(Position))).scalars().all()
        source = (await s.execute(select(Source))).scalar_one()
    assert [p.external_id for p in posts] == ["urn:2"]
    assert "Buying ETH here" in posts[0].text and "<p>" not in posts[0].text
    assert [(p.market, p.side) for p in positions] == [("ETH", "long")]
    assert source.failure_count == 1
