"""The engine: the path of one post, and of one price update, through every stage.

Each stage writes what it decided before the next acts, so a crash anywhere resumes (`start`)
without losing or repeating a trade.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from decimal import Decimal
from typing import Any

from sqlalchemy import select, tuple_
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from engine import approvals, loss_limits, reconcile
from engine.checkpoint import checkpoint, save_trailing_starts
from engine.classify.base import Classification, Classifier
from engine.close import write_close_orders
from engine.events import Event, SignalRejected, StopMoved
from engine.execute import active_deployments, write_open_orders
from engine.fills import record
from engine.ingest import IncomingPost, source_id, store_post
from engine.levels import RiskLevels
from engine.monitor import PositionIndex
from engine.notify import write_outbox
from engine.orders import PendingOrder, load_pending, submit
from engine.prices import PriceBook, PriceTick
from engine.route import decide_venue
from engine.signals import classify_post, make_signals
from engine.venues.base import Venue
from storage.bulk import insert_ignore
from storage.enums import OrderPurpose, OrderStatus, PositionStatus, SignalStatus
from storage.models import Agent, Order, Position, RoutingDecision, Signal
from storage.types import utcnow

log = logging.getLogger(__name__)


@dataclass(frozen=True, slots=True)
class EngineConfig:
    order_concurrency: int = 64
    approval_ttl: timedelta = timedelta(minutes=5)
    # an open order still unsent after this is stale: the call it followed is old news
    pending_open_ttl: timedelta = timedelta(minutes=10)


@dataclass(frozen=True, slots=True)
class _CloseRetry:
    market: str
    reason: str
    attempts: int
    not_before: datetime


@dataclass(slots=True)
class SignalOutcome:
    signal_id: int
    agent: str
    market: str
    side: str
    venue: str | None
    reason: str


@dataclass(slots=True)
class PostOutcome:
    post_id: int
    classification: Classification
    signals: list[SignalOutcome] = field(default_factory=list)


class Engine:
    def __init__(
        self,
        sessions: async_sessionmaker[AsyncSession],
        venues: Mapping[str, Venue],
        prices: PriceBook,
        classifier: Classifier,
        config: EngineConfig | None = None,
        clock: Callable[[], datetime] = utcnow,
    ) -> None:
        self.sessions = sessions
        self.venues = dict(venues)
        self.prices = prices
        self.classifier = classifier
        self.config = config or EngineConfig()
        self.clock = clock
        self.index = PositionIndex()
        self.listeners: list[Callable[[Event], Any]] = []
        # positions whose close the venue refused: retried on their market's ticks
        self._close_retries: dict[int, _CloseRetry] = {}
        # one writer at a time inside this process; other processes coordinate through the
        # database's unique keys
        self._lock = asyncio.Lock()

    # -- start / resume ------------------------------------------------------------------

    async def start(self) -> None:
        """Load open positions into the monitor and finish whatever a crash interrupted."""
        rows = await self._watch()
        books: dict[str, list[tuple[str, str, str, Decimal, Decimal]]] = {}
        for p in rows:
            books.setdefault(p.venue, []).append(
                (p.account, p.market, p.side, p.size, p.entry_price)
            )
        for name, positions in books.items():
            restore = getattr(self.venues.get(name), "restore", None)
            if restore is not None:  # venues that keep no state of their own (paper)
                restore(positions)
        async with self._lock:
            await self._resume_signals()
        await self.resume_pending()

    async def _watch(self) -> list[Position]:
        """Put every open position (as stored, trailing state included) under the monitor."""
        async with self.sessions() as s:
            rows = list(
                (await s.execute(select(Position).where(Position.status == PositionStatus.OPEN)))
                .scalars()
                .all()
            )
        for p in rows:
            self.index.add(
                p.id,
                p.market,
                RiskLevels(
                    p.side,
                    p.entry_price,
                    p.stop_price,
                    p.take_profit_price,
                    p.trailing_activation_price,
                    p.trailing_distance_pct,
                    p.peak_price,
                    p.trailing_active,
                ),
            )
        return rows

    async def resume_pending(self) -> None:
        """Finish orders whose outcome we never learned (a crash, a venue error, no price
        yet): each is looked up at the venue first and adopted if it filled."""
        async with self._lock:
            cutoff = self.clock() - self.config.pending_open_ttl
            async with self.sessions() as s:
                pending = await load_pending(s)
                stale = set(
                    (
                        await s.execute(
                            select(Order.id).where(
                                Order.status == OrderStatus.PENDING,
                                Order.purpose == OrderPurpose.OPEN,
                                Order.created_at < cutoff,
                            )
                        )
                    )
                    .scalars()
                    .all()
                )
            # a stale open is adopted if the venue filled it, else expires (never sent late);
            # closes are always retried: a position must not be left unmanaged
            await self._send([o for o in pending if o.id in stale], look_up_first=True, place=False)
            await self._send([o for o in pending if o.id not in stale], look_up_first=True)

    async def _resume_signals(self) -> None:
        async with self.sessions() as s:
            ids = (
                (
                    await s.execute(
                        select(Signal.id).where(
                            Signal.status.in_([SignalStatus.NEW, SignalStatus.ROUTED])
                        )
                    )
                )
                .scalars()
                .all()
            )
        for sid in ids:
            await self._route_and_execute(sid)

    # -- posts ---------------------------------------------------------------------------

    async def ingest(self, post: IncomingPost) -> PostOutcome:
        async with self._lock:
            async with self.sessions() as s, s.begin():
                post_id = await store_post(s, post)
                src = await source_id(s, post.source_kind, post.source_handle)
                c = await classify_post(s, post_id, post.text, self.classifier, post.classification)
                price = self.prices.price(c.market) if c.market else None
                signals = await make_signals(s, post_id, src, post.posted_at, c, price)
            outcome = PostOutcome(post_id, c)
            for sig in signals:
                outcome.signals.append(await self._route_and_execute(sig.id))
            return outcome

    async def _route_and_execute(self, signal_id: int) -> SignalOutcome:
        now = self.clock()
        events: list[Event] = []
        async with self.sessions() as s, s.begin():
            sig = await s.get_one(Signal, signal_id)
            agent = await s.get_one(Agent, sig.agent_id)
            decision = (
                await s.execute(select(RoutingDecision).where(RoutingDecision.signal_id == sig.id))
            ).scalar_one_or_none()
            if decision is None:
                listings = {n: v.markets() for n, v in self.venues.items()}
                d = decide_venue(
                    agent.venue,
                    agent.venue_preference,
                    sig.market,
                    listings,
                    self._signal_price(sig) is not None,
                )
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
                        SignalRejected(
                            dep.user_id, sig.id, agent.name, sig.market, sig.side, reason
                        )
                        for dep in await active_deployments(s, agent.id)
                    ]
                    await write_outbox(s, events)
                else:
                    sig.status = SignalStatus.ROUTED
            else:
                venue, reason = decision.venue, decision.reason
            result = SignalOutcome(sig.id, agent.name, sig.market, sig.side, venue, reason)
            if sig.status == SignalStatus.ROUTED and venue is not None:
                venue_obj = self.venues[venue]
                price = self._signal_price(sig)  # routed only when there was one
                if price is not None:
                    more = await write_open_orders(
                        s,
                        sig,
                        agent,
                        venue,
                        venue_obj.markets()[sig.market],
                        price,
                        now,
                        self.config.approval_ttl,
                    )
                    await write_outbox(s, more)
                    events += more
                sig.status = SignalStatus.EXECUTED
        self._emit(events)
        async with self.sessions() as s:
            pending = await load_pending(
                s, Order.signal_id == signal_id, Order.purpose == OrderPurpose.OPEN
            )
        await self._send(pending, look_up_first=False)
        return result

    def _signal_price(self, sig: Signal) -> Decimal | None:
        # signals stored before they kept their price (migration 0002) use the live one
        if sig.reference_price is not None:
            return sig.reference_price
        return self.prices.price(sig.market)

    # -- venue round trip ----------------------------------------------------------------

    async def _send(
        self,
        pending: list[PendingOrder],
        look_up_first: bool,
        place: bool = True,
        venues: Mapping[str, Venue] | None = None,
    ) -> None:
        if not pending:
            return
        outcomes = await submit(
            pending,
            venues or self.venues,
            self.config.order_concurrency,
            look_up_first,
            place=place,
        )
        async with self.sessions() as s, s.begin():
            done = await record(s, outcomes, self.clock())
            if done.closed:
                done.events += await loss_limits.enforce(s, done.closed, self.clock())
            await write_outbox(s, done.events)
        for pid, market, levels in done.opened:
            self.index.add(pid, market, levels)
        for pid in done.closed:
            self.index.remove(pid)
        for pid in done.closed:
            self._close_retries.pop(pid, None)
        if done.refused_closes:
            await self._schedule_close_retries(done.refused_closes)
        self._emit(done.events)

    async def _schedule_close_retries(self, refused: list[tuple[int, int, str]]) -> None:
        """The venue refused these closes: the positions are still open and still due to
        close. The next tick of their market retries at once, later ones back off."""
        reasons = {(sig, dep): reason for sig, dep, reason in refused}
        async with self.sessions() as s:
            rows = (
                await s.execute(
                    select(
                        Position.id, Position.market, Position.signal_id, Position.deployment_id
                    ).where(
                        Position.status == PositionStatus.OPEN,
                        tuple_(Position.signal_id, Position.deployment_id).in_(list(reasons)),
                    )
                )
            ).all()
        now = self.clock()
        for pid, market, sig, dep in rows:
            prev = self._close_retries.get(pid)
            attempts = prev.attempts + 1 if prev else 1
            delay = timedelta(seconds=0 if attempts == 1 else min(300, 2 ** (attempts - 1)))
            self._close_retries[pid] = _CloseRetry(
                market, reasons[(sig, dep)], attempts, now + delay
            )

    # -- prices and closes ---------------------------------------------------------------

    async def on_price(self, tick: PriceTick) -> int:
        """Mark the market; close what crossed a level. Returns the number closed."""
        self.prices.update(tick)
        reasons = {t.position_id: t.reason for t in self.index.on_price(tick.market, tick.price)}
        if self._close_retries:
            now = self.clock()
            for pid, r in list(self._close_retries.items()):
                if r.market == tick.market and r.not_before <= now:
                    reasons.setdefault(pid, r.reason)
        if reasons:
            await self.close_positions(reasons)
        if self.index.activated:
            # rare next to ticks, and costly to lose in a crash: save trailing starts now;
            # best effort, after the closes (the checkpoint saves them too)
            started = list(self.index.activated)
            self.index.activated.clear()
            try:
                await self._save_trailing(started)
            except Exception:
                log.exception(
                    "saving %d trailing starts failed; the checkpoint retries", len(started)
                )
        return len(reasons)

    async def close_positions(self, reasons: Mapping[int, str]) -> None:
        async with self._lock:
            async with self.sessions() as s, s.begin():
                signal_ids = await write_close_orders(s, reasons, self.clock())
            if not signal_ids:
                return
            async with self.sessions() as s:
                pending = await load_pending(
                    s, Order.signal_id.in_(signal_ids), Order.purpose == OrderPurpose.CLOSE
                )
            await self._send(pending, look_up_first=False)

    # -- manual approval -----------------------------------------------------------------

    async def decide_approval(
        self, order_id: int, user_id: int, approve: bool
    ) -> approvals.ApprovalOutcome:
        """The owner's Confirm or Skip on a held order; a confirmed order is sent at once."""
        async with self._lock:
            async with self.sessions() as s, s.begin():
                outcome = await approvals.decide(s, order_id, user_id, approve, self.clock())
            if outcome.verdict != "go":
                return outcome
            async with self.sessions() as s:
                pending = await load_pending(s, Order.id == order_id)
            await self._send(pending, look_up_first=False)
            async with self.sessions() as s:
                order = await s.get_one(Order, order_id)
            return approvals.ApprovalOutcome("go", order.status, order.error)

    async def expire_approvals(self) -> list[int]:
        async with self._lock, self.sessions() as s, s.begin():
            return await approvals.expire_due(s, self.clock())

    async def reconcile(self, venue_name: str) -> int:
        """Close in our books what the venue closed outside Maxxit (engine/reconcile.py),
        then finish orders whose outcome we never learned. Returns positions closed."""
        venue = self.venues.get(venue_name)
        if venue is None or not hasattr(venue, "user_fills"):
            return 0
        closes = await reconcile.find_external_closes(self.sessions, venue)  # type: ignore[arg-type]
        if closes:
            async with self._lock:
                async with self.sessions() as s, s.begin():
                    reasons = {c.position_id: c.reason for c in closes}
                    signal_ids = await write_close_orders(s, reasons, self.clock())
                    cloids = await reconcile.close_cloids(s, list(reasons))
                async with self.sessions() as s:
                    pending = await load_pending(
                        s, Order.signal_id.in_(signal_ids), Order.purpose == OrderPurpose.CLOSE
                    )
                fills = reconcile.fills_for(closes, cloids)
                adopt = reconcile.AdoptVenue(venue_name, fills)
                wanted = [o for o in pending if o.client_order_id in fills]
                await self._send(
                    wanted, look_up_first=True, place=False, venues={venue_name: adopt}
                )
        await self.resume_pending()
        return len(closes)

    async def open_position_ids(self) -> list[int]:
        async with self.sessions() as s:
            stmt = select(Position.id).where(Position.status == PositionStatus.OPEN)
            return list((await s.execute(stmt.order_by(Position.id))).scalars().all())

    async def _save_trailing(self, position_ids: list[int]) -> None:
        await save_trailing_starts(self.sessions, self.index, position_ids)

    async def checkpoint(self) -> list[StopMoved]:
        """Persist trailing state and alert moved stops (see engine/checkpoint.py)."""
        async with self._lock:
            events = await checkpoint(self.sessions, self.index)
        self._emit(events)
        return events

    def _emit(self, events: list[Event]) -> None:
        for e in events:
            for listener in self.listeners:
                listener(e)
