"""Orders on a venue that answers at once, filled and recorded in the transaction that writes
(or claims) them.

The paper venue (alone, or for paper accounts behind engine/venues/routed.py) fills in
memory, with no network call. The two-transaction path every venue takes (write the orders
claimed and commit, send, then record by compare-and-set in a second transaction) exists for
venues across a network: no lock across the call, the order journalled before it goes out.
For the paper venue it only costs. Here, in one transaction:

- the orders a fan-out or a tick writes are filled as their rows are built, and written
  with their outcome (`fill_rows`, called by InsertClaim.mark), then recorded (positions
  opened or closed, PnL, profit share, loss limits, alerts: `record_written`) with no UPDATE
  of the orders and no compare-and-set; a row the INSERT skipped (another writer holds its
  unique key) rolls the transaction back (`NotWritten`), which runs again without this;
- orders claimed in the transaction (a later batch, released opens, an approval) are filled
  while they are ours alone (claimed under lock) and recorded (`fill_and_record`).

If the transaction does not commit, the paper fills are undone (engine/venues/paper_undo.py)
and it may run again: a retry fills once. While it runs it holds the send sequencer's turn
of each (venue, account, market) it filled, so no other order of those interleaves.

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
from typing import Any, TypeVar

from sqlalchemy.exc import DBAPIError
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from engine import loss_limits, reconcile
from engine.events import OrderFailed
from engine.fills import Recorded, q, record
from engine.notify import write_outbox
from engine.orders import KeyedSequencer, Outcome, PendingOrder
from engine.venues.base import Fill, OrderRequest, Venue, VenueRejected
from engine.venues.paper import PaperVenue
from engine.venues.paper_undo import PaperUndo
from engine.venues.routed import AccountRoutedVenue, is_paper
from storage.db import is_transient_conflict
from storage.enums import OrderStatus

log = logging.getLogger(__name__)

T = TypeVar("T")

Key = tuple[str, str, str]
RECORD_PART = 10_000  # orders recorded per part (InsertClaim.at_once_limit's bound)
# what the paper venue answered an order: (its fill, a final refusal, an error to look up)
Answer = tuple[Fill | None, str | None, str | None]


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
    written: bool = False,
) -> Recorded:
    """Record outcomes in the caller's transaction: orders, positions, loss limits after
    closes, alerts to the outbox."""
    done = await record(s, outcomes, now, held_here, written)
    if done.closed:
        done.events += await loss_limits.enforce(s, done.closed, now, done.closed_owners)
    if raced:  # no "close failed" alert: reconciliation says how it closed
        done.events = [
            e for e in done.events if not (isinstance(e, OrderFailed) and e.order_id in raced)
        ]
    await write_outbox(s, done.events)
    return done


class NotWritten(Exception):
    """An order filled before its INSERT was not written by it (another writer holds its
    unique key): the transaction rolls back, its paper fills undone."""


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

    def __init__(
        self, venues: Mapping[str, Venue], sequencer: KeyedSequencer, before_insert: bool = True
    ) -> None:
        self.venues = venues
        self.sequencer = sequencer
        self.undo = PaperUndo()
        self.filled: list[Filled] = []
        self._held: list[tuple[set[Key], asyncio.Event]] = []
        # orders filled before their rows were written (`fill_rows`): cloid -> what the
        # venue answered (a Fill, or a refusal's reason and whether it is final)
        self.before_insert = before_insert
        self._answers: dict[str, Answer] = {}
        self._fills_here: dict[tuple[str, bool], PaperVenue | None] = {}

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

    def _here(self, venue: str, account: str) -> PaperVenue | None:
        # a batch has a few (venue, paper or live) pairs: each looked at once
        key = (venue, is_paper(account))
        if key not in self._fills_here:
            self._fills_here[key] = fills_here(self.venues.get(venue), account)
        return self._fills_here[key]

    def _hold(self, keys: set[Key]) -> bool:
        held = self.sequencer.hold(keys)
        if held is not None:
            self._held.append((keys, held))
        return held is not None

    def fill_rows(self, rows: list[dict[str, Any]], now: datetime) -> bool:
        """Before an INSERT of order rows (`InsertClaim.mark` set who claims them): fill the
        claimed ones here and write each with its outcome (filled, refused, or pending with
        the error to look up), so no UPDATE follows. Every row gets the same keys. Does
        nothing (False) unless every claimed row may be filled here (`_papers`' rules); the
        caller then records them with `record_written` after the INSERT."""
        mine = [r for r in rows if r["settled_by"] is not None]
        if not mine or not self.before_insert:
            return False
        papers = [self._paper_of_row(r) for r in mine]
        if any(p is None for p in papers):
            return False
        if not self._hold({(r["venue"], r["account"], r["market"]) for r in mine}):
            return False
        for r in rows:
            r["fill_price"] = r["filled_size"] = r["fee"] = r["venue_order_id"] = None
            r.setdefault("error", None)
        answers = _answers(papers, [_request(r) for r in mine])  # type: ignore[arg-type]
        for r, answer in zip(mine, answers, strict=True):
            f, rejected, error = self._answers[r["client_order_id"]] = answer
            if f is not None:
                r.update(
                    status=OrderStatus.FILLED,
                    lease_until=None,
                    fill_price=q(f.price),
                    filled_size=f.size,
                    fee=q(f.fee),
                    venue_order_id=f.venue_order_id,
                )
            elif rejected is not None:
                r.update(status=OrderStatus.REJECTED, lease_until=None, error=rejected)
            else:  # stays pending, handed back: the next sweep looks it up
                r.update(lease_until=now, error=error)
        return True

    def _paper_of_row(self, r: dict[str, Any]) -> PaperVenue | None:
        paper = self._here(r["venue"], r["account"])
        if (
            paper is None
            or r.get("limit_price") is not None
            or r.get("limit_expires_at") is not None
        ):
            return None
        return paper

    async def record_written(
        self, s: AsyncSession, written: Sequence[PendingOrder], now: datetime
    ) -> list[PendingOrder]:
        """Record the orders `fill_rows` filled, now written (their ids read back in
        `written`); the orders of `written` it did not fill are returned. A row the INSERT
        skipped (a unique key held by another writer) was filled at the venue but is not
        ours: the transaction is rolled back (`NotWritten`), and runs again without
        filling before the INSERT."""
        answers, self._answers = self._answers, {}
        if not answers:
            return list(written)
        outcomes = [
            Outcome(o, *a) for o in written if (a := answers.get(o.client_order_id)) is not None
        ]
        if len(outcomes) != len(answers):
            raise NotWritten
        # in parts: the recording's id lists stay under PostgreSQL's 32,767 bind parameters
        for start in range(0, len(outcomes), RECORD_PART):
            part = outcomes[start : start + RECORD_PART]
            raced = reconcile.closed_at_venue(part)
            done = await record_outcomes(s, part, raced, now, written=True)
            self.filled.append(Filled(part, done, raced))
        return [o for o in written if o.client_order_id not in answers]

    def _papers(self, orders: Sequence[PendingOrder]) -> list[PaperVenue] | None:
        """Each order's paper venue, when every order may be filled here: on the paper
        venue, at market, never claimed before (so never possibly sent)."""
        out = []
        for o in orders:
            paper = self._here(o.venue, o.account)
            if (
                paper is None
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
        if not self._hold({(o.venue, o.account, o.market) for o in orders}):
            return None
        answers = _answers(papers, [_request(o) for o in orders])
        outcomes = [Outcome(o, *a) for o, a in zip(orders, answers, strict=True)]
        raced = reconcile.closed_at_venue(outcomes)
        done = await record_outcomes(s, outcomes, raced, now, held_here=True)
        filled = Filled(outcomes, done, raced)
        self.filled.append(filled)
        return filled


def fills_here(venue: Venue | None, account: str) -> PaperVenue | None:
    """The paper venue whose `fill` is what placing `account`'s order on `venue` does, if it
    is one: `place_order` not replaced on the way (a subclass's or an instance's own, as a
    test's stand-in), so filling here is what sending would do."""
    routed = isinstance(venue, AccountRoutedVenue)
    if routed and _replaced(venue, AccountRoutedVenue, "place_order"):
        return None
    paper = paper_of(venue, account)
    if paper is None or _replaced(paper, PaperVenue, "place_order", "fill", "fill_many"):
        return None
    return paper


def _replaced(obj: object, base: type, *names: str) -> bool:
    own = getattr(obj, "__dict__", {})
    return any(n in own or getattr(type(obj), n) is not getattr(base, n) for n in names)


def _request(o: Any) -> OrderRequest:
    """The order request of a PendingOrder, or of an order row about to be written."""
    if isinstance(o, dict):
        return OrderRequest(
            o["client_order_id"],
            o["account"],
            o["market"],
            o["side"],
            o["size"],
            o["leverage"],
            o["reduce_only"],
            o.get("max_slippage_bps"),
            bool(o.get("isolated_margin", False)),
        )
    return OrderRequest(
        o.client_order_id,
        o.account,
        o.market,
        o.side,
        o.size,
        o.leverage,
        o.reduce_only,
        o.max_slippage_bps,
        o.isolated_margin,
    )


def _answers(papers: Sequence[PaperVenue], requests: Sequence[OrderRequest]) -> list[Answer]:
    """What `engine.orders.submit` makes of each order (its fill, a final refusal, an error
    to look up), from its paper venue's fills of the batch (`PaperVenue.fill_many`: each
    distinct terms worked out once), in order."""
    first = papers[0] if papers else None
    if all(p is first for p in papers):  # one venue, as a fan-out or a tick
        results = first.fill_many(requests) if first is not None else []
    else:
        results = [paper.fill_many([r])[0] for paper, r in zip(papers, requests, strict=True)]
    return [_answer(r, result) for r, result in zip(requests, results, strict=True)]


def _answer(request: OrderRequest, result: Fill | Exception) -> Answer:
    if isinstance(result, Fill):
        return result, None, None
    if isinstance(result, VenueRejected):
        return (None, None, result.reason) if result.retryable else (None, result.reason, None)
    # as submit: the order stays pending, looked up before a retry
    cloid = request.client_order_id
    log.warning("order %s: paper venue error, will look it up: %r", cloid, result)
    return None, None, type(result).__name__


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
    before_insert, attempt = True, 1
    while True:
        try:
            with Immediate(venues, sequencer, before_insert) as immediate:
                async with sessions() as s, s.begin():
                    result = await work(s, immediate)
            return result, immediate.filled
        except NotWritten:
            # not an abort: the same transaction again, with nothing filled before its INSERT
            log.info("orders filled before their INSERT were written by another; again")
            assert before_insert
            before_insert = False
        except DBAPIError as exc:
            if attempt == attempts or not is_transient_conflict(exc):
                raise
            log.warning("a transaction aborted (%s); again", exc.orig)
            await asyncio.sleep(0.05 * attempt)
            attempt += 1
