"""Track records read from the daily rows: an agent's (live and paper apart), a user's, and
the open book (unrealized PnL, exposure) from positions and current prices."""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Iterable
from dataclasses import dataclass
from datetime import date, timedelta
from decimal import Decimal
from typing import Any

from sqlalchemy import bindparam, func, select
from sqlalchemy.ext.asyncio import AsyncConnection, AsyncSession

from engine.analytics.figures import ZERO, DayTotals, Figures, figures
from storage.enums import DeploymentStatus
from storage.models import AgentDailyMetric, Deployment
from storage.models.analytics import DeploymentDailyMetric


def totals_of(row: Any) -> DayTotals:
    return DayTotals(
        row.trades,
        row.wins,
        row.losses,
        row.realized_pnl,
        row.win_pnl,
        row.loss_pnl,
        row.margin,
        row.fees,
    )


def calendar(days: dict[date, DayTotals], first: date | None, last: date) -> list[DayTotals]:
    """Consecutive days from `first` (None: the first day with a row) to `last`, quiet days
    empty: a day without a close is a day that returned 0."""
    start = first if first is not None else min(days, default=last)
    out, day = [], start
    while day <= last:
        out.append(days.get(day, DayTotals()))
        day += timedelta(days=1)
    return out


@dataclass(frozen=True, slots=True)
class Record:
    """One scope's days (oldest first) over a window, with its figures (computed once: the
    marketplace sorts thousands of records by them)."""

    first_day: date
    last_day: date
    days: tuple[DayTotals, ...]
    figures: Figures


def make_record(first_day: date, last_day: date, days: list[DayTotals]) -> Record:
    return Record(first_day, last_day, tuple(days), figures(days))


def record(days: dict[date, DayTotals], first: date | None, last: date) -> Record | None:
    """None without a single row in the window. A record starts at its first trading day
    (or `first` if given), so a new agent's figures are not diluted by days before it."""
    inside = {d: t for d, t in days.items() if (first is None or d >= first) and d <= last}
    if not inside:
        return None
    start = min(inside)
    return make_record(start, last, calendar(inside, start, last))


async def agent_records(
    session: AsyncSession, agent_ids: Iterable[int] | None, since: date | None, last: date
) -> dict[tuple[int, str], Record]:
    """Per (agent, mode): the agent's own trades over [since, last] (None: all time); all
    agents with None (the marketplace: no list of thousands of ids in the query)."""
    m = AgentDailyMetric
    query = select(
        m.agent_id,
        m.mode,
        m.day,
        m.trades,
        m.wins,
        m.losses,
        m.realized_pnl,
        m.win_pnl,
        m.loss_pnl,
        m.margin,
        m.fees,
    ).where(m.day <= last, m.trades > 0)
    if since is not None:
        query = query.where(m.day >= since)
    if agent_ids is not None:
        query = query.where(m.agent_id.in_(list(agent_ids)))
    per: dict[tuple[int, str], dict[date, DayTotals]] = defaultdict(dict)
    for row in (await session.execute(query)).all():
        per[(row.agent_id, row.mode)][row.day] = totals_of(row)
    out = {}
    for key, days in per.items():
        rec = record(days, None, last)
        if rec is not None:
            out[key] = rec
    return out


_M = DeploymentDailyMetric
# built once (bind parameters): /pnl reads it on every update
_USER_DAYS = select(
    _M.mode, _M.day, _M.trades, _M.wins, _M.losses, _M.realized_pnl, _M.win_pnl, _M.loss_pnl,
    _M.margin, _M.fees,
).where(_M.user_id == bindparam("user_id"))  # fmt: skip
_USER_DAYS_SINCE = _USER_DAYS.where(_M.day >= bindparam("since"))


async def user_days(
    session: AsyncSession | AsyncConnection, user_id: int, since: date | None = None
) -> dict[str, dict[date, DayTotals]]:
    """Per mode ("live", "paper"): the user's closed trades summed per day (Core rows: a
    session or its connection)."""
    if since is None:
        rows = await session.execute(_USER_DAYS, {"user_id": user_id})
    else:
        rows = await session.execute(_USER_DAYS_SINCE, {"user_id": user_id, "since": since})
    out: dict[str, dict[date, DayTotals]] = defaultdict(dict)
    for row in rows.all():
        days = out[row.mode]
        days[row.day] = days.get(row.day, DayTotals()) + totals_of(row)
    return out


def window_totals(days: dict[date, DayTotals], since: date | None, last: date) -> DayTotals:
    total = DayTotals()
    for day, t in days.items():
        if (since is None or day >= since) and day <= last:
            total = total + t
    return total


@dataclass(frozen=True, slots=True)
class OpenBook:
    """Open positions now: unrealized PnL (with funding), the margin they hold and their
    notional at the current price (the exposure)."""

    positions: int = 0
    unrealized_pnl: Decimal = ZERO
    margin: Decimal = ZERO
    exposure: Decimal = ZERO
    unpriced: int = 0  # positions whose market has no price now (not in the sums above)


def open_book(
    rows: Iterable[tuple[str, Decimal, Decimal, Decimal, Decimal, Decimal | None]], price_of: Any
) -> OpenBook:
    """rows: (market, side sign +1/-1, size, entry, funding, leverage) per open position."""
    count, upnl, margin, exposure, unpriced = 0, ZERO, ZERO, ZERO, 0
    for market, sign, size, entry, funding, leverage in rows:
        count += 1
        notional = entry * size
        margin += notional / leverage if leverage and leverage > 0 else notional
        mark = price_of(market)
        if mark is None:
            unpriced += 1
            continue
        upnl += (mark - entry) * size * sign + (funding or ZERO)
        exposure += mark * size
    return OpenBook(count, upnl, margin, exposure, unpriced)


async def followers(session: AsyncSession, agent_ids: Iterable[int] | None) -> dict[int, int]:
    """People running each agent now (paused included, stopped not); None: every agent."""
    query = (
        select(Deployment.agent_id, func.count(func.distinct(Deployment.user_id)))
        .where(Deployment.status != DeploymentStatus.STOPPED)
        .group_by(Deployment.agent_id)
    )
    if agent_ids is not None:
        query = query.where(Deployment.agent_id.in_(list(agent_ids)))
    rows = await session.execute(query)
    return {agent_id: int(count) for agent_id, count in rows.all()}
