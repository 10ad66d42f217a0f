"""Close: a reduce-only order for each position that must close, written before the venue
call like every order, with the reason it closes."""

from __future__ import annotations

from collections.abc import Mapping
from datetime import datetime

from sqlalchemy import bindparam, select, update
from sqlalchemy.ext.asyncio import AsyncSession

from engine.client_ids import client_order_id
from storage.bulk import executemany, insert_ignore
from storage.enums import OrderPurpose, OrderStatus, PositionStatus
from storage.models import Order, Position


async def write_close_orders(
    session: AsyncSession, reasons: Mapping[int, str], now: datetime, namespace: str
) -> list[int]:
    """Close orders for the open positions among `reasons` (position id -> close reason);
    returns the signal ids they belong to."""
    positions = (
        await session.execute(
            select(
                Position.id,
                Position.signal_id,
                Position.deployment_id,
                Position.venue,
                Position.account,
                Position.market,
                Position.side,
                Position.size,
                Position.leverage,
            ).where(Position.id.in_(list(reasons)), Position.status == PositionStatus.OPEN)
        )
    ).all()
    rows = [
        {
            "signal_id": p.signal_id,
            "deployment_id": p.deployment_id,
            "purpose": OrderPurpose.CLOSE,
            "client_order_id": client_order_id(
                namespace, p.signal_id, p.deployment_id, OrderPurpose.CLOSE
            ),
            "venue": p.venue,
            "account": p.account,
            "market": p.market,
            "side": p.side,
            "reduce_only": True,
            "size": p.size,
            "leverage": p.leverage,
            "collateral_usd": 0,
            "status": OrderStatus.PENDING,
            "close_reason": reasons[p.id],
            "created_at": now,
            "updated_at": now,
        }
        for p in positions
    ]
    await insert_ignore(session, Order, rows)
    # a close the venue refused earlier is tried again, as the same order (same client id)
    await executemany(
        session,
        update(Order.__table__)
        .where(
            Order.__table__.c.client_order_id == bindparam("cloid"),
            Order.__table__.c.status == OrderStatus.REJECTED,
        )
        .values(status=OrderStatus.PENDING, error=None, close_reason=bindparam("reason")),
        [{"cloid": r["client_order_id"], "reason": r["close_reason"]} for r in rows],
    )
    return sorted({p.signal_id for p in positions})
