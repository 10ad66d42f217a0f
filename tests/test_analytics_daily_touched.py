"""The refresh after new closes rolls up again only the agents and days those closes touched,
and stays exact: after random closes (on time, committed late inside and beyond the look-back,
backfilled days ago) and corrections of closes inside the window, each followed by a refresh,
the daily rows and the kept standings are what a full rebuild writes; two replicas refreshing
at once count every close once."""

from __future__ import annotations

import asyncio
import random
from datetime import timedelta
from decimal import Decimal

from sqlalchemy import select, update

from engine.analytics import rollup, summary
from engine.analytics.daily import rebuild_daily, refresh_daily
from storage.models import AgentDailyMetric, AgentSummary, Position
from storage.models.analytics import DeploymentDailyMetric
from tests.analytics_helpers import Book, at


async def rows(s) -> list[list[tuple]]:  # type: ignore[no-untyped-def]
    """Every daily row and kept standing, as text (money compared to the stored digits)."""
    out = []
    for table in (DeploymentDailyMetric, AgentDailyMetric, AgentSummary):
        cols = [c.name for c in table.__table__.columns]
        found = (await s.execute(select(table))).scalars().all()
        out.append(sorted(tuple(str(getattr(r, c)) for c in cols) for r in found))
    return out


async def equals_a_rebuild(sessions, now) -> None:  # type: ignore[no-untyped-def]
    async with sessions() as s:
        kept = await rows(s)
        await rebuild_daily(s, now)
        rebuilt = await rows(s)
        await s.rollback()
    assert kept == rebuilt


async def history(book: Book, rng: random.Random) -> list[tuple[int, int]]:
    users = [await book.user(f"u{i}") for i in range(5)]
    agents = [await book.agent(f"A{i}", creator=users[0]) for i in range(7)]
    deployments = []
    for i, agent in enumerate(agents):
        for user in rng.sample(users, 1 + i % 3):
            mode = "live" if rng.random() < 0.7 else "paper"
            deployments.append((await book.deployment(user, agent, mode), agent))
    return deployments


async def test_refreshes_after_each_close_equal_a_full_rebuild(sessions) -> None:  # type: ignore[no-untyped-def]
    rng = random.Random(1414)
    book = Book(sessions)
    deployments = await history(book, rng)
    closes: list[tuple[int, object]] = []  # (position, closed_at)
    now = at(1, 6)
    async with sessions() as s, s.begin():
        await refresh_daily(s, now)
    for step in range(40):
        now += rng.choice([timedelta(seconds=20), timedelta(minutes=3), timedelta(minutes=40),
                           timedelta(hours=5), timedelta(hours=19)])  # fmt: skip
        for _ in range(rng.randint(1, 4)):
            dep, agent = rng.choice(deployments)
            back = rng.choice(
                [timedelta(seconds=5)] * 6  # on time
                + [timedelta(minutes=10), timedelta(minutes=50)]  # committed late, in the look-back
                + [timedelta(hours=3), timedelta(days=2)]  # beyond it; backfilled
            )
            pnl = str(Decimal(rng.randint(-900, 1200)) / 100)
            reason = rng.choice(["take_profit"] * 4 + ["stop_loss", "manual"])
            closed = now - back
            closes.append((await book.trade(dep, agent, closed, pnl, reason=reason), closed))
        if step % 4 == 3:  # a fee or PnL settled later, on a close still inside the window
            window = now - timedelta(hours=1)
            inside = [p for p, c in closes if c.date() >= window.date()]  # type: ignore[attr-defined]
            if inside:
                async with sessions() as s, s.begin():
                    await s.execute(
                        update(Position)
                        .where(Position.id == rng.choice(inside))
                        .values(realized_pnl=Decimal(rng.randint(-500, 500)) / 100)
                    )
        async with sessions() as s, s.begin():
            await refresh_daily(s, now)
        await equals_a_rebuild(sessions, now)


async def test_a_close_on_time_rolls_up_only_its_agents_day(sessions, monkeypatch) -> None:  # type: ignore[no-untyped-def]
    rng = random.Random(7)
    book = Book(sessions)
    deployments = await history(book, rng)
    for dep, agent in deployments:  # every agent traded today
        await book.trade(dep, agent, at(5, 9), "3")
    async with sessions() as s, s.begin():
        await refresh_daily(s, at(5, 10))
    read: list[list[int] | None] = []
    rewritten: list[set[int] | None] = []
    trades, recompute = rollup.closed_trades, summary.recompute

    async def reading(session, since, until=None, agents=None):  # type: ignore[no-untyped-def]
        read.append(agents)
        return await trades(session, since, until, agents)

    async def standings(session, last, agent_ids):  # type: ignore[no-untyped-def]
        rewritten.append(None if agent_ids is None else set(agent_ids))
        await recompute(session, last, agent_ids)

    monkeypatch.setattr(rollup, "closed_trades", reading)
    monkeypatch.setattr(summary, "recompute", standings)
    dep, agent = deployments[3]
    await book.trade(dep, agent, at(5, 10) + timedelta(minutes=2), "-7")
    async with sessions() as s, s.begin():
        assert await refresh_daily(s, at(5, 10) + timedelta(minutes=3)) is True
    assert read == [[agent]] and rewritten == [{agent}]
    await equals_a_rebuild(sessions, at(5, 10) + timedelta(minutes=3))


async def test_two_replicas_refreshing_at_once_count_each_close_once(sessions) -> None:  # type: ignore[no-untyped-def]
    rng = random.Random(3)
    book = Book(sessions)
    deployments = await history(book, rng)
    now = at(8, 12)
    async with sessions() as s, s.begin():
        await refresh_daily(s, now)

    async def replica(when) -> None:  # type: ignore[no-untyped-def]
        async with sessions() as s, s.begin():
            await refresh_daily(s, when)

    for round_ in range(3):
        now += timedelta(minutes=5)
        for dep, agent in rng.sample(deployments, 4):
            await book.trade(dep, agent, now - timedelta(seconds=30 * round_), "2.5")
        await asyncio.gather(replica(now), replica(now))
        await equals_a_rebuild(sessions, now)
    async with sessions() as s:
        counted = sum((await s.execute(select(DeploymentDailyMetric.trades))).scalars())
    assert counted == 12
