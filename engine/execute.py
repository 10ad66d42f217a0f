"""Execute: one open order per active deployment of the signal's agent, written (pending)
in one statement before any venue is called."""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from decimal import Decimal
from typing import Any, NamedTuple

from sqlalchemy import Text, cast, select
from sqlalchemy.ext.asyncio import AsyncSession

from engine.client_ids import client_order_id
from engine.close import write_close_orders
from engine.events import (
    ApprovalRequested,
    Event,
    OrderFailed,
    PausedSkipped,
    SignalRejected,
)
from engine.levels import RiskLevels, RiskParams
from engine.market_state import market_state
from engine.markets import MarketInfo
from engine.orders import InsertClaim, PendingOrder
from engine.position_policy import ADD, CLOSE, FLIP, JUST_OPEN, SKIP, decide
from engine.sizing import SizeDecision, size_order
from engine.venues.routed import mode_of
from storage.bulk import insert_ignore
from storage.enums import (
    CloseReason,
    DeploymentStatus,
    OrderPurpose,
    OrderStatus,
    PositionPolicy,
)
from storage.models import Agent, Deployment, Order, Signal, User

# an open written and not settled: what the account will hold is not known yet


class DeploymentTerms(NamedTuple):  # one per follower: a NamedTuple is made 4x faster
    id: int
    user_id: int
    account: str
    collateral_usd: Decimal
    leverage: Decimal
    max_leverage: Decimal | None
    manual_approval: bool


def _limit(settings: dict[str, Any], key: str) -> Decimal | None:
    value = (settings or {}).get(key)
    return None if value in (None, "") else Decimal(str(value))


@dataclass(frozen=True, slots=True)
class Part:
    """One part of a big fan-out, written in a transaction of its own: the followers after
    deployment `after` who have no open order for the signal yet (so a part written before
    a crash is not decided again), at most `size` of them; or, for a range laid out for
    parts side by side, every such follower up to `upto`."""

    after: int
    size: int
    upto: int | None = None


async def active_deployments(
    session: AsyncSession, agent_id: int, part: Part | None = None, signal_id: int | None = None
) -> list[DeploymentTerms]:
    stmt = (
        select(
            Deployment.id,
            Deployment.user_id,
            Deployment.account,
            Deployment.collateral_usd,
            Deployment.leverage,
            Deployment.max_leverage,
            Deployment.manual_approval,
            # as text: thousands of followers share a few settings, each parsed once here
            cast(User.settings, Text),
        )
        .join(User, User.id == Deployment.user_id)
        .where(Deployment.agent_id == agent_id, Deployment.status == DeploymentStatus.ACTIVE)
        .order_by(Deployment.id)
    )
    if part is not None:
        assert signal_id is not None
        # OFFSET 0 keeps PostgreSQL from turning this into an anti-join: with this signal's
        # orders (the parts before) unknown to its statistics, it read them all once and
        # compared each follower with every one (6-7 s a part at 100,000 followers);
        # a subplan per follower is one probe of the unique (signal, deployment) index
        served = (
            select(Order.id)
            .where(
                Order.signal_id == signal_id,
                Order.deployment_id == Deployment.id,
                Order.purpose == OrderPurpose.OPEN,
            )
            .offset(0)
        )
        stmt = stmt.where(Deployment.id > part.after, ~served.exists())
        # a range laid out in advance is written whole: a follower resumed since has made
        # it longer, and a limit would drop its last (engine/fanout_parts.py)
        if part.upto is None:
            stmt = stmt.limit(part.size)
        else:
            stmt = stmt.where(Deployment.id <= part.upto)
    rows = await session.execute(stmt)
    limits: dict[str | None, tuple[Decimal | None, Decimal | None]] = {}
    out = []
    for did, uid, account, collateral, lev, dep_max, manual, text in rows:
        # the user's personal limits (from /settings) cap every deployment they run
        known = limits.get(text)
        if known is None:
            settings = json.loads(text) if text else None
            known = limits[text] = (
                _limit(settings, "max_leverage"),
                _limit(settings, "max_collateral_usd"),
            )
        user_max, max_collateral = known
        caps = [c for c in (dep_max, user_max) if c is not None]
        if max_collateral is not None:
            collateral = min(collateral, max_collateral)
        out.append(
            DeploymentTerms(did, uid, account, collateral, lev, min(caps) if caps else None, manual)
        )
    return out


async def paused_skipped(session: AsyncSession, agent: Agent, signal: Signal) -> list[Event]:
    """A 'skipped: paused' alert per paused deployment whose user switched it on."""
    rows = await session.execute(
        select(Deployment.id, Deployment.user_id, User.settings)
        .join(User, User.id == Deployment.user_id)
        .where(Deployment.agent_id == agent.id, Deployment.status == DeploymentStatus.PAUSED)
        .order_by(Deployment.id)
    )
    return [
        PausedSkipped(uid, signal.id, did, agent.name, signal.market, signal.side)
        for did, uid, settings in rows
        if ((settings or {}).get("alerts") or {}).get(PausedSkipped.kind)
    ]


@dataclass(slots=True)
class OpenOrders:
    """What `write_open_orders` wrote besides the opens: alerts for orders that will not be
    sent now, and the signals of close orders the position policy wrote (sent first)."""

    events: list[Event] = field(default_factory=list)
    close_signal_ids: list[int] = field(default_factory=list)
    # with an InsertClaim: the opens written claimed, and how many rows were marked so
    claimed: list[PendingOrder] = field(default_factory=list)
    marked: int = 0
    # written in parts (`Part`): the last follower of this one, when more may follow
    next_after: int | None = None


async def write_open_orders(
    session: AsyncSession,
    signal: Signal,
    agent: Agent,
    venue: str,
    market: MarketInfo,
    price: Decimal,
    now: datetime,
    approval_ttl: timedelta,
    namespace: str,
    claim: InsertClaim | None = None,
    part: Part | None = None,
) -> OpenOrders:
    """Write the signal's open orders, each decided by the agent's position policy against
    what the deployment's account holds in the market (engine/position_policy.py), in the
    caller's transaction: closes of held positions are written before the opens, so they
    are claimed (and sent, one at a time per account and market) first. With `claim`, the
    first pending opens are written claimed (engine/orders.py, InsertClaim)."""
    deployments = await active_deployments(session, agent.id, part, signal.id)
    first = part is None or part.after == 0
    paused_skips = await paused_skipped(session, agent, signal) if first else []
    if not deployments:
        return OpenOrders(events=paused_skips)
    ids = None if part is None else (deployments[0].id, deployments[-1].id)
    held, busy = await market_state(session, signal, venue, agent.id, ids)
    # nothing held, nothing in flight: an open, whatever the policy (most followers)
    decisions = {
        d.id: decide(
            agent.position_policy or PositionPolicy.IGNORE,
            signal.side,
            d.id,
            d.collateral_usd,
            agent.add_cap_multiple,
            held[d.account],
            d.id in busy,
        )
        if d.account in held or d.id in busy
        else JUST_OPEN
        for d in deployments
    }
    to_close = {
        pid: CloseReason.OPPOSITE_SIGNAL
        for x in decisions.values()
        if x.action in (CLOSE, FLIP)
        for pid in x.position_ids
    }
    out = OpenOrders(events=paused_skips)
    if to_close:
        written = await write_close_orders(session, to_close, now, namespace)
        out.close_signal_ids = written.signal_ids
        if claim is not None:  # the opens go after these closes: none filled before
            claim.fill_rows = None
    rows, events = [], out.events
    # thousands of deployments share a few (collateral, leverage, cap) terms: size each once
    sizes: dict[tuple[Decimal, Decimal, Decimal | None], SizeDecision] = {}
    # the signal's and agent's columns, read once (an ORM attribute costs ~0.2 us a read)
    sid, coin, side = signal.id, signal.market, signal.side
    isolated, slippage = bool(agent.isolated_margin), agent.max_slippage_bps
    open_ = OrderPurpose.OPEN
    for d in deployments:
        terms = (d.collateral_usd, d.leverage, d.max_leverage)
        sized = sizes.get(terms)
        if sized is None:
            sized = sizes[terms] = size_order(
                d.collateral_usd, price, market, d.leverage, agent.leverage, d.max_leverage
            )
        decision = decisions[d.id]
        status = (
            OrderStatus.SKIPPED
            if decision.action in (SKIP, CLOSE)
            else OrderStatus.REJECTED
            if sized.rejected
            else OrderStatus.AWAITING_APPROVAL
            if d.manual_approval
            else OrderStatus.WAITING
            if decision.action == FLIP
            else OrderStatus.PENDING
        )
        if decision.action == SKIP:
            events.append(SignalRejected(d.user_id, sid, agent.name, coin, side, decision.reason))
        acted_on = decision.position_ids[0] if decision.position_ids else None
        rows.append(
            {
                "signal_id": sid,
                "deployment_id": d.id,
                "purpose": open_,
                "client_order_id": client_order_id(namespace, sid, d.id, open_),
                "venue": venue,
                "account": d.account,
                "market": coin,
                "side": side,
                "reduce_only": False,
                "isolated_margin": isolated,
                "max_slippage_bps": slippage,
                "size": sized.size,
                "leverage": sized.leverage,
                "collateral_usd": d.collateral_usd,
                "reference_price": price,
                "status": status,
                "error": decision.reason if status == OrderStatus.SKIPPED else sized.rejected,
                "expires_at": now + approval_ttl
                if status == OrderStatus.AWAITING_APPROVAL
                else None,
                "adds_to_position_id": acted_on if decision.action == ADD else None,
                "after_position_id": acted_on if decision.action == FLIP else None,
                "created_at": now,
                "updated_at": now,
            }
        )
    if claim is not None:
        claim.mark(rows)
        out.marked = sum(r["settled_by"] is not None for r in rows)
    written = await insert_ignore(session, Order, rows, returning="client_order_id")
    if claim is not None and out.marked:
        out.claimed = await claim.claimed(session, rows, [signal.id], written)
    if any(r["status"] in (OrderStatus.REJECTED, OrderStatus.AWAITING_APPROVAL) for r in rows):
        by_dep = {d.id: d for d in deployments}
        unsent = await session.execute(
            select(
                Order.id,
                Order.deployment_id,
                Order.status,
                Order.error,
                Order.leverage,
                Order.collateral_usd,
                Order.size,
                Order.expires_at,
            ).where(
                Order.signal_id == signal.id,
                Order.purpose == OrderPurpose.OPEN,
                Order.status.in_([OrderStatus.REJECTED, OrderStatus.AWAITING_APPROVAL]),
                # never claimed: a refusal of the venue, written with the order when it
                # filled before its INSERT (engine/immediate.py), is the recording's to tell
                Order.claimed_by.is_(None),
            )
        )
        levels = RiskLevels.initial(
            signal.side,
            price,
            RiskParams(
                agent.stop_loss_pct,
                agent.take_profit_pct,
                agent.trailing_activation_pct,
                agent.trailing_distance_pct,
            ),
        )
        for oid, did, status, error, lev, collateral, size, expires in unsent:
            uid = by_dep[did].user_id if did in by_dep else None
            if uid is None:
                continue
            if status == OrderStatus.REJECTED:
                events.append(
                    OrderFailed(
                        uid,
                        oid,
                        agent.name,
                        signal.market,
                        signal.side,
                        OrderPurpose.OPEN,
                        error or "rejected",
                    )
                )
            else:
                # what the user decides on: levels at the price the order was sized at
                events.append(
                    ApprovalRequested(
                        uid,
                        oid,
                        agent.name,
                        signal.market,
                        signal.side,
                        lev,
                        collateral,
                        mode_of(by_dep[did].account),
                        price,
                        size,
                        levels.stop,
                        levels.take_profit,
                        expires.isoformat() if expires is not None else "",
                    )
                )
    if part is not None and len(deployments) == part.size:
        out.next_after = deployments[-1].id
    return out
