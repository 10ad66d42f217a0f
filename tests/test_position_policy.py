"""One position per account and market, decided on purpose (issue 19, item 1): a long, then a
short from the same agent, under each position policy, through the engine on the paper
venue (which nets like Hyperliquid); our books end equal to the venue's."""

from __future__ import annotations

from collections import defaultdict
from datetime import UTC, datetime
from decimal import Decimal as D

import pytest
from sqlalchemy import select, update

from engine.classify.rules import RulesClassifier
from engine.ingest import IncomingPost
from engine.markets import hyperliquid_markets
from engine.pipeline import Engine
from engine.prices import PriceBook, PriceTick
from engine.venues.paper import FeeConfig, PaperVenue
from storage.models import (
    Agent,
    Deployment,
    Order,
    OutboxMessage,
    Position,
    Source,
    User,
    agent_sources,
)

NOW = datetime(2026, 11, 27, 12, tzinfo=UTC)


async def seed(sessions, policy: str, cap: str = "3") -> str:
    """Agent Hawk (following @hawk, 5x, 5% stop) deployed on one paper account; its account."""
    async with sessions() as s, s.begin():
        src = Source(kind="x", handle="@hawk")
        user = User(display_name="u", settings={})
        s.add_all([src, user])
        agent = Agent(
            name="Hawk",
            venue="HYPERLIQUID",
            leverage=D(5),
            stop_loss_pct=D("0.05"),
            position_policy=policy,
            add_cap_multiple=D(cap),
        )
        s.add(agent)
        await s.flush()
        await s.execute(agent_sources.insert(), [{"agent_id": agent.id, "source_id": src.id}])
        account = f"paper:{user.id}:{agent.id}"
        s.add(
            Deployment(
                user_id=user.id,
                agent_id=agent.id,
                collateral_usd=D(100),
                leverage=D(2),
                account=account,
            )
        )
    return account


def paper_engine(sessions) -> tuple[Engine, PaperVenue, PriceBook]:
    prices = PriceBook()
    prices.update(PriceTick(NOW, "ETH", D(2000)))
    venue = PaperVenue("HYPERLIQUID", hyperliquid_markets(), prices, FeeConfig(D(0), D(0)))
    engine = Engine(sessions, {"HYPERLIQUID": venue}, prices, RulesClassifier(), clock=lambda: NOW)
    return engine, venue, prices


def post(n: int, text: str) -> IncomingPost:
    return IncomingPost("x", "@hawk", str(n), text, NOW)


async def our_books(sessions) -> dict[tuple[str, str], D]:
    """Open size per (market, side) in our books, summed over rows."""
    out: dict[tuple[str, str], D] = defaultdict(D)
    async with sessions() as s:
        for market, side, size in await s.execute(
            select(Position.market, Position.side, Position.size).where(Position.status == "open")
        ):
            out[(market, side)] += size
    return dict(out)


def paper_books(venue: PaperVenue, account: str) -> dict[tuple[str, str], D]:
    return {k: h.size for k, h in venue.account(account).positions.items()}


async def open_orders(sessions) -> list[tuple[str, str, str | None]]:
    async with sessions() as s:
        rows = await s.execute(
            select(Order.side, Order.status, Order.error)
            .where(Order.purpose == "open")
            .order_by(Order.id)
        )
        return [tuple(r) for r in rows]


async def alerts(sessions, kind: str) -> list[dict]:
    async with sessions() as s:
        rows = await s.execute(select(OutboxMessage.payload).where(OutboxMessage.kind == kind))
        return list(rows.scalars())


@pytest.mark.parametrize(
    ("policy", "held", "skipped"),
    [
        ("ignore", "long", "position_held"),
        ("add", "long", "other_side_held"),
        ("close", None, "closed_opposite"),
        ("flip", "short", None),
    ],
)
async def test_long_then_short_ends_with_books_equal_to_the_paper_venue(
    sessions, policy: str, held: str | None, skipped: str | None
) -> None:
    account = await seed(sessions, policy)
    engine, venue, _ = paper_engine(sessions)
    await engine.ingest(post(1, "Long $ETH"))
    await engine.ingest(post(2, "Short $ETH"))
    books = await our_books(sessions)
    assert books == paper_books(venue, account)
    assert list(books) == ([("ETH", held)] if held else [])
    orders = await open_orders(sessions)
    assert orders[0] == ("long", "filled", None)
    if skipped:
        assert orders[1] == ("short", "skipped", skipped)  # the decision, stored with its reason
    else:
        assert orders[1] == ("short", "filled", None)
    async with sessions() as s:
        closed = (
            await s.execute(select(Position.side, Position.close_reason, Position.status))
        ).all()
    if policy in ("close", "flip"):
        assert ("long", "opposite_signal", "closed") in [tuple(r) for r in closed]
        assert len(await alerts(sessions, "position_closed")) == 1
    else:
        assert await alerts(sessions, "position_closed") == []
    rejected = await alerts(sessions, "signal_rejected")
    if policy in ("ignore", "add"):  # the user is told why nothing happened
        assert [(a["side"], a["reason"]) for a in rejected] == [("short", skipped)]
    else:
        assert rejected == []
    # the engine watches exactly what is open
    assert len(engine.index) == len(books)


async def test_ignore_alert_says_why_in_words(sessions) -> None:
    from handlers.alerts import render

    await seed(sessions, "ignore")
    engine, _, _ = paper_engine(sessions)
    await engine.ingest(post(1, "Long $ETH"))
    await engine.ingest(post(2, "Long $ETH again"))
    (payload,) = await alerts(sessions, "signal_rejected")
    text = render("signal_rejected", payload, "en")
    assert text == "Hawk skipped LONG ETH: the agent already holds this market (policy: ignore)"


async def test_add_stays_within_the_cap_and_the_venue_holds_the_sum(sessions) -> None:
    account = await seed(sessions, "add", cap="3")
    engine, venue, _prices = paper_engine(sessions)
    for n in range(1, 5):
        await engine.ingest(post(n, f"Long $ETH #{n}"))
    orders = await open_orders(sessions)
    # 100 collateral per trade, at most 3 x 100 held in ETH: three opens, the fourth skipped
    assert [o[1] for o in orders] == ["filled", "filled", "filled", "skipped"]
    assert orders[3][2] == "add_cap_reached"
    books = await our_books(sessions)
    assert books == paper_books(venue, account) == {("ETH", "long"): D("0.3")}
    # every row's stop closes its own part; the venue ends flat with our books
    assert await engine.on_price(PriceTick(NOW, "ETH", D(1800))) == 3
    assert await our_books(sessions) == {} == paper_books(venue, account)


async def test_a_flip_open_waits_for_its_close(sessions) -> None:
    """A close the venue refuses leaves the flip's open waiting: it never nets the long."""
    account = await seed(sessions, "flip")
    engine, venue, _ = paper_engine(sessions)
    await engine.ingest(post(1, "Long $ETH"))
    refuse = venue.fill

    def refusing(order):  # type: ignore[no-untyped-def]
        if order.reduce_only:
            from engine.venues.base import VenueRejected

            raise VenueRejected("no_liquidity", "could not immediately match")
        return refuse(order)

    venue.fill = refusing  # type: ignore[method-assign]
    await engine.ingest(post(2, "Short $ETH"))
    assert await our_books(sessions) == paper_books(venue, account) == {("ETH", "long"): D("0.1")}
    assert (await open_orders(sessions))[1] == ("short", "waiting", None)
    venue.fill = refuse  # type: ignore[method-assign]
    await engine.on_price(PriceTick(NOW, "ETH", D(2000)))  # the close is retried on a tick
    await engine.resume_pending()  # the released open is sent by the next sweep
    assert await our_books(sessions) == paper_books(venue, account) == {("ETH", "short"): D("0.1")}


async def test_existing_agents_default_to_ignore(sessions) -> None:
    async with sessions() as s, s.begin():
        s.add(Agent(name="Old", venue="HYPERLIQUID", stop_loss_pct=D("0.05")))
    async with sessions() as s:
        agent = (await s.execute(select(Agent))).scalar_one()
    assert agent.position_policy == "ignore" and agent.add_cap_multiple == D(3)


async def test_another_agents_position_on_the_account_is_never_touched(sessions) -> None:
    account = await seed(sessions, "flip")
    engine, venue, _ = paper_engine(sessions)
    await engine.ingest(post(1, "Long $ETH"))
    async with sessions() as s, s.begin():  # a second deployment on the same account
        dep = (await s.execute(select(Deployment))).scalar_one()
        other = Agent(name="Bear", venue="HYPERLIQUID", leverage=D(5), stop_loss_pct=D("0.05"))
        src = Source(kind="x", handle="@bear")
        s.add_all([other, src])
        await s.flush()
        await s.execute(agent_sources.insert(), [{"agent_id": other.id, "source_id": src.id}])
        s.add(
            Deployment(
                user_id=dep.user_id,
                agent_id=other.id,
                collateral_usd=D(100),
                leverage=D(2),
                account=account,
            )
        )
        await s.execute(update(Agent).where(Agent.name == "Bear").values(position_policy="flip"))
    await engine.ingest(IncomingPost("x", "@bear", "b1", "Short $ETH", NOW))
    assert await our_books(sessions) == paper_books(venue, account) == {("ETH", "long"): D("0.1")}
    assert (await open_orders(sessions))[-1] == ("short", "skipped", "held_by_other_agent")
