"""The daily roll-up: refreshed bit by bit as trades close it holds exactly what a full
recompute holds; live and paper apart; followers' manual closes are not the agent's trades."""

from __future__ import annotations

from datetime import timedelta
from decimal import Decimal

from sqlalchemy import select, update

from engine.analytics.daily import rebuild_daily, refresh_daily
from engine.analytics.records import agent_records, user_days
from storage.models import AgentDailyMetric, Position
from storage.models.analytics import DeploymentDailyMetric
from tests.analytics_helpers import Book, at

D = Decimal


async def snapshot(sessions) -> tuple[list, list]:
    async with sessions() as s:
        deps = (await s.execute(select(DeploymentDailyMetric))).scalars().all()
        agents = (await s.execute(select(AgentDailyMetric))).scalars().all()
        cols_d = [c.name for c in DeploymentDailyMetric.__table__.columns]
        cols_a = [c.name for c in AgentDailyMetric.__table__.columns]
        return (
            sorted(tuple(getattr(r, c) for c in cols_d) for r in deps),
            sorted(tuple(str(getattr(r, c)) for c in cols_a) for r in agents),
        )


async def refresh(sessions, now) -> bool:
    async with sessions() as s, s.begin():
        return await refresh_daily(s, now)


async def test_incremental_refreshes_equal_a_full_recompute(sessions) -> None:
    book = Book(sessions)
    ann, bob = await book.user("Ann"), await book.user("Bob")
    hawk, mia = await book.agent("Hawk", creator=ann), await book.agent("Mia")
    ann_hawk = await book.deployment(ann, hawk, "live")
    bob_hawk = await book.deployment(bob, hawk, "paper")
    bob_mia = await book.deployment(bob, mia, "live")
    plan = [  # (day, hour, deployment, agent, pnl, reason)
        (1, 9, ann_hawk, hawk, "12.5", "take_profit"),
        (1, 15, bob_hawk, hawk, "-4", "stop_loss"),
        (2, 10, bob_mia, mia, "7", "trailing_stop"),
        (2, 11, ann_hawk, hawk, "-3.25", "manual"),  # Ann closed it herself
        (4, 8, ann_hawk, hawk, "20", "take_profit"),
        (4, 23, bob_mia, mia, "-6", "external"),  # closed in the venue's app
        (5, 1, bob_hawk, hawk, "9", "take_profit"),
        (7, 12, ann_hawk, hawk, "-8", "liquidation"),
    ]
    assert await refresh(sessions, at(1, 0)) is True  # the first refresh rolls up everything
    for day, hour, dep, agent, pnl, reason in plan:
        closed = at(day, hour)
        await book.trade(dep, agent, closed, pnl, reason=reason)
        assert await refresh(sessions, closed + timedelta(minutes=5)) is True
    # nothing new: the refresh sees the same closes and writes nothing
    assert await refresh(sessions, at(7, 13)) is False
    # a close recorded late (another replica's transaction) with a time before the last
    # refresh, inside the look-back, and a fee settled after a close: both picked up
    await book.trade(ann_hawk, hawk, at(7, 12) + timedelta(minutes=30), "5")
    assert await refresh(sessions, at(7, 14)) is True
    async with sessions() as s, s.begin():
        last = (await s.execute(select(Position).order_by(Position.id.desc()))).scalars().first()
        settled = update(Position).where(Position.id == last.id).values(realized_pnl=D("4.9"))
        await s.execute(settled)
    assert await refresh(sessions, at(7, 14)) is True
    # a close recorded days after its time (a backfill): every day is recomputed
    await book.trade(bob_mia, mia, at(3, 9), "2")
    assert await refresh(sessions, at(7, 15)) is True
    incremental = await snapshot(sessions)
    async with sessions() as s, s.begin():
        await rebuild_daily(s, at(7, 15))
    assert await snapshot(sessions) == incremental

    async with sessions() as s:
        records = await agent_records(s, None, None, at(7).date())
        ann_days = await user_days(s, ann)
    # Hawk live: its own trades only (Ann's manual close is hers, not Hawk's)
    live = records[(hawk, "live")].figures
    assert live.trades == 4 and live.realized_pnl == D("12.5") + 20 - 8 + D("4.9")
    assert records[(hawk, "paper")].figures.trades == 2
    assert records[(mia, "live")].figures.trades == 2  # the venue-app close is not Mia's
    # Ann's own record counts every trade of hers, her manual close included
    assert sum(t.trades for t in ann_days["live"].values()) == 5
    assert ann_days["live"][at(2).date()].realized_pnl == D("-3.25")
    assert "paper" not in ann_days
    async with sessions() as s:
        manual = (
            await s.execute(
                select(AgentDailyMetric.manual_closes).where(
                    AgentDailyMetric.agent_id == hawk, AgentDailyMetric.day == at(2).date()
                )
            )
        ).scalar_one()
    assert manual == 1


async def test_open_positions_are_not_in_the_daily_rows(sessions) -> None:
    book = Book(sessions)
    ann = await book.user("Ann")
    hawk = await book.agent("Hawk")
    dep = await book.deployment(ann, hawk)
    await book.trade(dep, hawk, at(3), "10")
    await book.trade(dep, hawk, at(3), "0", status="open")
    await refresh(sessions, at(3, 13))
    async with sessions() as s:
        rows = (await s.execute(select(DeploymentDailyMetric))).scalars().all()
    assert [(r.trades, r.wins, r.realized_pnl, r.margin) for r in rows] == [(1, 1, 10, 100)]
