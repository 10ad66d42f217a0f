"""One signal: choose its venue (the decision and its reasons stored once), then write one
open order per active deployment, all in the caller's transaction. Sending is the caller's,
after commit: no venue call happens here."""

from __future__ import annotations

import logging
from collections.abc import Mapping
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from decimal import Decimal

from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from engine.events import Event, SignalRejected
from engine.execute import active_deployments, write_open_orders
from engine.notify import write_outbox
from engine.orders import InsertClaim, PendingOrder
from engine.prices import PriceBook
from engine.route import decide_venue
from engine.route_cost import route_by_cost
from engine.venues.base import Venue
from storage.bulk import insert_ignore
from storage.enums import SignalStatus
from storage.models import Agent, RoutingDecision, Signal

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
) -> Routed:
    sig = await s.get_one(Signal, signal_id)
    agent = await s.get_one(Agent, sig.agent_id)
    events: list[Event] = []
    decision = (
        await s.execute(select(RoutingDecision).where(RoutingDecision.signal_id == sig.id))
    ).scalar_one_or_none()
    if decision is None:
        listings = {n: v.markets() for n, v in venues.items()}
        d = decide_venue(
            agent.venue,
            agent.venue_preference,
            sig.market,
            listings,
            signal_price(sig, prices) is not None,
        )
        if agent.venue == "MULTI":  # the cheapest eligible venue for this size
            d = await route_by_cost(s, agent, sig.market, venues, d)
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
        if price is not None:
            more = await write_open_orders(
                s,
                sig,
                agent,
                venue,
                venues[venue].markets()[sig.market],
                price,
                now,
                approval_ttl,
                namespace,
                claim,
            )
            await write_outbox(s, more.events)
            routed.events += more.events
            routed.close_signal_ids = more.close_signal_ids
            routed.claimed, routed.marked = more.claimed, more.marked
        sig.status = SignalStatus.EXECUTED
    return routed


async def unfinished_signals(sessions: async_sessionmaker[AsyncSession]) -> list[int]:
    """Signals a crash left before their orders were written."""
    async with sessions() as s:
        rows = await s.execute(
            select(Signal.id)
            .where(Signal.status.in_([SignalStatus.NEW, SignalStatus.ROUTED]))
            .order_by(Signal.id)
        )
        return list(rows.scalars().all())
