"""The daily rows written from closed positions: one per deployment and day, one per agent,
mode and day. Either every day from a date (`write_days`) or only the agents and days that
closes since a moment touched (`write_touched`, what a refresh after a close does: its cost is
those agents' trades on those days, not every agent's). engine/analytics/daily.py decides
which, under its progress lock."""

from __future__ import annotations

from collections import defaultdict
from dataclasses import dataclass, field
from datetime import UTC, date, datetime, time, timedelta
from decimal import Decimal
from typing import Any

from sqlalchemy import delete, func, select
from sqlalchemy.ext.asyncio import AsyncSession

from engine.analytics.figures import ZERO, DayTotals
from storage.bulk import insert_ignore
from storage.enums import CloseReason, PositionStatus
from storage.models import AgentDailyMetric, Deployment, Position
from storage.models.analytics import DeploymentDailyMetric

# a follower closing by hand (here or in the venue's app) is not the agent's trade
FOLLOWER_CLOSES = frozenset({CloseReason.MANUAL.value, CloseReason.EXTERNAL.value})
AgentDays = dict[int, dict[tuple[str, date], tuple[DayTotals, int]]]


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


async def closed_trades(
    session: AsyncSession,
    since: datetime | None,
    until: datetime | None = None,
    agents: list[int] | None = None,
) -> list[ClosedTrade]:
    """Closed positions from `since` to before `until`, of these agents (None: all)."""
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
        .where(_closed(), Position.closed_at.is_not(None))
    )
    if since is not None:
        query = query.where(Position.closed_at >= since)
    if until is not None:
        query = query.where(Position.closed_at < until)
    if agents is not None:
        query = query.where(Deployment.agent_id.in_(agents))
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


def _closed() -> Any:
    """A closed position, as a filter rather than the way in: SQLite would otherwise read a
    span of closes through the status index (every closed position) instead of closed_at's."""
    return func.coalesce(Position.status, "") == PositionStatus.CLOSED


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


@dataclass
class Rollup:
    """Trades summed per deployment and day, and per agent, mode and day."""

    deployments: dict[tuple[int, date], DayTotals] = field(
        default_factory=lambda: defaultdict(DayTotals)
    )
    who: dict[int, tuple[int, int, str]] = field(default_factory=dict)
    agents: dict[tuple[int, str, date], DayTotals] = field(
        default_factory=lambda: defaultdict(DayTotals)
    )
    manual: dict[tuple[int, str, date], int] = field(default_factory=lambda: defaultdict(int))

    @classmethod
    def of(cls, trades: list[ClosedTrade]) -> Rollup:
        r = cls()
        for t in trades:
            r.deployments[(t.deployment_id, t.day)] += t.totals()
            r.who[t.deployment_id] = (t.user_id, t.agent_id, t.mode)
            key = (t.agent_id, t.mode, t.day)
            if t.by_follower:
                r.manual[key] += 1
            else:
                r.agents[key] += t.totals()
        return r

    def agent_keys(self) -> list[tuple[int, str, date]]:
        return sorted(set(self.agents) | set(self.manual))

    def agent_days(self) -> AgentDays:
        out: AgentDays = defaultdict(dict)
        for agent, mode, day in self.agent_keys():
            out[agent][(mode, day)] = (self.agents.get((agent, mode, day), DayTotals()),
                                       self.manual.get((agent, mode, day), 0))  # fmt: skip
        return out

    async def insert(self, session: AsyncSession) -> None:
        await insert_ignore(
            session,
            DeploymentDailyMetric,
            [
                {
                    "deployment_id": dep,
                    "day": day,
                    "user_id": self.who[dep][0],
                    "agent_id": self.who[dep][1],
                    "mode": self.who[dep][2],
                    **_totals_row(t),
                }
                for (dep, day), t in sorted(self.deployments.items())
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
                    **_totals_row(self.agents.get((agent, mode, day), DayTotals())),
                    "return_pct": self.agents.get((agent, mode, day), DayTotals()).return_on_margin,
                    "manual_closes": self.manual.get((agent, mode, day), 0),
                    "extra": {},
                }
                for agent, mode, day in self.agent_keys()
            ],
        )


def _changed(before: AgentDays, after: AgentDays) -> set[int]:
    """The agents whose days differ (a refresh rewrites days most of which are as they were)."""
    return {a for a in set(before) | set(after) if before.get(a, {}) != after.get(a, {})}


async def stored_agent_days(
    session: AsyncSession, first_day: date, last_day: date | None = None,
    agents: list[int] | None = None,
) -> AgentDays:  # fmt: skip
    """The agent rows from `first_day` (to `last_day`, of `agents`), as a Rollup builds them."""
    m = AgentDailyMetric
    query = select(m.agent_id, m.mode, m.day, m.trades, m.wins, m.losses, m.realized_pnl,
                   m.win_pnl, m.loss_pnl, m.margin, m.fees, m.manual_closes
                   ).where(m.day >= first_day)  # fmt: skip
    if last_day is not None:
        query = query.where(m.day <= last_day)
    if agents is not None:
        query = query.where(m.agent_id.in_(agents))
    out: AgentDays = defaultdict(dict)
    for r in (await session.execute(query)).all():
        totals = DayTotals(r.trades, r.wins, r.losses, r.realized_pnl, r.win_pnl, r.loss_pnl,
                           r.margin, r.fees)  # fmt: skip
        out[r.agent_id][(r.mode, r.day)] = (totals, r.manual_closes)
    return out


async def write_days(session: AsyncSession, since: datetime | None) -> set[int] | None:
    """Replace every daily row from `since`'s day (all rows with None) by a fresh roll-up;
    the agents whose rows changed (None: all of them)."""
    first_day = since.astimezone(UTC).date() if since is not None else None
    start = day_start(first_day) if first_day is not None else None
    rollup = Rollup.of(await closed_trades(session, start))
    before = await stored_agent_days(session, first_day) if first_day is not None else None
    for table in (DeploymentDailyMetric, AgentDailyMetric):
        stmt = delete(table)
        if first_day is not None:
            stmt = stmt.where(table.day >= first_day)
        await session.execute(stmt)
    await rollup.insert(session)
    return None if before is None else _changed(before, rollup.agent_days())


async def write_touched(session: AsyncSession, since: datetime) -> set[int]:
    """Roll up again only the days, of only the agents, that closes from `since` fall on
    (found through the closed_at index): every deployment row and agent row of those agents
    on those days is rebuilt from all their closes of those days, so it is exact whatever
    else those days held. The agents whose rows changed."""
    recent = await session.execute(
        select(Deployment.agent_id, Position.closed_at)
        .join(Deployment, Deployment.id == Position.deployment_id)
        .where(Position.closed_at >= since, _closed())
    )
    agents: set[int] = set()
    days: set[date] = set()
    for agent, closed in recent.all():
        agents.add(agent)
        days.add(closed.astimezone(UTC).date())
    if not agents:
        return set()
    ids, first, last = sorted(agents), min(days), max(days)
    trades = await closed_trades(
        session, day_start(first), day_start(last + timedelta(days=1)), ids
    )
    rollup = Rollup.of(trades)
    before = await stored_agent_days(session, first, last, ids)
    # the deployment rows through their key (deployment, day), the agents' through theirs
    deps = select(Deployment.id).where(Deployment.agent_id.in_(ids)).scalar_subquery()
    m, a = DeploymentDailyMetric, AgentDailyMetric
    await session.execute(delete(m).where(m.deployment_id.in_(deps), m.day.between(first, last)))
    await session.execute(delete(a).where(a.agent_id.in_(ids), a.day.between(first, last)))
    await rollup.insert(session)
    return _changed(before, rollup.agent_days())
