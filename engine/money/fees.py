"""Real fees: an order's answer carries no fee, so a live fill is first recorded with an
estimate (engine/venues/hyperliquid.py); this job replaces it by what the venue booked.

For each account with live fills not yet settled, one paged read of its fills since the
oldest such order was written (`fills_since`, engine/venues/hyperliquid_history.py), grouped
by the venue's order id and combined (`combine`): the order's price, size and fee become the
venue's, to the last digit, and the order is marked settled (`fee_settled_at`), once (a
guarded update: a second settler changes nothing). Each position touched is then recomputed
from its orders (engine/money/books.py): entry, open fee and held size while open; the close
pieces, exit price and realized PnL (with its funding) once closed, and the ledger by the rule
in engine/money/corrections.py.

Closes adopted from the venue's own fills (external closes, liquidations) already carry the
venue's fees and are marked settled as they are. An order whose fills are still not visible
after `give_up_after` keeps its estimate and is marked settled, so it is not looked for forever.
"""

from __future__ import annotations

import logging
from collections import defaultdict
from collections.abc import Callable
from dataclasses import dataclass
from datetime import datetime, timedelta
from decimal import Decimal
from typing import Any, Protocol

from sqlalchemy import select, update
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from engine.money.books import Piece, books_of
from engine.money.corrections import share_if_unshared
from engine.venues.hyperliquid_history import VenueFill, combine
from storage.bulk import update_by_id
from storage.enums import CloseReason, OrderPurpose, OrderStatus, PositionStatus
from storage.models import Order, Position
from storage.types import quantize, utcnow

log = logging.getLogger(__name__)

ADOPTED = {CloseReason.EXTERNAL, CloseReason.LIQUIDATION}  # recorded from the venue's fills


class FillsVenue(Protocol):
    name: str

    async def fills_since(
        self, account: str, since_ms: int, until_ms: int | None = None
    ) -> list[VenueFill]: ...


@dataclass(frozen=True, slots=True)
class SettleResult:
    settled: int = 0  # orders corrected to the venue's fills
    kept: int = 0  # orders marked settled as they were (adopted, or fills never found)
    positions: int = 0  # positions recomputed


def _is_live(account: str) -> bool:
    return not account.startswith("paper:")


def _ms(at: datetime) -> int:
    return int(at.timestamp() * 1000)


async def settle_fees(
    sessions: async_sessionmaker[AsyncSession],
    venue: FillsVenue,
    *,
    clock: Callable[[], datetime] = utcnow,
    settle_after: timedelta = timedelta(seconds=10),
    give_up_after: timedelta = timedelta(days=1),
) -> SettleResult:
    """Settle the fees (and price and size) of the venue's filled orders with its fills."""
    now = clock()
    async with sessions() as s:
        rows = (
            await s.execute(
                select(
                    Order.id,
                    Order.account,
                    Order.client_order_id,
                    Order.venue_order_id,
                    Order.purpose,
                    Order.close_reason,
                    Order.created_at,
                    Order.updated_at,
                ).where(
                    Order.venue == venue.name,
                    Order.status == OrderStatus.FILLED,
                    Order.fee_settled_at.is_(None),
                    Order.venue_order_id.is_not(None),
                    Order.updated_at <= now - settle_after,
                )
            )
        ).all()
    by_account: dict[str, list[Any]] = defaultdict(list)
    kept: list[int] = []
    for r in rows:
        if not _is_live(r.account):
            continue
        if r.purpose == OrderPurpose.CLOSE and r.close_reason in ADOPTED:
            kept.append(r.id)
        else:
            by_account[r.account].append(r)
    result = SettleResult()
    if kept:
        async with sessions() as s, s.begin():
            result = _add(result, kept=len(await _mark(s, kept, now)))
    for account, orders in by_account.items():
        since = min(_ms(o.created_at) for o in orders) - 1000
        try:
            fills = await venue.fills_since(account, since)
        except Exception as exc:  # one unreachable account must not stop the others
            log.warning("settle fees: fills of %s unavailable: %r", account, exc)
            continue
        by_oid: dict[str, list[VenueFill]] = defaultdict(list)
        for f in fills:
            by_oid[str(f.oid)].append(f)
        found = {o.id: combine(o.client_order_id, by_oid[o.venue_order_id])
                 for o in orders if by_oid.get(o.venue_order_id)}  # fmt: skip
        stale = [o.id for o in orders
                 if o.id not in found and o.updated_at <= now - give_up_after]  # fmt: skip
        async with sessions() as s, s.begin():
            moved = set(await _mark(s, list(found) + stale, now))
            await update_by_id(
                s,
                Order,
                [
                    {
                        "id": oid,
                        "fill_price": quantize(f.price),
                        "filled_size": f.size,
                        "fee": quantize(f.fee),
                    }
                    for oid, f in found.items()
                    if oid in moved
                ],
            )
            recomputed = await recompute_positions(s, [oid for oid in found if oid in moved])
        for oid in stale:
            if oid in moved:
                log.warning("settle fees: no fills found for order %s; keeping its estimate", oid)
        result = _add(
            result,
            settled=len(moved & set(found)),
            kept=len(moved & set(stale)),
            positions=recomputed,
        )
    return result


def _add(r: SettleResult, settled: int = 0, kept: int = 0, positions: int = 0) -> SettleResult:
    return SettleResult(r.settled + settled, r.kept + kept, r.positions + positions)


async def _mark(session: AsyncSession, order_ids: list[int], now: datetime) -> list[int]:
    """Mark orders settled, once: returns those this call marked."""
    if not order_ids:
        return []
    rows = await session.execute(
        update(Order)
        .where(Order.id.in_(order_ids), Order.fee_settled_at.is_(None))
        .values(fee_settled_at=now)
        .returning(Order.id)
        .execution_options(synchronize_session=False)
    )
    return [r[0] for r in rows]


async def recompute_positions(session: AsyncSession, order_ids: list[int]) -> int:
    """Recompute, from their orders, the positions the given orders opened or closed."""
    if not order_ids:
        return 0
    keys = (
        await session.execute(
            select(Order.signal_id, Order.deployment_id).where(Order.id.in_(order_ids)).distinct()
        )
    ).all()
    positions = (
        (
            await session.execute(
                select(Position)
                .where(
                    Position.signal_id.in_({k.signal_id for k in keys}),
                )
                .order_by(Position.id)
                .with_for_update(key_share=True)  # a close or funding accrual alongside waits
            )
        )
        .scalars()
        .all()
    )
    wanted = {(k.signal_id, k.deployment_id) for k in keys}
    positions = [p for p in positions if (p.signal_id, p.deployment_id) in wanted]
    orders = (
        (
            await session.execute(
                select(Order).where(
                    Order.signal_id.in_({p.signal_id for p in positions}),
                    Order.status == OrderStatus.FILLED,
                )
            )
        )
        .scalars()
        .all()
    )
    by_key: dict[tuple[int, int], list[Order]] = defaultdict(list)
    for o in orders:
        by_key[(o.signal_id, o.deployment_id)].append(o)
    updates, closed = [], []
    for p in positions:
        mine = by_key[(p.signal_id, p.deployment_id)]
        opened = next((o for o in mine if o.id == p.open_order_id), None)
        closes = sorted(
            (o for o in mine if o.purpose == OrderPurpose.CLOSE), key=lambda o: o.close_seq
        )
        values = _position_values(p, opened, closes)
        if values is not None:
            updates.append({"id": p.id, **values})
            if p.status == PositionStatus.CLOSED:
                closed.append(p.id)
    await update_by_id(session, Position, updates)
    await share_if_unshared(session, closed)
    return len(updates)


def _piece(o: Order) -> Piece:
    return Piece(o.fill_price or Decimal(0), o.filled_size or Decimal(0), o.fee or Decimal(0))


def _position_values(p: Position, opened: Order | None, closes: list[Order]) -> dict | None:
    if opened is None or not opened.filled_size:
        return None
    books = books_of(p.side, _piece(opened), [_piece(c) for c in closes])
    if books.closed_size > books.opened_size:
        log.error("position %s: closes %s exceed the open %s; left as recorded",
                  p.id, books.closed_size, books.opened_size)  # fmt: skip
        return None
    values: dict[str, Any] = {
        "entry_price": books.entry_price,
        "open_fee": books.open_fee,
        "closed_size": books.closed_size,
        "closed_gross_pnl": books.closed_gross_pnl,
    }
    if closes:
        values["close_fee"] = books.close_fee
    if p.status == PositionStatus.OPEN:
        values["size"] = books.held
        return values
    values |= {
        "size": books.closed_size,
        "exit_price": books.exit_price,
        "realized_pnl": books.realized(p.funding_usd or Decimal(0)),
    }
    return values
