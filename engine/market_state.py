"""What a fan-out's followers hold in the signal's market, for the position policy: their
accounts' open positions there, and which of them have an open order of another signal not
settled yet.

A fan-out written in parts asks this once per part, while the parts before it write the
very positions and orders it reads, which the planner's statistics have not seen (or were
taken when the tables were empty). Both statements are shaped so that every follower is one
probe of an index whatever the statistics say: planned as ordinary joins, PostgreSQL walked
every position of the market for each follower (a part's read grew from 1.3 s to 10 s over
a fan-out of 50,000), and SQLite drove from the status index through every open position
(a part's read grew from 1 ms to 80 ms over 100,000)."""

from __future__ import annotations

from typing import Any

from sqlalchemy import literal, select, text, true
from sqlalchemy.ext.asyncio import AsyncSession

from engine.position_policy import Held
from storage.enums import DeploymentStatus, OrderPurpose, OrderStatus, PositionStatus
from storage.models import Deployment, Order, Position, Signal

IN_FLIGHT_STATUSES = (OrderStatus.PENDING, OrderStatus.AWAITING_APPROVAL, OrderStatus.WAITING)

_HELD_COLUMNS = (
    Position.account,
    Position.id,
    Position.deployment_id,
    Position.side,
    Position.size,
    Position.entry_price,
    Position.leverage,
)

# SQLite: CROSS JOIN is its documented way to fix the join order (the followers outside, a
# probe of ix_positions_open_account_market per account inside); SQLAlchemy cannot render
# it with a join condition, hence the text. 'open' is written in: the index is partial.
_SQLITE_HELD = text(
    "SELECT p.account, p.id, p.deployment_id, p.side, p.size, p.entry_price, p.leverage"
    " FROM (SELECT DISTINCT account FROM deployments WHERE agent_id = :agent_id"
    " AND status = :active AND id BETWEEN :first AND :last) AS followers"
    " CROSS JOIN positions AS p"
    " WHERE p.account = followers.account AND p.market = :market AND p.venue = :venue"
    " AND p.status = 'open' ORDER BY p.id"
).columns(*_HELD_COLUMNS)

EVERY_ID = (0, 2**63 - 1)


def followers_of(agent_id: int, ids: tuple[int, int] | None = None) -> Any:
    """The accounts of the agent's active followers (of a part: deployment ids in `ids`,
    first to last), each once, as a subquery: one bind parameter whatever the number of
    followers (PostgreSQL refuses a statement with more than 32,767)."""
    followers = select(Deployment.account).where(
        Deployment.agent_id == agent_id, Deployment.status == DeploymentStatus.ACTIVE
    )
    if ids is not None:
        followers = followers.where(Deployment.id.between(*ids))
    return followers.distinct().subquery("followers")


def _held_on_postgresql(followers: Any, venue: str, market: str) -> Any:
    """A LATERAL look-up per account. OFFSET 0 keeps PostgreSQL from pulling it up into a
    plain join; 'open' is inline, not a parameter, since a prepared statement's generic plan
    (where the status is $n) can never use the partial index."""
    is_open = Position.status == literal(PositionStatus.OPEN.value, literal_execute=True)
    per_account = (
        select(*_HELD_COLUMNS)
        .where(
            Position.account == followers.c.account,
            Position.market == market,
            Position.venue == venue,
            is_open,
        )
        .offset(0)
        .lateral("held")
    )
    return (
        select(*per_account.c)
        .select_from(followers)
        .join(per_account, true())
        .order_by(per_account.c.id)
    )


async def market_state(
    session: AsyncSession,
    signal: Signal,
    venue: str,
    agent_id: int,
    ids: tuple[int, int] | None = None,
) -> tuple[dict[str, list[Held]], set[int]]:
    """The open positions in the signal's market per account of the agent's followers, and
    the deployments with an order in that market not settled yet (another signal's open,
    written and not filled). `ids`: only the followers whose deployment ids are in this
    range (a part of a fan-out), else every follower."""
    followers = followers_of(agent_id, ids)
    if session.get_bind().dialect.name == "postgresql":
        rows = await session.execute(_held_on_postgresql(followers, venue, signal.market))
    else:
        first, last = ids or EVERY_ID
        rows = await session.execute(
            _SQLITE_HELD,
            {"agent_id": agent_id, "active": DeploymentStatus.ACTIVE.value, "first": first,
             "last": last, "market": signal.market, "venue": venue},
        )  # fmt: skip
    held: dict[str, list[Held]] = {}
    for account, *rest in rows:
        held.setdefault(account, []).append(Held(*rest))
    busy = await session.execute(
        select(Order.deployment_id)
        .select_from(followers)
        .join(Order, Order.account == followers.c.account)
        .where(
            Order.purpose == OrderPurpose.OPEN,
            Order.venue == venue,
            Order.market == signal.market,
            Order.signal_id != signal.id,
            Order.status.in_(IN_FLIGHT_STATUSES),
        )
    )
    return held, set(busy.scalars().all())
