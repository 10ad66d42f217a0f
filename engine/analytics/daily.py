"""The daily roll-up: closed positions become one row per deployment and day and one per
agent, mode and day, so every figure over weeks reads a few rows per scope, not every trade.

Incremental: each refresh compares the closes of the last refresh's window (from the day a
little before the last refresh: closes committed late, fees settled after the close) with
what they were (count and PnL sum) and does nothing when they are the same. When they differ
and every close before the last refresh's look-back edge is as it was, only the agents and
days of the closes from that edge on are rolled up again (engine/analytics/rollup.py
`write_touched`: the cost of those agents' trades on those days, not of every agent's); when
one before the edge changed, the whole window; when a close was recorded with a time before
the window (a replay, a backfill), every day. A correction of an older close's PnL is not
seen: `rebuild_daily` recomputes all days (the tests check both ways give the same rows;
engine/analytics/rebuild_job.py runs it daily). Each refresh also keeps the marketplace's
standings (engine/analytics/summary.py) of the agents whose days it rewrote."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime, timedelta

from sqlalchemy import func, select
from sqlalchemy.ext.asyncio import AsyncSession

from engine.analytics import summary
from engine.analytics.rollup import day_start, write_days, write_touched
from storage.bulk import insert_ignore
from storage.enums import PositionStatus
from storage.models import AnalyticsProgress, Position

PROGRESS = "daily"
# the spans of the last refresh's window: before its look-back edge, and from the edge to
# its time (each: its end and its closes' print, count and PnL sum); the same prints now mean
# only closes from that time on can have changed
SETTLED, RECENT = "daily_settled", "daily_recent"
# how far back each refresh looks again: a close recorded with an earlier time than the last
# refresh (another replica's transaction committing later) or a fee settled after the close
LOOKBACK = timedelta(hours=1)


async def _window_print(session: AsyncSession, since: datetime) -> tuple[str, str, str]:
    """The closes from `since` (count and PnL sum) and the newest closed position's id: what
    a refresh compares on every read. It costs the window's closes (an index range) and one
    index lookup, not a pass over every trade ever closed."""
    # through the closed_at index: SQLite would pick the status index, a pass over every
    # closed position, were the status not wrapped (it is a filter here, not the way in)
    closed = func.coalesce(Position.status, "") == PositionStatus.CLOSED
    count, total = (
        await session.execute(
            select(func.count(), func.sum(Position.realized_pnl)).where(
                Position.closed_at >= since, closed
            )
        )
    ).one()
    newest = (
        await session.execute(
            select(func.max(Position.id)).where(Position.status == PositionStatus.CLOSED)
        )
    ).scalar()
    return str(count), str(total), str(newest)


async def _fingerprint(session: AsyncSession, since: datetime) -> str:
    """The window's print and the count of all closes: a close recorded with a time before
    the window (a backfill: a new row) shows in the newest id and the count alone. A close of
    an older row recorded with a time before the window is left to the daily rebuild."""
    count, total, newest = await _window_print(session, since)
    everything = (
        await session.execute(select(func.count()).where(Position.status == PositionStatus.CLOSED))
    ).scalar_one()
    return f"{count}:{total}:{everything}:{newest}"[:100]


def _only_inside(before: str | None, after: str) -> bool:
    """Every close added since `before` is inside the window (so recomputing the window
    suffices); False when some landed before it (then every day is recomputed)."""
    if before is None:
        return False
    old, new = before.split(":"), after.split(":")
    if len(old) != len(new):  # written by an older version: recompute everything once
        return False
    return int(new[2]) - int(old[2]) == int(new[0]) - int(old[0])


async def _progress(session: AsyncSession, lock: bool) -> AnalyticsProgress | None:
    query = select(AnalyticsProgress).where(AnalyticsProgress.name == PROGRESS)
    if lock and session.bind.dialect.name == "postgresql":
        # one refresher at a time across replicas (SQLite serialises writers by itself)
        query = query.with_for_update()
    return (
        await session.execute(query.execution_options(populate_existing=True))
    ).scalar_one_or_none()


async def _locked_progress(session: AsyncSession) -> AnalyticsProgress:
    await insert_ignore(session, AnalyticsProgress, [{"name": PROGRESS}])
    progress = await _progress(session, lock=True)
    assert progress is not None
    return progress


async def _unchanged(
    session: AsyncSession, progress: AnalyticsProgress | None, now: datetime
) -> bool:
    """Nothing to do: the closes in the last refresh's window are what they were, and that
    window is still the one to watch. Reads only, so readers of /agents do not write."""
    if progress is None or progress.closed_through is None or progress.window_start is None:
        return False
    if progress.window_start != day_start((now - LOOKBACK).date()):
        return False
    stored = (progress.fingerprint or "").split(":")
    if len(stored) != 4:
        return False
    count, total, _, newest = stored
    return await _window_print(session, progress.window_start) == (count, total, newest)


async def _span_print(session: AsyncSession, since: datetime, until: datetime) -> str:
    """The closes from `since` to before `until`: count and PnL sum (closed_at index)."""
    closed = func.coalesce(Position.status, "") == PositionStatus.CLOSED
    count, total = (
        await session.execute(
            select(func.count(), func.sum(Position.realized_pnl)).where(
                Position.closed_at >= since, Position.closed_at < until, closed
            )
        )
    ).one()
    return f"{count}:{total}"[:100]


async def _mark(session: AsyncSession, name: str) -> AnalyticsProgress:
    """A span's end and print (SETTLED, RECENT); written only under the "daily" row's lock."""
    await insert_ignore(session, AnalyticsProgress, [{"name": name}])
    query = select(AnalyticsProgress).where(AnalyticsProgress.name == name)
    return (await session.execute(query.execution_options(populate_existing=True))).scalar_one()


Marks = tuple[AnalyticsProgress, AnalyticsProgress]  # SETTLED's and RECENT's rows


@dataclass(frozen=True, slots=True)
class Prints:
    """What the next refresh compares, taken before the rows are read, so a close committed
    meanwhile is at worst rolled up twice (the rows are rebuilt, never added to), not lost:
    the window's print, and that of its closes before the look-back edge (`settled`) and from
    the edge to this refresh's time (`recent`)."""

    window: datetime
    edge: datetime
    cut: datetime
    fingerprint: str
    settled: str
    recent: str


async def _prints(session: AsyncSession, now: datetime) -> Prints:
    window, edge = day_start((now - LOOKBACK).date()), now - LOOKBACK
    return Prints(window, edge, now, await _fingerprint(session, window),
                  await _span_print(session, window, edge),
                  await _span_print(session, edge, now))  # fmt: skip


async def _roll_up_changes(
    session: AsyncSession, progress: AnalyticsProgress, marks: Marks, now_print: str
) -> set[int] | None:
    """The rows the closes since the last refresh changed, rolled up again; the agents whose
    rows changed (None: all). When every close of the last refresh's window before its time
    is as it was (the spans' prints), only the agents and days of the closes from that time
    on (the common case: closes recorded in time order); when one from the look-back edge on
    changed (a transaction committed late, a fee settled), the agents and days of the closes
    from the edge on; when one before the edge changed, the whole window; when one landed
    before the window (a backfill), every day."""
    window = progress.window_start
    assert window is not None
    if not _only_inside(progress.fingerprint, now_print):
        return await write_days(session, None)
    settled, recent = marks
    edge, cut = settled.window_start, recent.window_start
    if edge is None or cut is None or not window <= edge <= cut:
        return await write_days(session, window)
    if await _span_print(session, window, edge) != settled.fingerprint:
        return await write_days(session, window)
    if await _span_print(session, edge, cut) != recent.fingerprint:
        return await write_touched(session, edge)
    return await write_touched(session, cut)


async def refresh_daily(session: AsyncSession, now: datetime) -> bool:
    """Bring the daily rows up to date (inside the caller's transaction); True if it rolled
    anything up, False when nothing closed or changed since the last refresh."""
    if await _unchanged(session, await _progress(session, lock=False), now):
        await summary.keep_current(session, now.date())
        return False
    progress = await _locked_progress(session)
    marks = (await _mark(session, SETTLED), await _mark(session, RECENT))
    prints = await _prints(session, now)
    touched: set[int] | None = set()
    if progress.closed_through is None or progress.window_start is None:
        touched = await write_days(session, None)
        changed = True
    else:
        # from the last refresh's window: it covers every close since then, late ones too
        now_print = (
            prints.fingerprint
            if progress.window_start == prints.window
            else await _fingerprint(session, progress.window_start)
        )
        changed = now_print != progress.fingerprint
        if changed:
            touched = await _roll_up_changes(session, progress, marks, now_print)
    _remember(progress, marks, prints, now)
    # the marketplace's kept standings of the agents whose days changed, and of every agent
    # when the window moved
    if not await summary.keep_current(session, now.date()):
        await summary.recompute(session, now.date(), touched)
    return changed


def _remember(progress: AnalyticsProgress, marks: Marks, prints: Prints, now: datetime) -> None:
    """The window the next refresh checks (from the day a look-back before now) and the
    prints of its spans."""
    if progress.closed_through is None or now > progress.closed_through:
        progress.closed_through = now
    progress.window_start = prints.window
    progress.fingerprint = prints.fingerprint
    settled, recent = marks
    settled.window_start, settled.fingerprint = prints.edge, prints.settled
    recent.window_start, recent.fingerprint = prints.cut, prints.recent


async def rebuild_daily(session: AsyncSession, now: datetime) -> None:
    """Every day again from all closed positions (after a correction older than LOOKBACK)."""
    progress = await _locked_progress(session)
    marks = (await _mark(session, SETTLED), await _mark(session, RECENT))
    prints = await _prints(session, now)
    await write_days(session, None)
    _remember(progress, marks, prints, now)
    if not await summary.keep_current(session, now.date()):
        await summary.recompute(session, now.date(), None)
