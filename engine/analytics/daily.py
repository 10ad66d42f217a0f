"""The daily roll-up: closed positions become one row per deployment and day and one per
agent, mode and day, so every figure over weeks reads a few rows per scope, not every trade.

Incremental: each refresh recomputes whole days from a little before the last refresh (closes
committed late, fees settled after the close) and skips the work when the closes in that
window have not changed since (their count and PnL sum). A close recorded with a time before
that window (a replay, a backfill) makes it recompute every day. A correction of an older
close's PnL is not seen: `rebuild_daily` recomputes all days (the tests check both ways give
the same rows; engine/analytics/rebuild_job.py runs it daily). Each refresh also keeps the
marketplace's standings (engine/analytics/summary.py) of the agents whose days it rewrote."""

from __future__ import annotations

from collections import defaultdict
from dataclasses import dataclass
from datetime import UTC, date, datetime, time, timedelta
from decimal import Decimal
from typing import Any

from sqlalchemy import delete, func, select
from sqlalchemy.ext.asyncio import AsyncSession

from engine.analytics import summary
from engine.analytics.figures import ZERO, DayTotals
from storage.bulk import insert_ignore
from storage.enums import CloseReason, PositionStatus
from storage.models import AgentDailyMetric, AnalyticsProgress, Deployment, Position
from storage.models.analytics import DeploymentDailyMetric

PROGRESS = "daily"
# how far back each refresh looks again: a close recorded with an earlier time than the last
# refresh (another replica's transaction committing later) or a fee settled after the close
LOOKBACK = timedelta(hours=1)
# a follower closing by hand (here or in the venue's app) is not the agent's trade
FOLLOWER_CLOSES = frozenset({CloseReason.MANUAL.value, CloseReason.EXTERNAL.value})


def day_start(day: date) -> datetime:
    return datetime.combine(day, time(0), tzinfo=UTC)


def margin_of(entry: Decimal, size: Decimal, leverage: Decimal | None) -> Decimal:
    """The collateral a position held: its notional at entry over its leverage."""
    notional = entry * size
    return notional / leverage if leverage and leverage > 0 else notional


@dataclass(frozen=True, slots=True)
class ClosedTrade:
    deployment_id: int
    user_id: int
    agent_id: int
    mode: str
    day: date
    pnl: Decimal
    margin: Decimal
    fees: Decimal
    by_follower: bool

    def totals(self) -> DayTotals:
        return DayTotals(
            trades=1,
            wins=int(self.pnl > 0),
            losses=int(self.pnl < 0),
            realized_pnl=self.pnl,
            win_pnl=self.pnl if self.pnl > 0 else ZERO,
            loss_pnl=self.pnl if self.pnl < 0 else ZERO,
            margin=self.margin,
            fees=self.fees,
        )


async def closed_trades(session: AsyncSession, since: datetime | None) -> list[ClosedTrade]:
    query = (
        select(
            Position.deployment_id,
            Deployment.user_id,
            Deployment.agent_id,
            Deployment.mode,
            Position.closed_at,
            Position.realized_pnl,
            Position.entry_price,
            Position.size,
            Position.leverage,
            Position.open_fee,
            Position.close_fee,
            Position.close_reason,
        )
        .join(Deployment, Deployment.id == Position.deployment_id)
        .where(Position.status == PositionStatus.CLOSED, Position.closed_at.is_not(None))
    )
    if since is not None:
        query = query.where(Position.closed_at >= since)
    out = []
    for r in (await session.execute(query)).all():
        out.append(
            ClosedTrade(
                r.deployment_id,
                r.user_id,
                r.agent_id,
                r.mode,
                r.closed_at.astimezone(UTC).date(),
                r.realized_pnl or ZERO,
                margin_of(r.entry_price, r.size, r.leverage),
                (r.open_fee or ZERO) + (r.close_fee or ZERO),
                (r.close_reason or "") in FOLLOWER_CLOSES,
            )
        )
    return out


def _totals_row(t: DayTotals) -> dict[str, Any]:
    return {
        "trades": t.trades,
        "wins": t.wins,
        "losses": t.losses,
        "realized_pnl": t.realized_pnl,
        "win_pnl": t.win_pnl,
        "loss_pnl": t.loss_pnl,
        "margin": t.margin,
        "fees": t.fees,
    }


async def _write_days(session: AsyncSession, since: datetime | None) -> set[int] | None:
    """Replace every daily row from `since`'s day (all rows with None) by a fresh roll-up;
    the agents whose rows were rewritten (None: all of them)."""
    first_day = since.astimezone(UTC).date() if since is not None else None
    start = day_start(first_day) if first_day is not None else None
    trades = await closed_trades(session, start)
    before = await _agent_days(session, first_day) if first_day is not None else None
    deployments: dict[tuple[int, date], DayTotals] = defaultdict(DayTotals)
    who: dict[int, tuple[int, int, str]] = {}
    agents: dict[tuple[int, str, date], DayTotals] = defaultdict(DayTotals)
    manual: dict[tuple[int, str, date], int] = defaultdict(int)
    for t in trades:
        deployments[(t.deployment_id, t.day)] += t.totals()
        who[t.deployment_id] = (t.user_id, t.agent_id, t.mode)
        key = (t.agent_id, t.mode, t.day)
        if t.by_follower:
            manual[key] += 1
        else:
            agents[key] += t.totals()
    for table in (DeploymentDailyMetric, AgentDailyMetric):
        stmt = delete(table)
        if first_day is not None:
            stmt = stmt.where(table.day >= first_day)
        await session.execute(stmt)
    await insert_ignore(
        session,
        DeploymentDailyMetric,
        [
            {
                "deployment_id": dep,
                "day": day,
                "user_id": who[dep][0],
                "agent_id": who[dep][1],
                "mode": who[dep][2],
                **_totals_row(t),
            }
            for (dep, day), t in sorted(deployments.items())
        ],
    )
    await insert_ignore(
        session,
        AgentDailyMetric,
        [
            {
                "agent_id": agent,
                "mode": mode,
                "day": day,
                **_totals_row(agents.get((agent, mode, day), DayTotals())),
                "return_pct": agents.get((agent, mode, day), DayTotals()).return_on_margin,
                "manual_closes": manual.get((agent, mode, day), 0),
                "extra": {},
            }
            for agent, mode, day in sorted(set(agents) | set(manual))
        ],
    )
    if before is None:
        return None
    # the agents whose days differ from before (a refresh of today rewrites every agent's
    # today; most of them are what they were)
    after: dict[int, dict[tuple[str, date], tuple[DayTotals, int]]] = defaultdict(dict)
    for agent, mode, day in set(agents) | set(manual):
        after[agent][(mode, day)] = (agents.get((agent, mode, day), DayTotals()),
                                     manual.get((agent, mode, day), 0))  # fmt: skip
    return {a for a in set(before) | set(after) if before.get(a, {}) != after.get(a, {})}


async def _agent_days(
    session: AsyncSession, first_day: date
) -> dict[int, dict[tuple[str, date], tuple[DayTotals, int]]]:
    """The agent rows from `first_day`, as `_write_days` builds them."""
    m = AgentDailyMetric
    rows = await session.execute(
        select(m.agent_id, m.mode, m.day, m.trades, m.wins, m.losses, m.realized_pnl,
               m.win_pnl, m.loss_pnl, m.margin, m.fees, m.manual_closes)
        .where(m.day >= first_day)
    )  # fmt: skip
    out: dict[int, dict[tuple[str, date], tuple[DayTotals, int]]] = defaultdict(dict)
    for r in rows.all():
        totals = DayTotals(r.trades, r.wins, r.losses, r.realized_pnl, r.win_pnl, r.loss_pnl,
                           r.margin, r.fees)  # fmt: skip
        out[r.agent_id][(r.mode, r.day)] = (totals, r.manual_closes)
    return out


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


async def refresh_daily(session: AsyncSession, now: datetime) -> bool:
    """Bring the daily rows up to date (inside the caller's transaction); True if it rolled
    anything up, False when nothing closed or changed since the last refresh."""
    if await _unchanged(session, await _progress(session, lock=False), now):
        await summary.keep_current(session, now.date())
        return False
    progress = await _locked_progress(session)
    touched: set[int] | None = set()
    if progress.closed_through is None or progress.window_start is None:
        touched = await _write_days(session, None)
        changed = True
    else:
        # from the last refresh's window: it covers every close since then, late ones too
        now_print = await _fingerprint(session, progress.window_start)
        changed = now_print != progress.fingerprint
        if changed:
            inside = _only_inside(progress.fingerprint, now_print)
            touched = await _write_days(session, progress.window_start if inside else None)
    await _remember(session, progress, now)
    # the marketplace's kept standings of the agents whose days changed, and of every agent
    # when the window moved
    if not await summary.keep_current(session, now.date()):
        await summary.recompute(session, now.date(), touched)
    return changed


async def _remember(session: AsyncSession, progress: AnalyticsProgress, now: datetime) -> None:
    """The window the next refresh checks: from the day a look-back before now."""
    window = day_start((now - LOOKBACK).date())
    if progress.closed_through is None or now > progress.closed_through:
        progress.closed_through = now
    progress.window_start = window
    progress.fingerprint = await _fingerprint(session, window)


async def rebuild_daily(session: AsyncSession, now: datetime) -> None:
    """Every day again from all closed positions (after a correction older than LOOKBACK)."""
    progress = await _locked_progress(session)
    await _write_days(session, None)
    await _remember(session, progress, now)
    if not await summary.keep_current(session, now.date()):
        await summary.recompute(session, now.date(), None)
