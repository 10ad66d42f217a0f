"""The engine's venue round trip: claim pending orders, send them, record the outcomes, and
tell the monitor, the close retries, protection and listeners after the commit
(engine/pipeline.py's Engine is made of this and the stages that write the orders).

Orders are claimed in the database before they are sent (engine/orders.py), outcomes are
recorded by guarded updates (engine/fills.py); orders on the paper venue are filled and
recorded in the transaction that writes or claims them (engine/immediate.py).
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable, Mapping
from datetime import datetime
from functools import partial
from typing import TYPE_CHECKING, Any, TypeVar

from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from engine import reconcile
from engine.close_retries import CloseRetries
from engine.coordination.ownership import Ownership
from engine.events import Event
from engine.fills import Recorded
from engine.immediate import Filled, Immediate, in_one_transaction, paper_of, record_outcomes
from engine.orders import InsertClaim, KeyedSequencer, Outcome, PendingOrder, claim_pending, submit
from engine.price_path import PricePathFirst
from engine.protection_hooks import Protection
from engine.reconciling import Reconciler
from engine.venues.base import Venue
from engine.watch import Watch
from storage.models import Order

if TYPE_CHECKING:
    from engine.pipeline import EngineConfig

T = TypeVar("T")


class OrderSending:
    """Mixed into Engine, whose attributes these are."""

    sessions: async_sessionmaker[AsyncSession]
    venues: dict[str, Venue]
    config: EngineConfig
    clock: Callable[[], datetime]
    ownership: Ownership
    sequencer: KeyedSequencer
    watch: Watch
    close_retries: CloseRetries
    reconciler: Reconciler
    protection: Protection | None
    price_path: PricePathFirst

    async def namespace(self) -> str:
        raise NotImplementedError

    def _emit(self, events: list[Event]) -> None:
        raise NotImplementedError

    async def _one_transaction(
        self, work: Callable[[AsyncSession, Immediate], Awaitable[T]]
    ) -> tuple[T, list[Filled]]:
        return await in_one_transaction(self.sessions, self.venues, self.sequencer, work)

    async def _finish(
        self,
        filled: list[Filled],
        where: tuple[Any, ...],
        left: list[PendingOrder],
        claimed: int,
        batch_size: int | None = None,
        after_price_path: bool = False,
        rest_may_wait: bool = True,
    ) -> None:
        """After the transaction that wrote or claimed `claimed` orders: what it filled is
        settled, what it `left` claimed is sent; then the rest of `where`, batch by batch
        (`after_price_path`: each batch waits while a tick's closes are being written;
        `rest_may_wait`: False when the caller knows it claimed every pending order)."""
        for f in filled:
            await self._settled(f.outcomes, f.done, f.raced)
        if left:
            await self._send(left, look_up_first=False)
        if rest_may_wait and claimed >= self.config.claim_batch:  # maybe more than one batch
            await self._send_claimed(
                *where, batch_size=batch_size, after_price_path=after_price_path
            )

    async def _fill_now(
        self, s: AsyncSession, immediate: Immediate, orders: list[PendingOrder]
    ) -> list[PendingOrder]:
        """Fill and record `orders` in this transaction if they are all for the paper
        venue; those left to send after commit."""
        return [] if await immediate.fill_and_record(s, orders, self.clock()) else orders

    async def _claim(
        self, s: AsyncSession, *where: Any, limit: int | None = None
    ) -> list[PendingOrder]:
        return await claim_pending(
            s,
            self.ownership.replica_id,
            self.clock(),
            self.config.order_lease,
            self.config.claim_batch if limit is None else limit,
            *where,
        )

    def _insert_claim(self, immediate: Immediate | None = None) -> InsertClaim:
        """Orders written claimed; with `immediate`, those on the paper venue are filled
        before they are written, and written filled (engine/immediate.py)."""
        now = self.clock()
        return InsertClaim(
            self.ownership.replica_id,
            now + self.config.order_lease,
            self.config.claim_batch,
            self._answers_at_once,
            fill_rows=None if immediate is None else partial(immediate.fill_rows, now=now),
        )

    def _answers_at_once(self, venue_name: str, account: str) -> bool:
        """The paper venue (alone, or paper accounts behind a venue routing by account)
        fills in-process, with no network call: its orders need no batches."""
        return paper_of(self.venues.get(venue_name), account) is not None

    async def _send_claimed(
        self,
        *where: Any,
        look_up_first: bool = False,
        stale_before: datetime | None = None,
        place: bool = True,
        venues: Mapping[str, Venue] | None = None,
        claimed: list[PendingOrder] | None = None,
        batch_size: int | None = None,
        after_price_path: bool = False,
    ) -> None:
        """Claim pending orders matching `where` batch by batch, send each batch, record it.
        An order claimed before, or whose last attempt met an error, is looked up at the
        venue first (engine/orders.py); `look_up_first` does so for every order. `claimed`:
        a first batch the caller claimed in the transaction that wrote it (one round trip
        less on a stop's path). `batch_size`: orders claimed per statement after it (orders
        on a venue that answers at once go in larger batches). `after_price_path`: a
        background sender (a fan-out's later batches), whose batches wait while a tick's
        closes are written (engine/price_path.py); never on the price path itself."""
        # a plain send of fresh orders may be filled in the claim's own transaction
        at_once = place and not look_up_first and stale_before is None and venues is None

        async def work(s: AsyncSession, immediate: Immediate) -> list[PendingOrder]:
            batch = await self._claim(s, *where, limit=batch_size)
            if at_once:
                await immediate.fill_and_record(s, batch, self.clock())
            return batch

        batch = claimed
        while True:
            filled: list[Filled] = []
            if batch is None:
                if after_price_path:
                    await self.price_path.wait_turn()
                batch, filled = await self._one_transaction(work)
                for f in filled:
                    await self._settled(f.outcomes, f.done, f.raced)
            if not batch:
                return
            if not filled:
                await self._send(
                    batch, look_up_first=look_up_first, place=place, venues=venues,
                    stale_before=stale_before,
                )  # fmt: skip
            if len(batch) < self.config.claim_batch:
                return
            batch = None

    async def _send(
        self,
        pending: list[PendingOrder],
        look_up_first: bool,
        place: bool = True,
        venues: Mapping[str, Venue] | None = None,
        stale_before: datetime | None = None,
        refusals: Mapping[int, str] | None = None,
    ) -> None:
        outcomes = await submit(
            pending,
            venues or self.venues,
            self.config.order_concurrency,
            look_up_first,
            place=place,
            stale_before=stale_before,
            sequencer=self.sequencer,
        )
        if refusals:  # why the caller ended these orders (a limit entry cancelled at expiry)
            outcomes = [
                o._replace(rejected=refusals.get(o.order.id, o.rejected)) if o.rejected else o
                for o in outcomes
            ]
        raced = reconcile.closed_at_venue(outcomes)
        # recorded in one transaction; one the database aborts (a deadlock between replicas
        # recording at once) is rolled back whole and runs again
        done, _ = await self._one_transaction(
            lambda s, _: record_outcomes(s, outcomes, raced, self.clock())
        )
        await self._settled(outcomes, done, raced)

    async def _settled(
        self, outcomes: list[Outcome], done: Recorded, raced: Mapping[int, str]
    ) -> None:
        """After a batch's recording committed: the monitor, close retries, events,
        protection, reconciliation, and the opens its closes released."""
        self.watch.opened(done.opened)
        self.watch.closed(done.closed)
        self.close_retries.settled(done.closed)
        if done.refused_closes:
            await self.close_retries.schedule(done.refused_closes)
        self._emit(done.events)
        if self.protection is not None and (done.opened or done.closed):
            await self._protect(outcomes, [pid for pid, _, _ in done.opened], done.closed)
        for venue_name in set(raced.values()):
            self.reconciler.soon(venue_name)
        if done.released_opens:
            # [position policy] a flip's open waited for one of these closes: send it now
            await self._send_claimed(Order.id.in_(done.released_opens))

    async def _protect(self, outcomes: list[Outcome], opened: list[int], closed: list[int]) -> None:
        """After recording, no transaction open: triggers for the live positions just opened,
        none left for those the engine just closed (best effort, engine/protection_hooks.py)."""
        assert self.protection is not None
        if not any(self.protection.covers(o.order.venue, o.order.account) for o in outcomes):
            return  # paper only
        if opened:
            await self.protection.opened(opened, await self.namespace())
        if closed:
            await self.protection.closed(closed)
