"""The marketplace's kept standings (engine/analytics/summary.py) equal a full recomputation:
after random closes (on time, late, backfilled), random corrections of old closes picked up by
the daily rebuild, and days passing, every agent's kept row is what a rebuild from all closed
positions writes, and /agents' order is the ranking computed from the records."""

from __future__ import annotations

import random
from datetime import timedelta
from decimal import Decimal

from sqlalchemy import select, update

from engine.analytics.daily import rebuild_daily, refresh_daily
from engine.analytics.ranking import rank
from engine.analytics.records import agent_records, followers
from engine.analytics.summary import page, place_of, window
from storage.models import AgentSummary, Position
from tests.analytics_helpers import Book, at

COLUMNS = [c.name for c in AgentSummary.__table__.columns]


async def kept(s) -> list[tuple]:  # type: ignore[no-untyped-def]
    rows = (await s.execute(select(AgentSummary).order_by(AgentSummary.agent_id))).scalars()
    return [tuple(str(getattr(r, c)) for c in COLUMNS) for r in rows]


def near(kept_value: Decimal | None, exact: Decimal | None) -> bool:
    """Equal to the 18 decimal places money columns keep."""
    if kept_value is None or exact is None:
        return kept_value is exact
    return abs(kept_value - exact) < Decimal("1e-15")


async def check(sessions, now) -> None:  # type: ignore[no-untyped-def]
    """The kept rows equal a full rebuild's (made and rolled back, so the kept rows carry on
    on their own); the page order equals the ranking of the records."""
    async with sessions() as s:
        incremental = await kept(s)
        await rebuild_daily(s, now)
        assert await kept(s) == incremental
        await s.rollback()
    async with sessions() as s:
        since, last = window(now.date())
        records = await agent_records(s, None, since, last)
        people = await followers(s, None)
        shown, total, ranked = await page(s, 0, 1000)
        ids = [a.id for a, _ in shown]
        expected = rank(sorted(ids), records, people)
        assert ids == [st.agent_id for st in expected]
        assert ranked == sum(st.ranked for st in expected) and total == len(ids)
        for st, (_, row) in zip(expected, shown, strict=True):
            if st.live is not None:
                f = st.live.figures
                assert row.live_trades == f.trades
                kept_figures = (row.live_return, row.live_sharpe, row.live_win_rate)
                for mine, exact in zip(kept_figures, (f.cumulative_return, f.sharpe, f.win_rate),
                                       strict=True):  # fmt: skip
                    assert near(mine, exact)
            else:
                assert row.live_return is None and row.live_trades == 0
            if st.paper is not None:
                assert row.paper_trades == st.paper.figures.trades
        places = [await place_of(s, st.agent_id) for st in expected]
    assert places == [i + 1 if st.ranked else 0 for i, st in enumerate(expected)]


async def test_kept_standings_equal_a_full_recomputation(sessions) -> None:  # type: ignore[no-untyped-def]
    rng = random.Random(14)
    book = Book(sessions)
    users = [await book.user(f"u{i}") for i in range(6)]
    agents = [await book.agent(f"A{i}", creator=users[0]) for i in range(8)]
    deployments: list[tuple[int, int]] = []  # (deployment, agent)
    for i, agent in enumerate(agents):
        for user in rng.sample(users, 1 + i % 3):
            mode = "live" if rng.random() < 0.7 else "paper"
            deployments.append((await book.deployment(user, agent, mode), agent))
    positions: list[int] = []
    now = at(1, 6)
    for step in range(12):
        now += timedelta(hours=rng.choice([3, 9, 20, 30]))
        for _ in range(rng.randint(3, 9)):
            dep, agent = rng.choice(deployments)
            # mostly just closed; some recorded late (another replica), some backfilled days ago
            back = rng.choice(
                [timedelta(minutes=5)] * 5 + [timedelta(minutes=50), timedelta(days=3)]
            )
            pnl = str(Decimal(rng.randint(-900, 1200)) / 100)
            reason = rng.choice(["take_profit"] * 4 + ["stop_loss", "manual"])
            positions.append(await book.trade(dep, agent, now - back, pnl, reason=reason))
        async with sessions() as s, s.begin():
            await refresh_daily(s, now)
        if step % 3 == 2:  # a correction of an old close (fees settled days later)
            fixed = rng.choice(positions[: len(positions) // 2])
            async with sessions() as s, s.begin():
                await s.execute(
                    update(Position)
                    .where(Position.id == fixed)
                    .values(realized_pnl=Decimal(rng.randint(-500, 500)) / 100)
                )
            async with sessions() as s, s.begin():  # the daily rebuild job picks it up
                await rebuild_daily(s, now)
        await check(sessions, now)
    async with sessions() as s:
        ranked = (await s.execute(select(AgentSummary).where(AgentSummary.place_group == 0))).all()
    assert ranked, "the history should rank some agents"
