"""The engine: the path of one post, and of one price update, through every stage.

Each stage writes what it decided before the next acts, so a crash anywhere resumes (`start`)
without losing or repeating a trade. Nothing here holds a lock across a venue or LLM call:
orders are claimed in the database before they are sent (engine/orders.py), outcomes are
recorded by guarded updates (engine/fills.py), and only orders that touch one position (one
account, one market) wait for each other. A close triggered by a tick therefore goes out at
once, whatever fan-out, slow LLM answer or outage is in flight.
"""

from __future__ import annotations

import logging
import secrets
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from typing import Any

from sqlalchemy import update
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from engine import approvals, limit_orders
from engine.checkpoint import checkpoint, save_trailing_starts
from engine.classify.base import Classification, Classifier
from engine.client_ids import cloid_namespace
from engine.close import write_close_orders
from engine.close_retries import CloseRetries
from engine.coordination.ownership import Ownership, WholeBook
from engine.events import Event
from engine.immediate import Immediate
from engine.ingest import IncomingPost, source_id, store_post
from engine.monitor import PositionIndex
from engine.orders import KeyedSequencer
from engine.price_path import PricePathFirst
from engine.prices import PriceBook, PriceTick
from engine.protection_hooks import Protection
from engine.reconciling import Reconciler
from engine.route_cost import prepare_costs, routes_by_cost
from engine.routing_step import unfinished_signals
from engine.signal_writing import SignalOutcome, SignalWriting
from engine.signals import known_classification, make_signals, save_classification
from engine.venues.base import Venue
from engine.watch import Watch
from storage.audit import write_audit
from storage.enums import CloseReason, OrderPurpose, OrderStatus
from storage.models import Order
from storage.types import utcnow

log = logging.getLogger(__name__)


@dataclass(frozen=True, slots=True)
class EngineConfig:
    order_concurrency: int = 64
    approval_ttl: timedelta = timedelta(minutes=5)
    # an open order still unsent after this is stale: the call it followed is old news
    pending_open_ttl: timedelta = timedelta(minutes=10)
    # how long a claim on an order lasts: longer than the slowest venue round trip (the
    # limiter's wait included), or a replica could take over an order still in flight
    order_lease: timedelta = timedelta(seconds=120)
    # orders claimed per statement: a fan-out is sent in batches, each recorded at once
    claim_batch: int = 2000
    # followers per transaction of a fan-out on the paper venue (filled and recorded in the
    # transaction that writes them): on SQLite, whose one writer a stop's close waits for,
    # the part being written is all it waits behind; on both, the event loop is held for
    # one part's rows at most, and every order is written once, filled (a fan-out written
    # whole claimed and filled all but its first batch by two more updates of each order)
    fanout_part: int = 2000
    # parts of a fan-out in flight at once on PostgreSQL (engine/fanout_parts.py): one
    # part's rows are built while the other's are written; 1 writes them one by one
    fanout_parts_in_flight: int = 2
    # a signal unfinished this long with no order written is resumed (a part that failed,
    # a replica that died mid-way): parts are written every second or so
    fanout_stalled_after: timedelta = timedelta(minutes=2)


@dataclass(slots=True)
class PostOutcome:
    post_id: int
    classification: Classification
    signals: list[SignalOutcome] = field(default_factory=list)


class Engine(SignalWriting):
    def __init__(
        self,
        sessions: async_sessionmaker[AsyncSession],
        venues: Mapping[str, Venue],
        prices: PriceBook,
        classifier: Classifier,
        config: EngineConfig | None = None,
        clock: Callable[[], datetime] = utcnow,
        ownership: Ownership | None = None,
    ) -> None:
        self.sessions = sessions
        self.venues = dict(venues)
        self.prices = prices
        self.classifier = classifier
        self.config = config or EngineConfig()
        self.clock = clock
        # one process owning every market unless replicas share the database
        self.ownership: Ownership = ownership or WholeBook(f"single-{secrets.token_hex(4)}")
        self.index = PositionIndex()
        self.watch = Watch(sessions, self.index, self.ownership, self.venues)
        self.listeners: list[Callable[[Event], Any]] = []
        # positions whose close the venue refused: retried on their market's ticks
        self.close_retries = CloseRetries(sessions, clock)
        self.sequencer = KeyedSequencer()
        # a tick's writes before the checkpoint's (engine/price_path.py)
        self.price_path = PricePathFirst()
        self._namespace: str | None = None
        # signals this process routes now or will next (a post's, one after the other)
        self._writing_signals: set[int] = set()
        self._resume_failures: dict[int, int] = {}
        # live positions' stops and take profits resting on the venue (bot/service.py sets it
        # when live Hyperliquid trading is on)
        self.protection: Protection | None = None
        self.reconciler = Reconciler(self)

    # -- start / resume ------------------------------------------------------------------

    async def start(self) -> None:
        """Load the open positions of our markets into the monitor and finish whatever a
        crash interrupted."""
        await self.namespace()
        if isinstance(self.ownership, WholeBook):
            # the only process: claims left by an earlier life of it are void
            async with self.sessions() as s, s.begin():
                await s.execute(
                    update(Order)
                    .where(Order.status == OrderStatus.PENDING, Order.lease_until.is_not(None))
                    .values(lease_until=None)
                )
        await self.watch.load_all(restore_paper=True)
        for signal_id in await unfinished_signals(self.sessions):
            await self.resume_signal(signal_id)
        await self.resume_pending()

    async def namespace(self) -> str:
        """This installation's client-order-id namespace (engine/client_ids.py)."""
        if self._namespace is None:
            async with self.sessions() as s, s.begin():
                self._namespace = await cloid_namespace(s)
        return self._namespace

    async def resume_pending(self) -> None:
        """Send, or finish, every pending order nobody holds: those whose outcome we never
        learned (a crash, a venue error, no price yet), those of a replica that died, and
        those another replica wrote and has not claimed. Each is looked up at the venue
        first when it may have been sent; a stale open is adopted if it filled, else expires;
        closes are always retried: a position must not be left unmanaged."""
        await self._send_claimed(stale_before=self.clock() - self.config.pending_open_ttl)

    async def sync_watch(self) -> None:
        """Replicas: after an ownership round, watch the open positions of our markets (new
        ones opened by other replicas, those of markets just taken over), drop the rest. A
        position we start watching is checked against its market's last price at once: the
        tick that crossed its stop may have come before we knew of it."""
        for market in await self.watch.sync():
            price = self.prices.price(market)
            if price is not None:
                await self.on_price(PriceTick(self.clock(), market, price))

    # -- posts ---------------------------------------------------------------------------

    async def ingest(self, post: IncomingPost) -> PostOutcome:
        async with self.sessions() as s, s.begin():
            post_id = await store_post(s, post)
            src = await source_id(s, post.source_kind, post.source_handle)
            known = await known_classification(s, post_id, post.text, post.classification)
        # the classifier (maybe an LLM) is asked with no transaction open
        c = known.result if known.result is not None else await self.classifier.classify(post.text)
        async with self.sessions() as s, s.begin():
            c = await save_classification(s, post_id, c, cached=known.cached)
            price = self.prices.price(c.market) if c.market else None
            signals = await make_signals(s, post_id, src, post.posted_at, c, price)
            multi = c.market is not None and await routes_by_cost(s, [sig.id for sig in signals])
        outcome = PostOutcome(post_id, c)
        queued = {sig.id for sig in signals}  # ours to write: never "stalled" meanwhile
        self._writing_signals |= queued
        try:
            if multi and c.market:  # venues' funding, books, quotes: no transaction open
                await prepare_costs(self.venues, c.market)
            for sig in signals:
                outcome.signals.append(await self._route_and_execute(sig.id))
        finally:
            self._writing_signals -= queued
        return outcome

    # -- prices and closes ---------------------------------------------------------------

    async def on_price(self, tick: PriceTick) -> int:
        """Mark the market; close what crossed a level. Returns the number closed."""
        self.prices.update(tick)
        await self._fill_resting(tick)
        # paper holdings past their liquidation price first: they close as liquidated
        liquidated = await self.watch.liquidated(tick.market, tick.price)
        reasons = {t.position_id: t.reason for t in self.index.on_price(tick.market, tick.price)}
        reasons.update(dict.fromkeys(liquidated, CloseReason.LIQUIDATION))
        for pid, reason in self.close_retries.due(tick.market).items():
            reasons.setdefault(pid, reason)
        if reasons:
            await self.close_positions(reasons)
        if self.index.activated:
            # rare next to ticks, and costly to lose in a crash: save trailing starts now;
            # best effort, after the closes (the checkpoint saves them too)
            started = list(self.index.activated)
            self.index.activated.clear()
            try:
                with self.price_path.writing():
                    await save_trailing_starts(self.sessions, self.index, started)
            except Exception:
                log.exception(
                    "saving %d trailing starts failed; the checkpoint retries", len(started)
                )
        return len(reasons)

    async def _fill_resting(self, tick: PriceTick) -> None:
        """Paper limit entries the price crossed fill at the venue; their orders are looked
        up and recorded now (a live venue's fills are found by the pending-order sweep)."""
        filled: list[str] = []
        for venue in self.venues.values():
            cross = getattr(venue, "cross_resting", None)
            if cross is not None:
                filled += cross(tick.market, tick.price)
        if filled:
            await self._send_claimed(
                Order.client_order_id.in_(filled), look_up_first=True, place=False
            )

    async def settle_limit_entries(self) -> None:
        """Cancel resting limit entries past their expiry or whose call's stop was reached
        first, by client order id, then record each: filled meanwhile (adopted) or ended with
        its reason, the user told. Claimed first, like every order: one replica does it."""
        async with self.sessions() as s, s.begin():
            due = await limit_orders.due_entries(s, self.clock(), self.prices)
            ids = [d.order_id for d in due]
            claimed = await self._claim(s, Order.id.in_(ids)) if ids else []
        for o in claimed:
            cancel = getattr(self.venues.get(o.venue), "cancel_order", None)
            if cancel is None:
                continue
            try:
                await cancel(o.account, o.market, o.client_order_id)
            except Exception as exc:  # the look-up below says what the venue holds
                log.warning("cancel of limit entry %s failed: %r", o.client_order_id, exc)
        if claimed:
            reasons = {d.order_id: d.reason for d in due}
            await self._send(claimed, look_up_first=True, place=False, refusals=reasons)

    async def close_positions(self, reasons: Mapping[int, str]) -> None:
        namespace = await self.namespace()
        where: tuple[Any, ...] = ()

        async def work(s: AsyncSession, immediate: Immediate) -> tuple[Any, ...]:
            nonlocal where
            claim = self._insert_claim(immediate)
            written = await write_close_orders(s, reasons, self.clock(), namespace, claim)
            signal_ids = written.signal_ids
            where = (Order.signal_id.in_(signal_ids), Order.purpose == OrderPurpose.CLOSE)
            # claimed in the transaction that wrote them (most as they are written):
            # committed before any venue call, or filled here on the paper venue
            claimed = len(written.claimed)
            left = await immediate.record_written(s, written.claimed, self.clock())
            if signal_ids and not written.complete:
                more = await self._claim(s, *where, limit=claim.limit - claimed)
                left, claimed = left + more, claimed + len(more)
            return signal_ids, await self._fill_now(s, immediate, left), claimed

        # background writers wait for this transaction (engine/price_path.py), not for the
        # venue round trip after it: that would hold them across a network call
        with self.price_path.writing():
            (signal_ids, left, claimed), filled = await self._one_transaction(work)
        if not signal_ids:
            # closed already (by another replica, or a close that raced this one)
            self.watch.closed(list(reasons))
            return
        await self._finish(filled, where, left, claimed)

    # -- manual approval -----------------------------------------------------------------

    async def decide_approval(
        self, order_id: int, user_id: int, approve: bool, transport: str = ""
    ) -> approvals.ApprovalOutcome:
        """The owner's Confirm or Skip on a held order; a confirmed order is sent at once.
        The decision is on the audit trail, in the transaction that records it."""
        async with self.sessions() as s, s.begin():
            outcome = await approvals.decide(s, order_id, user_id, approve, self.clock())
            if outcome.verdict in ("go", "skipped"):
                action = "approve_order" if approve else "skip_order"
                await write_audit(s, user_id, action, transport, f"order:{order_id}")
        if outcome.verdict != "go":
            return outcome
        await self._send_claimed(Order.id == order_id)
        async with self.sessions() as s:
            order = await s.get_one(Order, order_id)
        return approvals.ApprovalOutcome("go", order.status, order.error)

    async def expire_approvals(self) -> list[int]:
        async with self.sessions() as s, s.begin():
            return await approvals.expire_due(s, self.clock())

    async def reconcile(self, venue_name: str) -> int:
        """Close in our books what the venue closed without us (engine/reconciling.py).
        Returns positions closed."""
        return await self.reconciler.run(venue_name)

    async def settle_races(self) -> None:
        """Wait for the reconciliations refused closes started (tests, shutdown)."""
        await self.reconciler.settle()

    async def open_position_ids(self) -> list[int]:
        return await self.watch.open_position_ids()

    async def checkpoint(self) -> list[Event]:
        """Persist trailing state and alert moved stops (see engine/checkpoint.py)."""
        saved = await checkpoint(self.sessions, self.index, self.price_path.wait_turn)
        events: list[Event] = list(saved)
        self._emit(events)
        if self.protection is not None:  # resting stops follow the trailing stops just saved
            await self.protection.follow_stops(list(self.watch.watched), await self.namespace())
        return events

    def _emit(self, events: list[Event]) -> None:
        for e in events:
            for listener in self.listeners:
                listener(e)
