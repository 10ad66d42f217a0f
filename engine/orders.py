"""Sending written orders to their venues, with bounded concurrency.

An order row always exists (status pending) before its venue is called. When the engine
resumes after a crash, a pending order is first looked up at the venue by its client order
id and adopted if it filled; only an order the venue never saw is sent again.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from decimal import Decimal
from typing import Any

from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncSession

from engine.venues.base import Fill, OrderRequest, OrderState, Venue, VenueRejected, look_up
from storage.enums import OrderStatus
from storage.models import Order

log = logging.getLogger(__name__)


@dataclass(frozen=True, slots=True)
class PendingOrder:
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

    @classmethod
    def from_row(cls, row: Any) -> PendingOrder:
        return cls(*row)  # rows are selected in field order (PENDING_COLUMNS)


PENDING_COLUMNS = [getattr(Order, f) for f in PendingOrder.__slots__]  # type: ignore[attr-defined]


@dataclass(frozen=True, slots=True)
class Outcome:
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


async def submit(
    orders: Iterable[PendingOrder],
    venues: Mapping[str, Venue],
    concurrency: int,
    look_up_first: bool,
    place: bool = True,
) -> list[Outcome]:
    """Send orders (at most `concurrency` at once). `look_up_first`: adopt a fill the venue
    already has. `place=False`: only look up; an order the venue never saw expires."""
    todo = list(orders)
    results: list[Outcome | None] = [None] * len(todo)
    queue = iter(enumerate(todo))

    async def one(o: PendingOrder) -> Outcome:
        venue = venues.get(o.venue)
        if venue is None:
            return Outcome(o, rejected="venue_unavailable")
        try:
            if look_up_first or o.error is not None:
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
            if not place:
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
