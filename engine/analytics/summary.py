"""The marketplace's standings kept, not computed per request: one `agent_summaries` row per
agent with its 30-day ranking inputs (live Sharpe, return, drawdown, win rate and trades; paper
apart) and its place keys, so /agents reads one page in marketplace order through one index,
whatever the number of agents' trades.

Kept current by the daily roll-up (engine/analytics/daily.py): the agents whose daily rows a
refresh rewrote get their row again (so a close, or a correction picked up by the rebuild,
shows at once); every row again when the window moves (the first refresh of a new day, or the
daily rebuild job); and a row for an agent that has none yet (a new agent). The follower
counts that order unranked agents are those of the last time the row was written; the cards
show the current ones."""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass
from datetime import UTC, date, datetime, time, timedelta
from decimal import ROUND_HALF_EVEN, Decimal
from typing import Any

from sqlalchemy import delete, func, select
from sqlalchemy.ext.asyncio import AsyncSession

from engine.analytics.ranking import MIN_TRADES, Standing
from engine.analytics.records import Record, agent_records, followers
from storage.bulk import insert_ignore
from storage.enums import DeploymentMode
from storage.models import Agent, AgentSummary, AnalyticsProgress

WINDOW_DAYS = 30
PROGRESS = "summary"  # its window_start: the day the rows' window ends
MILLION = Decimal(10**6)
ZERO = Decimal(0)


def _micro(value: Decimal) -> int:
    return int((value * MILLION).to_integral_value(ROUND_HALF_EVEN))


def window(last: date) -> tuple[date, date]:
    return last - timedelta(days=WINDOW_DAYS - 1), last


def summary_row(
    agent_id: int, live: Record | None, paper: Record | None, people: int, last: date
) -> dict[str, Any]:
    """The row for one agent; its place keys order agents as engine/analytics/ranking does."""
    lf = live.figures if live is not None else None
    pf = paper.figures if paper is not None else None
    trades = lf.trades if lf is not None else 0
    if lf is not None and trades >= MIN_TRADES:
        sharpe = lf.sharpe
        place = (0, int(sharpe is None), -_micro(sharpe or ZERO), -_micro(lf.cumulative_return))
    else:
        place = (1, 0, -trades, -people)
    return {
        "agent_id": agent_id,
        "window_end": last,
        "followers": people,
        "live_trades": trades,
        "live_return": lf.cumulative_return if lf is not None else None,
        "live_sharpe": lf.sharpe if lf is not None else None,
        "live_drawdown": lf.max_drawdown if lf is not None else None,
        "live_win_rate": lf.win_rate if lf is not None else None,
        "paper_trades": pf.trades if pf is not None else 0,
        "paper_return": pf.cumulative_return if pf is not None else None,
        "paper_win_rate": pf.win_rate if pf is not None else None,
        "place_group": place[0],
        "place_a": place[1],
        "place_b": place[2],
        "place_c": place[3],
    }


async def recompute(session: AsyncSession, last: date, agent_ids: Iterable[int] | None) -> None:
    """These agents' rows (None: every agent's) from their daily rows over the window."""
    since, _ = window(last)
    ids = None if agent_ids is None else sorted(set(agent_ids))
    if ids == []:
        return
    records = await agent_records(session, ids, since, last)
    people = await followers(session, ids)
    if ids is None:
        ids = list((await session.execute(select(Agent.id))).scalars())
    rows = [
        summary_row(
            a,
            records.get((a, DeploymentMode.LIVE.value)),
            records.get((a, DeploymentMode.PAPER.value)),
            people.get(a, 0),
            last,
        )
        for a in ids
    ]
    stmt = delete(AgentSummary)
    if agent_ids is not None:
        stmt = stmt.where(AgentSummary.agent_id.in_(ids))
    await session.execute(stmt)
    await insert_ignore(session, AgentSummary, rows)


async def _window_end(session: AsyncSession, lock: bool) -> AnalyticsProgress | None:
    query = select(AnalyticsProgress).where(AnalyticsProgress.name == PROGRESS)
    if lock and session.bind.dialect.name == "postgresql":
        query = query.with_for_update()  # one replica moves the window at a time
    return (
        await session.execute(query.execution_options(populate_existing=True))
    ).scalar_one_or_none()


def _day(moment: datetime | None) -> date | None:
    return moment.astimezone(UTC).date() if moment is not None else None


async def keep_current(session: AsyncSession, last: date) -> bool:
    """Rows for the window ending `last`: all again when the window moved (then True), and
    one for each agent without a row. Reads only when neither (the common case)."""
    progress = await _window_end(session, lock=False)
    missing = list(
        (
            await session.execute(
                select(Agent.id).where(
                    ~select(AgentSummary.agent_id).where(AgentSummary.agent_id == Agent.id).exists()
                )
            )
        ).scalars()
    )
    if progress is not None and _day(progress.window_start) == last and not missing:
        return False
    await insert_ignore(session, AnalyticsProgress, [{"name": PROGRESS}])
    progress = await _window_end(session, lock=True)
    assert progress is not None
    if _day(progress.window_start) != last:
        await recompute(session, last, None)
        progress.window_start = datetime.combine(last, time(0), tzinfo=UTC)
        return True
    await recompute(session, last, missing)
    return False


@dataclass(frozen=True, slots=True)
class KeptFigures:
    """The figures a marketplace card shows, as the summary keeps them."""

    trades: int
    cumulative_return: Decimal
    sharpe: Decimal | None
    max_drawdown: Decimal
    win_rate: Decimal | None


@dataclass(frozen=True, slots=True)
class KeptRecord:
    figures: KeptFigures


def standing_of(row: AgentSummary, people: int | None = None) -> Standing:
    """A row as the ranking's Standing (live and paper records with their kept figures)."""
    live = paper = None
    if row.live_return is not None:
        live = KeptRecord(KeptFigures(row.live_trades, row.live_return, row.live_sharpe,
                                      row.live_drawdown or ZERO, row.live_win_rate))  # fmt: skip
    if row.paper_return is not None:
        paper = KeptRecord(KeptFigures(row.paper_trades, row.paper_return, None, ZERO,
                                       row.paper_win_rate))  # fmt: skip
    count = row.followers if people is None else people
    return Standing(row.agent_id, live, paper, count)  # type: ignore[arg-type]


PLACE_ORDER = (
    AgentSummary.place_group,
    AgentSummary.place_a,
    AgentSummary.place_b,
    AgentSummary.place_c,
    AgentSummary.agent_id,
)


async def page(
    session: AsyncSession, offset: int, size: int
) -> tuple[list[tuple[Agent, AgentSummary]], int, int]:
    """One page of active agents in marketplace order, the count of active agents, and how
    many of them are ranked (for the places shown)."""
    active = Agent.status == "active"
    rows = (
        await session.execute(
            select(Agent, AgentSummary)
            .join(AgentSummary, AgentSummary.agent_id == Agent.id)
            .where(active)
            .order_by(*PLACE_ORDER)
            .offset(offset)
            .limit(size)
        )
    ).all()
    total, ranked = (
        await session.execute(
            select(func.count(), func.count().filter(AgentSummary.place_group == 0))
            .select_from(AgentSummary)
            .join(Agent, Agent.id == AgentSummary.agent_id)
            .where(active)
        )
    ).one()
    return [(a, s) for a, s in rows], int(total), int(ranked or 0)


async def place_of(session: AsyncSession, agent_id: int) -> int:
    """A ranked agent's place among the active ranked agents (0 when it is not ranked)."""
    mine = await session.get(AgentSummary, agent_id)
    if mine is None or mine.place_group != 0:
        return 0
    s = AgentSummary
    keys = (s.place_a, s.place_b, s.place_c, s.agent_id)
    values = (mine.place_a, mine.place_b, mine.place_c, mine.agent_id)
    ahead = None
    for i in range(len(keys) - 1, -1, -1):  # lexicographic "before mine", built from the end
        here = keys[i] < values[i]
        ahead = here if ahead is None else (here | ((keys[i] == values[i]) & ahead))
    count = (
        await session.execute(
            select(func.count())
            .select_from(s)
            .join(Agent, Agent.id == s.agent_id)
            .where(Agent.status == "active", s.place_group == 0, ahead)
        )
    ).scalar_one()
    return int(count) + 1
