"""Closes that fill in part (an IOC close meeting a thin book): the filled piece is accounted
(its price PnL and fee), the position keeps the rest open and under watch, and the next close
attempt is written at once (pending, the next `close_seq`, engine/close.py), so a restart or
any sweep sends it even if this process dies; the caller schedules it to be retried on the
market's next tick, until the position is flat.

Only the recorder that moved the close order to filled gets here (engine/fills.py), so a piece
is accounted once; the position row is read under a lock (PostgreSQL; SQLite refuses a write from
a stale snapshot), so a funding accrual or a fee settlement running alongside is never lost."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from decimal import Decimal
from typing import TYPE_CHECKING, Any

from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncSession

from engine.close import next_close_cloid
from engine.money.books import piece_pnl
from engine.orders import Outcome
from engine.venues.base import Fill
from storage.bulk import insert_ignore, update_by_id
from storage.enums import OrderPurpose, OrderStatus
from storage.models import Order, Position
from storage.types import quantize

if TYPE_CHECKING:
    from engine.fills import Recorded


@dataclass(frozen=True, slots=True)
class FinalPiece:
    values: dict[str, Any]  # the position's closing columns


def final_piece(p: Position, fill: Fill) -> FinalPiece:
    """The position's money once its last piece `fill` closed it: the pieces before it are in
    the row (`closed_size`, `closed_gross_pnl`, `close_fee`)."""
    price, size, fee = quantize(fill.price), fill.size, quantize(fill.fee)
    before_size = p.closed_size or Decimal(0)
    before_gross = p.closed_gross_pnl or Decimal(0)
    gross = before_gross + piece_pnl(p.side, p.entry_price, price, size)
    close_fee = (p.close_fee or Decimal(0)) + fee
    total = before_size + size
    if before_size > 0:
        # the earlier pieces' notional, from their PnL: sum(px * sz) = entry * size +- PnL
        sign = 1 if p.side == "long" else -1
        notional = p.entry_price * before_size + sign * before_gross + price * size
        exit_price = quantize(notional / total)
    else:
        exit_price = price
    funding = fill.holding if fill.holding is not None else (p.funding_usd or Decimal(0))
    realized = quantize(gross - p.open_fee - close_fee + funding)
    return FinalPiece(
        {
            "funding_usd": funding,
            "size": total,
            "closed_size": total,
            "closed_gross_pnl": gross,
            "close_fee": close_fee,
            "exit_price": exit_price,
            "realized_pnl": realized,
        }
    )


async def record_partial_closes(
    session: AsyncSession,
    pieces: list[tuple[Position, Outcome]],
    now: datetime,
    done: Recorded,
) -> None:
    """Account each piece on its position (read under a row lock by the caller) and write the
    position's next close attempt."""
    updates = []
    for p, o in pieces:
        assert o.fill is not None
        gross = piece_pnl(p.side, p.entry_price, quantize(o.fill.price), o.fill.size)
        updates.append(
            {
                "id": p.id,
                "size": p.size - o.fill.size,
                "closed_size": (p.closed_size or Decimal(0)) + o.fill.size,
                "closed_gross_pnl": (p.closed_gross_pnl or Decimal(0)) + gross,
                "close_fee": (p.close_fee or Decimal(0)) + quantize(o.fill.fee),
            }
            | ({} if o.fill.holding is None else {"funding_usd": o.fill.holding})
        )
    await update_by_id(session, Position, updates)
    seqs = dict(
        (
            await session.execute(
                select(Order.id, Order.close_seq).where(
                    Order.id.in_([o.order.id for _, o in pieces])
                )
            )
        ).all()
    )
    rows = []
    for p, o in pieces:
        assert o.fill is not None
        od, seq = o.order, seqs[o.order.id] + 1
        reason = od.close_reason or "manual"
        rows.append(
            {
                "signal_id": od.signal_id,
                "deployment_id": od.deployment_id,
                "purpose": OrderPurpose.CLOSE,
                "close_seq": seq,
                "client_order_id": next_close_cloid(od.client_order_id, seq),
                "venue": od.venue,
                "account": od.account,
                "market": od.market,
                "side": od.side,
                "reduce_only": True,
                "size": p.size - o.fill.size,
                "leverage": od.leverage,
                "collateral_usd": 0,
                "status": OrderStatus.PENDING,
                "close_reason": reason,
                "created_at": now,
                "updated_at": now,
            }
        )
        done.refused_closes.append((od.signal_id, od.deployment_id, reason))
    await insert_ignore(session, Order, rows)
