"""One signal: choose its venue (the decision and its reasons stored once), then write one
open order per active deployment, all in the caller's transaction. Sending is the caller's,
after commit: no venue call happens here."""

from __future__ import annotations

import logging
from collections.abc import Mapping
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from decimal import Decimal
from typing import Any

from sqlalchemy import and_, or_, select, text
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from engine import limit_orders
from engine.classify.call_levels import levels_of
from engine.classify.collisions import resolve
from engine.events import Event, LimitEntryPlaced, SignalRejected
from engine.execute import Part, active_deployments, write_open_orders
from engine.notify import write_outbox
from engine.orders import InsertClaim, PendingOrder
from engine.prices import PriceBook
from engine.route import RouteDecision, decide_venue
from engine.route_cost import route_by_cost
from engine.venues.base import Venue
from engine.venues.paper import PaperVenue
from storage.bulk import insert_ignore
from storage.enums import OrderPurpose, SignalStatus
from storage.models import Agent, ClassificationRow, Deployment, Order, RoutingDecision, Signal

log = logging.getLogger(__name__)


@dataclass(frozen=True, slots=True)
class RoutedSignal:
    signal_id: int
    agent: str
    market: str
    side: str
    venue: str | None
    reason: str


@dataclass(slots=True)
class Routed:
    outcome: RoutedSignal
    events: list[Event] = field(default_factory=list)
    # signals of close orders the position policy wrote: sent before this signal's opens
    close_signal_ids: list[int] = field(default_factory=list)
    # opens written already claimed (`claim`), and how many rows were marked so
    claimed: list[PendingOrder] = field(default_factory=list)
    marked: int = 0
    # written in parts: the last follower written, when more may follow (`write_next_part`)
    next_after: int | None = None


async def classification_details(s: AsyncSession, post_id: int | None) -> dict[str, Any]:
    if post_id is None:
        return {}
    details = (
        await s.execute(
            select(ClassificationRow.details).where(ClassificationRow.post_id == post_id)
        )
    ).scalar_one_or_none()
    return dict(details or {})


def signal_price(sig: Signal, prices: PriceBook) -> Decimal | None:
    # signals stored before they kept their price (migration 0002) use the live one
    if sig.reference_price is not None:
        return sig.reference_price
    return prices.price(sig.market)


async def route_and_write_orders(
    s: AsyncSession,
    signal_id: int,
    venues: Mapping[str, Venue],
    prices: PriceBook,
    now: datetime,
    approval_ttl: timedelta,
    namespace: str,
    claim: InsertClaim | None = None,
    part_size: int | None = None,
) -> Routed:
    """`part_size`: on a venue that fills at once, a fan-out to more followers than this is
    written in parts, this transaction the first (`write_next_part` the others): one
    transaction of them all held SQLite's one write lock for seconds, and a stop's close
    with it. A limit entry is written whole (its plan and its notices cover every order)."""
    sig = await s.get_one(Signal, signal_id)
    agent = await s.get_one(Agent, sig.agent_id)
    details = await classification_details(s, sig.post_id)
    events: list[Event] = []
    decision = (
        await s.execute(select(RoutingDecision).where(RoutingDecision.signal_id == sig.id))
    ).scalar_one_or_none()
    if decision is None:
        # a name that is a different asset per venue ("SPX"): only the venues whose asset the
        # call means may trade it; a MULTI agent's call with no context is not traded
        meant = resolve(sig.market, details, agent.venue)
        eligible = {n: v for n, v in venues.items() if meant.venues is None or n in meant.venues}
        listings = {n: v.markets() for n, v in eligible.items()}
        d = decide_venue(
            agent.venue,
            agent.venue_preference,
            sig.market,
            listings,
            signal_price(sig, prices) is not None,
        )
        if meant.ambiguous is not None:
            d = RouteDecision(
                None, "ambiguous_market", [{"market": sig.market, "why": meant.ambiguous}]
            )
        elif agent.venue == "MULTI":  # the cheapest eligible venue for this size
            d = await route_by_cost(s, agent, sig.market, eligible, d, sig.side)
        await insert_ignore(
            s,
            RoutingDecision,
            [
                {
                    "signal_id": sig.id,
                    "venue": d.venue,
                    "candidates": d.candidates,
                    "reason": d.reason,
                    "created_at": now,
                }
            ],
        )
        venue, reason = d.venue, d.reason
        log.info("signal %s %s %s -> %s (%s)", sig.id, sig.side, sig.market, venue, reason)
        if venue is None:
            sig.status = SignalStatus.REJECTED
            events = [
                SignalRejected(dep.user_id, sig.id, agent.name, sig.market, sig.side, reason)
                for dep in await active_deployments(s, agent.id)
            ]
            await write_outbox(s, events)
        else:
            sig.status = SignalStatus.ROUTED
    else:
        venue, reason = decision.venue, decision.reason
    routed = Routed(RoutedSignal(sig.id, agent.name, sig.market, sig.side, venue, reason), events)
    if sig.status == SignalStatus.ROUTED and venue is not None:
        price = signal_price(sig, prices)  # routed only when there was one
        plan = None
        if price is not None:
            ttl = timedelta(hours=agent.limit_ttl_hours or limit_orders.DEFAULT_TTL_HOURS)
            levels = levels_of(details)
            plan = limit_orders.plan_entry(
                sig.side, price, levels, agent.max_slippage_bps, venue, now, ttl
            )
        if plan is not None and plan.kind == limit_orders.SKIP:
            skipped = [
                SignalRejected(dep.user_id, sig.id, agent.name, sig.market, sig.side, plan.reason)
                for dep in await active_deployments(s, agent.id)
            ]
            await write_outbox(s, skipped)
            routed.events += skipped
            sig.status = SignalStatus.REJECTED
            return routed
        if price is not None:
            resting = plan is not None and plan.kind == limit_orders.RESTING
            if plan is not None and claim is not None:
                claim.fill_rows = None  # a limit entry: never filled at market before its plan
            more = await write_open_orders(
                s,
                sig,
                agent,
                venue,
                venues[venue].markets()[sig.market],
                # a resting entry is sized at its limit: the user's limits hold at its fill
                plan.limit_price if resting and plan.limit_price else price,
                now,
                approval_ttl,
                namespace,
                claim,
                _first_part(part_size, plan, venues[venue]),
            )
            if plan is not None:
                await limit_orders.apply_plan(s, sig.id, plan)
                # the opens written claimed go out from these values, not from a re-read
                more.claimed = [
                    o._replace(limit_price=plan.limit_price, limit_expires_at=plan.expires_at)
                    if o.signal_id == sig.id and o.purpose == OrderPurpose.OPEN
                    else o
                    for o in more.claimed
                ]
                more.events += await _resting_told(s, sig, agent, plan) if resting else []
            await write_outbox(s, more.events)
            routed.events += more.events
            routed.close_signal_ids = more.close_signal_ids
            routed.claimed, routed.marked = more.claimed, more.marked
            routed.next_after = more.next_after
        if routed.next_after is None:
            sig.status = SignalStatus.EXECUTED
    return routed


def _first_part(
    part_size: int | None, plan: limit_orders.EntryPlan | None, venue: Venue
) -> Part | None:
    """Parts only on the paper venue, which fills in the writing transaction: a live venue's
    fan-out is written whole, so that every replica's sweep may share out its sending."""
    if part_size is None or plan is not None or not isinstance(venue, PaperVenue):
        return None
    return Part(0, part_size)


async def write_next_part(
    s: AsyncSession,
    signal_id: int,
    venues: Mapping[str, Venue],
    prices: PriceBook,
    now: datetime,
    approval_ttl: timedelta,
    namespace: str,
    claim: InsertClaim,
    part: Part,
) -> Routed:
    """The next part of a fan-out `route_and_write_orders` began (the followers after
    `part.after`), in the caller's transaction; the signal is executed once the last is
    written (never by a bounded part: parts written side by side may commit in any order,
    and the unbounded one after them ends the fan-out). A signal no longer routed (executed
    by another replica) writes nothing."""
    sig = await s.get_one(Signal, signal_id)
    agent = await s.get_one(Agent, sig.agent_id)
    decision = (
        await s.execute(select(RoutingDecision).where(RoutingDecision.signal_id == sig.id))
    ).scalar_one()
    routed = Routed(
        RoutedSignal(sig.id, agent.name, sig.market, sig.side, decision.venue, decision.reason)
    )
    price = signal_price(sig, prices)
    if sig.status != SignalStatus.ROUTED or decision.venue is None or price is None:
        return routed
    venue = decision.venue
    more = await write_open_orders(
        s, sig, agent, venue, venues[venue].markets()[sig.market], price, now, approval_ttl,
        namespace, claim, part,
    )  # fmt: skip
    await write_outbox(s, more.events)
    routed.events, routed.close_signal_ids = more.events, more.close_signal_ids
    routed.claimed, routed.marked, routed.next_after = more.claimed, more.marked, more.next_after
    if part.upto is not None:
        routed.next_after = None  # the caller knows the parts; the last unbounded one ends it
    elif routed.next_after is None:
        sig.status = SignalStatus.EXECUTED
    return routed


async def _resting_told(
    s: AsyncSession, sig: Signal, agent: Agent, plan: limit_orders.EntryPlan
) -> list[Event]:
    """'Waits for the call's entry at X until Y' for each follower whose open was written."""
    assert plan.limit_price is not None and plan.expires_at is not None
    users = await s.execute(
        select(Deployment.user_id)
        .join(Order, Order.deployment_id == Deployment.id)
        .where(
            Order.signal_id == sig.id,
            Order.purpose == OrderPurpose.OPEN,
            Order.limit_expires_at.is_not(None),
        )
        .order_by(Order.id)
    )
    return [
        LimitEntryPlaced(
            uid,
            sig.id,
            agent.name,
            sig.market,
            sig.side,
            plan.limit_price,
            plan.expires_at.isoformat(),
        )
        for uid in users.scalars().all()
    ]


async def stalled_signals(
    sessions: async_sessionmaker[AsyncSession], before: datetime
) -> list[int]:
    """Unfinished signals nobody is writing now: made (a new one) or routed before `before`,
    with no open order written since (a fan-out being written, here or by another replica,
    writes a part every second or so). A part that failed, a replica that died mid-way, or
    one that died between making a signal and routing it, leaves one."""
    routed_before = select(RoutingDecision.id).where(
        RoutingDecision.signal_id == Signal.id, RoutingDecision.created_at < before
    )
    recent = select(Order.id).where(
        Order.signal_id == Signal.id,
        Order.purpose == OrderPurpose.OPEN,
        Order.created_at >= before,
    )
    async with sessions() as s:
        rows = await s.execute(
            select(Signal.id)
            # as the partial index ix_signals_unfinished says it, so that it is used
            .where(text("signals.status IN ('new', 'routed')"))
            .where(
                or_(
                    and_(Signal.status == SignalStatus.NEW, Signal.created_at < before),
                    and_(Signal.status == SignalStatus.ROUTED, routed_before.exists()),
                ),
                ~recent.exists(),
            )
            .order_by(Signal.id)
        )
        return list(rows.scalars().all())


async def unfinished_signals(sessions: async_sessionmaker[AsyncSession]) -> list[int]:
    """Signals a crash left before their orders were written."""
    async with sessions() as s:
        rows = await s.execute(
            select(Signal.id)
            .where(Signal.status.in_([SignalStatus.NEW, SignalStatus.ROUTED]))
            .order_by(Signal.id)
        )
        return list(rows.scalars().all())
