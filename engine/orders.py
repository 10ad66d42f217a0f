"""Sending written orders to their venues, with bounded concurrency.

An order row always exists (status pending) before its venue is called, and is sent only by
the process that claimed it: the claim is a lease (claimed_by, lease_until) taken in one
statement (`FOR UPDATE SKIP LOCKED` on PostgreSQL), so replicas never send one order twice. A
lapsed lease (its claimant died) is taken over, and so is an order whose outcome was never
learned: such an order is first looked up at the venue by its client order id and adopted if
it filled; only an order the venue never saw is sent again.
"""

from __future__ import annotations

import asyncio
import logging
import secrets
from collections.abc import AsyncIterator, Callable, Iterable, Mapping
from contextlib import asynccontextmanager
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from decimal import Decimal
from typing import Any, NamedTuple

from sqlalchemy import select, update
from sqlalchemy.ext.asyncio import AsyncSession

from engine.venues.base import Fill, OrderRequest, OrderState, Venue, VenueRejected, look_up
from storage.enums import OrderPurpose, OrderStatus
from storage.ids import among
from storage.models import Order

log = logging.getLogger(__name__)


# NamedTuples, not frozen dataclasses: a fan-out or a tick makes one of each per order, and
# a frozen dataclass sets each field through object.__setattr__ (4.4 us for twenty fields,
# against 0.6 us for a NamedTuple): immutable either way
class PendingOrder(NamedTuple):
    id: int
    client_order_id: str
    signal_id: int
    deployment_id: int
    purpose: str
    venue: str
    account: str
    market: str
    side: str
    size: Decimal
    leverage: Decimal
    reduce_only: bool
    close_reason: str | None
    error: str | None  # set by an earlier attempt whose outcome we never learned
    isolated_margin: bool
    max_slippage_bps: Decimal | None
    created_at: datetime
    send_attempts: int  # claims so far, this one included: above 1, someone may have sent it
    limit_price: Decimal | None  # a limit entry (engine/limit_orders.py)
    limit_expires_at: datetime | None  # set: it rests at the venue until then

    @classmethod
    def from_row(cls, row: Any) -> PendingOrder:
        return cls._make(row)  # rows are selected in field order (PENDING_COLUMNS)


PENDING_COLUMNS = [getattr(Order, f) for f in PendingOrder._fields]


class Outcome(NamedTuple):
    order: PendingOrder
    fill: Fill | None = None
    rejected: str | None = None  # final refusal reason code
    error: str | None = None  # transient: state unknown, stays pending for the next sweep


async def load_pending(session: AsyncSession, *where: Any) -> list[PendingOrder]:
    rows = await session.execute(
        select(*PENDING_COLUMNS)
        .where(Order.status == OrderStatus.PENDING, *where)
        .order_by(Order.id)
    )
    return [PendingOrder.from_row(r) for r in rows]


async def claim_pending(
    session: AsyncSession,
    claimant: str,
    now: datetime,
    lease: timedelta,
    limit: int,
    *where: Any,
) -> list[PendingOrder]:
    """Claim up to `limit` pending orders nobody holds (never claimed, or a lapsed lease), in
    one statement; call inside a transaction and commit before any venue call."""
    if limit <= 0:
        return []
    free = (
        select(Order.id)
        .where(
            Order.status == OrderStatus.PENDING,
            (Order.lease_until.is_(None)) | (Order.lease_until <= now),
            *where,
        )
        .order_by(Order.id)
        .limit(limit)
        # PostgreSQL: rows another replica is claiming right now are skipped, not waited for;
        # SQLite has one writer at a time and ignores the clause
        .with_for_update(skip_locked=True, key_share=True)
    )
    table = Order.__table__
    # Core, not the ORM's bulk update: the rows become PendingOrders, never ORM objects
    rows = await session.execute(
        update(table)
        .where(table.c.id.in_(free.scalar_subquery()))
        .values(
            claimed_by=claimant,
            lease_until=now + lease,
            send_attempts=table.c.send_attempts + 1,
        )
        .returning(*(table.c[c.key] for c in PENDING_COLUMNS))
    )
    return sorted((PendingOrder.from_row(r) for r in rows), key=lambda o: o.id)


@dataclass(slots=True)
class InsertClaim:
    """Orders written already claimed: the claim folded into the INSERT (claimed_by,
    lease_until, send_attempts = 1 set on the row as it is written), so the first batch
    needs no UPDATE ... RETURNING. The rows are still committed before any venue call.
    `token` marks the rows this very INSERT wrote (in settled_by, which the recording
    overwrites): a row a unique key already held was written by someone else, is not
    marked, and is not taken as claimed."""

    claimant: str
    lease_until: datetime
    limit: int
    # (venue, account) -> whether that venue answers at once (the paper venue: no network,
    # a fill in microseconds). When every pending row's does, up to `at_once_limit` are
    # claimed: sent and recorded in one pass, long before the lease ends. The bound keeps
    # the recording's id lists under PostgreSQL's 32,767 bind parameters
    at_once: Callable[[str, str], bool] | None = None
    at_once_limit: int = 10_000
    token: str = field(default_factory=lambda: "w" + secrets.token_hex(12))
    # set by `mark`: every pending row written is on a venue that answers at once, so the
    # rest of these orders may be claimed `at_once_limit` at a time too
    all_at_once: bool = False
    # fills the claimed rows before their INSERT, if it may (engine/immediate.py
    # Immediate.fill_rows): True when it did
    fill_rows: Callable[[list[dict[str, Any]]], bool] | None = None

    def mark(self, rows: list[dict[str, Any]]) -> None:
        """Claim the first `limit` pending rows (`at_once_limit` on venues that answer at
        once); every row gets the same keys. Then `fill_rows`, if set, may fill the claimed
        rows before they are written (engine/immediate.py). Not every row of a big fan-out:
        the transaction that fills them holds SQLite's one write lock, and a stop's close
        waits for it (50,000 filled in one transaction held it 4 s); the rest are claimed,
        filled and recorded `at_once_limit` at a time, each in its own transaction."""
        left = self.limit
        at_once = self.at_once
        if at_once is not None and all(
            at_once(r["venue"], r["account"]) for r in rows if r["status"] == OrderStatus.PENDING
        ):
            left = max(left, self.at_once_limit)
            self.all_at_once = True
        self._claim_first(rows, left)
        if self.fill_rows is not None:
            self.fill_rows(rows)

    def _claim_first(self, rows: list[dict[str, Any]], left: int) -> None:
        for r in rows:
            mine = left > 0 and r["status"] == OrderStatus.PENDING
            left -= mine
            r["claimed_by"] = self.claimant if mine else None
            r["lease_until"] = self.lease_until if mine else None
            r["send_attempts"] = 1 if mine else 0
            r["settled_by"] = self.token if mine else None

    def next_batch(self) -> int | None:
        """How many of the rest to claim per statement (None: the engine's batch)."""
        return self.at_once_limit if self.all_at_once else None

    async def claimed(
        self,
        session: AsyncSession,
        rows: list[dict[str, Any]],
        signal_ids: Iterable[int],
        written: dict[str, int] | None = None,
    ) -> list[PendingOrder]:
        """The orders among `rows` this write inserted claimed, as `claim_pending` returns
        them. `written`: the ids the INSERT returned by client order id (storage/bulk.py),
        else only their ids are read back."""
        mine = [r["client_order_id"] for r in rows if r["settled_by"] is not None]
        if written is not None:
            ids = {c: written[c] for c in mine if c in written}
        else:
            ids = await self._read_ids(session, mine, signal_ids)
        out = [
            written_order(r, ids[r["client_order_id"]])
            for r in rows
            if r["settled_by"] is not None and r["client_order_id"] in ids
        ]
        return sorted(out, key=lambda o: o.id)

    async def _read_ids(
        self, session: AsyncSession, mine: list[str], signal_ids: Iterable[int]
    ) -> dict[str, int]:
        """The ids of the rows this write marked, read back: a few (a part of a fan-out, a
        tick's closes) by their unique key, since reading the signal's every order would
        grow with the parts written before; many by signal."""
        if len(mine) <= 5000:
            found = select(Order.client_order_id, Order.id).where(
                among(session, Order.client_order_id, mine), Order.settled_by == self.token
            )
            return dict((await session.execute(found)).all())
        ids: dict[str, int] = {}
        for part in _chunks(sorted(set(signal_ids))):
            found = select(Order.client_order_id, Order.id).where(
                among(session, Order.signal_id, part), Order.settled_by == self.token
            )
            ids.update((await session.execute(found)).all())
        return ids


def written_order(r: dict[str, Any], order_id: int) -> PendingOrder:
    """The PendingOrder of a row just written claimed, from the values written."""
    return PendingOrder(
        order_id,
        r["client_order_id"],
        r["signal_id"],
        r["deployment_id"],
        r["purpose"],
        r["venue"],
        r["account"],
        r["market"],
        r["side"],
        r["size"],
        r["leverage"],
        r["reduce_only"],
        r.get("close_reason"),
        None,
        bool(r.get("isolated_margin", False)),
        r.get("max_slippage_bps"),
        r["created_at"],
        1,
        r.get("limit_price"),
        r.get("limit_expires_at"),
    )


def _chunks(ids: list[int], size: int = 5000) -> list[list[int]]:
    return [ids[i : i + size] for i in range(0, len(ids), size)]


class KeyedSequencer:
    """Orders that touch one position (one venue account, one market) go out one at a time,
    in the order they were claimed; everything else runs concurrently. Entries are dropped
    when nobody holds or waits for them, so a 10,000-account fan-out leaves nothing behind."""

    def __init__(self) -> None:
        self._locks: dict[tuple[str, str, str], tuple[asyncio.Lock, int]] = {}
        # keys a batch filled in its own transaction holds until it commits or rolls back
        # (engine/immediate.py): a turn on one of them waits for that
        self._held: dict[tuple[str, str, str], asyncio.Event] = {}

    def hold(self, keys: Iterable[tuple[str, str, str]]) -> asyncio.Event | None:
        """Take every key at once if none is taken or awaited (None: some is; nothing
        taken). Synchronous: no order of these keys can start in between."""
        wanted = set(keys)
        locks, held = self._locks, self._held
        if any(k in locks or k in held for k in wanted):
            return None
        done = asyncio.Event()
        held.update(dict.fromkeys(wanted, done))
        return done

    def release(self, keys: Iterable[tuple[str, str, str]], done: asyncio.Event) -> None:
        held = self._held
        for k in keys:  # a key twice: its second look finds it gone
            if held.get(k) is done:
                del held[k]
        done.set()

    @asynccontextmanager
    async def turn(self, key: tuple[str, str, str]) -> AsyncIterator[None]:
        while (held := self._held.get(key)) is not None:
            await held.wait()
        lock, users = self._locks.get(key, (None, 0))
        if lock is None:
            lock = asyncio.Lock()
        self._locks[key] = (lock, users + 1)
        try:
            async with lock:
                yield
        finally:
            lock, users = self._locks[key]
            if users <= 1:
                del self._locks[key]
            else:
                self._locks[key] = (lock, users - 1)

    def __len__(self) -> int:
        return len(self._locks) + len(self._held)


async def submit(
    orders: Iterable[PendingOrder],
    venues: Mapping[str, Venue],
    concurrency: int,
    look_up_first: bool,
    place: bool = True,
    stale_before: datetime | None = None,
    sequencer: KeyedSequencer | None = None,
) -> list[Outcome]:
    """Send orders (at most `concurrency` at once). `look_up_first`: adopt a fill the venue
    already has (always done for an order claimed before or that met an error). `place=False`
    or an open order created before `stale_before`: only look up; an order the venue never
    saw expires (the call it followed is old news)."""
    todo = list(orders)
    results: list[Outcome | None] = [None] * len(todo)
    queue = iter(enumerate(todo))
    turns = sequencer or KeyedSequencer()

    async def one(o: PendingOrder) -> Outcome:
        async with turns.turn((o.venue, o.account, o.market)):
            return await attempt(o)

    async def attempt(o: PendingOrder) -> Outcome:
        venue = venues.get(o.venue)
        if venue is None:
            return Outcome(o, rejected="venue_unavailable")
        stale = (
            stale_before is not None
            and o.purpose == OrderPurpose.OPEN
            and o.created_at < stale_before
            and o.limit_expires_at is None  # a limit entry waits until its own expiry
        )
        try:
            if look_up_first or o.error is not None or o.send_attempts > 1 or stale:
                # the venue may have it already: adopt, never send twice
                found = await look_up(venue, o.account, o.client_order_id)
                if found.state == OrderState.FILLED and found.fill is not None:
                    log.info("adopted fill of %s found at %s", o.client_order_id, o.venue)
                    return Outcome(o, fill=found.fill)
                if found.state == OrderState.CANCELED:
                    return Outcome(o, rejected="not_filled")
                if found.state != OrderState.UNKNOWN:
                    # resting, or filled with fills not found yet: never sent again, never
                    # written off; the next sweep looks again
                    return Outcome(o, error=found.state.value)
            if not place or stale:
                return Outcome(o, rejected="expired")
            fill = await venue.place_order(
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
                    limit_price=o.limit_price,
                    resting=o.limit_expires_at is not None,
                )
            )
            return Outcome(o, fill=fill)
        except VenueRejected as exc:
            if exc.retryable:
                return Outcome(o, error=exc.reason)
            return Outcome(o, rejected=exc.reason)
        except Exception as exc:
            # whatever went wrong, the other orders of the fan-out still get recorded; this
            # one stays pending and is looked up at the venue before any new attempt
            log.warning("order %s: venue error, will look it up: %r", o.client_order_id, exc)
            return Outcome(o, error=type(exc).__name__)

    async def worker() -> None:
        # a fixed pool of workers pulling from one queue: at most `concurrency` venue calls
        # in flight, without a task per order
        for i, o in queue:
            results[i] = await one(o)

    await asyncio.gather(*(worker() for _ in range(min(concurrency, len(todo)) or 1)))
    return [r for r in results if r is not None]
