"""Orders on a venue that answers at once, filled and recorded in the transaction that writes
(or claims) them.

The paper venue (alone, or for paper accounts behind engine/venues/routed.py) fills in
memory, with no network call. The two-transaction path every venue takes (write the orders
claimed and commit, send, then record by compare-and-set in a second transaction) exists for
venues across a network: no lock across the call, the order journalled before it goes out.
For the paper venue it only costs: here the batch is filled while its rows are still ours
alone (inserted by this transaction, or claimed in it under lock) and recorded (orders
filled, positions opened or closed, PnL, profit share, loss limits, alerts) before the one
commit. If that transaction does not commit, the paper fills are undone
(engine/venues/paper_undo.py) and the transaction may run again: a retry fills once.

Live venues (Hyperliquid, Ostium) never come here: a batch with any order not on the paper
venue, a limit entry, or an order that may have been sent before is left to the usual path.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Awaitable, Callable, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import datetime
from types import TracebackType
from typing import TypeVar

from sqlalchemy.exc import DBAPIError
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from engine import loss_limits, reconcile
from engine.events import OrderFailed
from engine.fills import Recorded, record
from engine.notify import write_outbox
from engine.orders import KeyedSequencer, Outcome, PendingOrder
from engine.venues.base import OrderRequest, Venue, VenueRejected
from engine.venues.paper import PaperVenue
from engine.venues.paper_undo import PaperUndo
from engine.venues.routed import AccountRoutedVenue, is_paper
from storage.db import is_transient_conflict

log = logging.getLogger(__name__)

T = TypeVar("T")

Key = tuple[str, str, str]


def paper_of(venue: Venue | None, account: str) -> PaperVenue | None:
    """The paper venue that fills `account`'s orders on `venue`, if it is one."""
    if isinstance(venue, AccountRoutedVenue) and is_paper(account):
        venue = venue.paper
    return venue if isinstance(venue, PaperVenue) else None


async def record_outcomes(
    s: AsyncSession,
    outcomes: Sequence[Outcome],
    raced: Mapping[int, str],
    now: datetime,
    held_here: bool = False,
) -> Recorded:
    """Record outcomes in the caller's transaction: orders, positions, loss limits after
    closes, alerts to the outbox."""
    done = await record(s, outcomes, now, held_here)
    if done.closed:
        done.events += await loss_limits.enforce(s, done.closed, now)
    if raced:  # no "close failed" alert: reconciliation says how it closed
        done.events = [
            e for e in done.events if not (isinstance(e, OrderFailed) and e.order_id in raced)
        ]
    await write_outbox(s, done.events)
    return done


@dataclass(slots=True)
class Filled:
    """A batch filled and recorded in its own transaction: for the engine after commit."""

    outcomes: list[Outcome]
    done: Recorded
    raced: dict[int, str] = field(default_factory=dict)


class Immediate:
    """The paper fills of one transaction. Entered around it; `fill_and_record` inside it.
    Leaving by an exception (the transaction rolled back) undoes the fills; either way the
    sequencer's turns it held are given back."""

    def __init__(self, venues: Mapping[str, Venue], sequencer: KeyedSequencer) -> None:
        self.venues = venues
        self.sequencer = sequencer
        self.undo = PaperUndo()
        self.filled: list[Filled] = []
        self._held: list[tuple[set[Key], asyncio.Event]] = []

    def __enter__(self) -> Immediate:
        self.undo.__enter__()
        return self

    def __exit__(
        self,
        kind: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        try:
            self.undo.__exit__(kind, exc, tb)
        finally:
            for keys, done in self._held:
                self.sequencer.release(keys, done)
            self._held.clear()
            if exc is not None:
                self.filled.clear()

    def _papers(self, orders: Sequence[PendingOrder]) -> list[PaperVenue] | None:
        """Each order's paper venue, when every order may be filled here: on the paper
        venue, at market, never claimed before (so never possibly sent)."""
        out = []
        for o in orders:
            paper = paper_of(self.venues.get(o.venue), o.account)
            if (
                paper is None
                or not _fills_as_placed(paper)
                or o.send_attempts != 1
                or o.error is not None
                or o.limit_price is not None
                or o.limit_expires_at is not None
            ):
                return None
            out.append(paper)
        return out

    async def fill_and_record(
        self, s: AsyncSession, orders: Sequence[PendingOrder], now: datetime
    ) -> Filled | None:
        """Fill `orders` (written or claimed in `s`'s transaction) and record them in it;
        None, with nothing done, when the batch is not for here or one of its (venue,
        account, market) has an order on its way: the usual path sends it after commit."""
        if not orders:
            return None
        papers = self._papers(orders)
        if papers is None:
            return None
        keys = {(o.venue, o.account, o.market) for o in orders}
        held = self.sequencer.hold(keys)
        if held is None:
            return None
        self._held.append((keys, held))
        outcomes = [_fill(paper, o) for paper, o in zip(papers, orders, strict=True)]
        raced = reconcile.closed_at_venue(outcomes)
        done = await record_outcomes(s, outcomes, raced, now, held_here=True)
        filled = Filled(outcomes, done, raced)
        self.filled.append(filled)
        return filled


def _fills_as_placed(paper: PaperVenue) -> bool:
    """Its `place_order` is the paper venue's own, which is `fill`: one that does something
    else (a stand-in in a test) is called the usual way."""
    cls = type(paper)
    return cls.place_order is PaperVenue.place_order and cls.fill is PaperVenue.fill


def _fill(paper: PaperVenue, o: PendingOrder) -> Outcome:
    """What `engine.orders.submit` makes of one order, from the paper venue's synchronous
    fill."""
    try:
        return Outcome(
            o,
            fill=paper.fill(
                OrderRequest(
                    client_order_id=o.client_order_id,
                    account=o.account,
                    market=o.market,
                    side=o.side,
                    size=o.size,
                    leverage=o.leverage,
                    reduce_only=o.reduce_only,
                    max_slippage_bps=o.max_slippage_bps,
                    isolated=o.isolated_margin,
                )
            ),
        )
    except VenueRejected as exc:
        return Outcome(o, error=exc.reason) if exc.retryable else Outcome(o, rejected=exc.reason)
    except Exception as exc:  # as submit: the order stays pending, looked up before a retry
        log.warning("order %s: paper venue error, will look it up: %r", o.client_order_id, exc)
        return Outcome(o, error=type(exc).__name__)


async def in_one_transaction(
    sessions: async_sessionmaker[AsyncSession],
    venues: Mapping[str, Venue],
    sequencer: KeyedSequencer,
    work: Callable[[AsyncSession, Immediate], Awaitable[T]],
    attempts: int = 3,
) -> tuple[T, list[Filled]]:
    """Run `work` in one transaction with an `Immediate` for its paper fills; one the
    database aborts (a deadlock or serialization failure between replicas) is rolled back
    whole, its paper fills undone, and runs again."""
    for attempt in range(1, attempts + 1):
        try:
            with Immediate(venues, sequencer) as immediate:
                async with sessions() as s, s.begin():
                    result = await work(s, immediate)
            return result, immediate.filled
        except DBAPIError as exc:
            if attempt == attempts or not is_transient_conflict(exc):
                raise
            log.warning("a transaction aborted (%s); again", exc.orig)
            await asyncio.sleep(0.05 * attempt)
    raise AssertionError("unreachable")
