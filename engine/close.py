"""Close: a reduce-only order for each position that must close, written before the venue
call like every order, with the reason it closes.

A close that filled in part leaves the rest of the position open; the next attempt is a new
order, the next `close_seq`, under a new client order id (a venue refuses one it has seen):
the first attempt keeps the id derived from (namespace, signal, deployment, "close"), each
later one is derived from the one before it (`next_close_cloid`)."""

from __future__ import annotations

import hashlib
from collections.abc import Mapping
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

from sqlalchemy import bindparam, select, update
from sqlalchemy.ext.asyncio import AsyncSession

from engine.client_ids import client_order_id
from engine.orders import InsertClaim, PendingOrder
from storage.bulk import executemany, insert_ignore
from storage.enums import OrderPurpose, OrderStatus, PositionStatus
from storage.ids import among
from storage.models import Order, Position
from storage.rows import plain_rows

# what a close order is written from (engine/fills.py reads these and the money columns)
CLOSE_ORDER_COLUMNS = (
    Position.id,
    Position.signal_id,
    Position.deployment_id,
    Position.venue,
    Position.account,
    Position.market,
    Position.side,
    Position.size,
    Position.leverage,
)

# ids per statement: a tick closing thousands stays under PostgreSQL's 32,767 bind parameters
CHUNK = 5000


def key_chunks(keys: list[tuple[int, int]]) -> list[tuple[list[int], list[int]]]:
    """(signal ids, deployment ids) to look (signal, deployment) keys up by: two IN lists the
    unique (signal_id, deployment_id, ...) indexes serve, where SQLite scans the whole table
    for a row-value IN. Their product may hold pairs not asked for: callers filter. Chunked
    by signal, then by deployment, under PostgreSQL's 32,767 bind parameters."""
    by_signal: dict[int, list[int]] = {}
    for signal_id, deployment_id in keys:
        by_signal.setdefault(signal_id, []).append(deployment_id)
    out = []
    for signal_id, deployments in sorted(by_signal.items()):
        ids = sorted(set(deployments))
        out += [([signal_id], ids[i : i + CHUNK]) for i in range(0, len(ids), CHUNK)]
    return out


def next_close_cloid(previous_cloid: str, close_seq: int) -> str:
    """The client order id of close attempt `close_seq` (>= 1), from the attempt before it:
    deterministic (a retry of the same attempt reuses it) and, like the first, unique to this
    installation's namespace."""
    text = f"{previous_cloid}:close:{close_seq}"
    return "0x" + hashlib.sha256(text.encode()).hexdigest()[:32]


async def latest_close_orders(
    session: AsyncSession, keys: list[tuple[int, int]]
) -> dict[tuple[int, int], Any]:
    """The newest close attempt of each (signal, deployment): close_seq, status, cloid."""
    latest: dict[tuple[int, int], Any] = {}
    wanted = set(keys)
    for signal_ids, deployment_ids in key_chunks(keys):
        rows = await session.execute(
            select(
                Order.signal_id,
                Order.deployment_id,
                Order.close_seq,
                Order.status,
                Order.client_order_id,
            ).where(
                among(session, Order.signal_id, signal_ids),
                among(session, Order.deployment_id, deployment_ids),
                Order.purpose == OrderPurpose.CLOSE,
            )
        )
        for r in plain_rows(rows):
            key = (r.signal_id, r.deployment_id)
            if key not in wanted:
                continue
            if key not in latest or r.close_seq > latest[key].close_seq:
                latest[key] = r
    return latest


def close_attempt(
    namespace: str, signal_id: int, deployment_id: int, latest: Any
) -> tuple[int, str]:
    """(close_seq, cloid) of the close order an open position needs now: the first, the one
    already written (pending, or refused and retried as is), or the next one after a close
    that filled in part (the position is still open, so a filled close was partial)."""
    if latest is None:
        return 0, client_order_id(namespace, signal_id, deployment_id, OrderPurpose.CLOSE)
    if latest.status == OrderStatus.FILLED:
        seq = latest.close_seq + 1
        return seq, next_close_cloid(latest.client_order_id, seq)
    return latest.close_seq, latest.client_order_id


async def _still_open_after_filled_close(
    session: AsyncSession, positions: list[Any], latest: dict[tuple[int, int], Any]
) -> list[Any]:
    """Drop the positions whose newest close filled and which are no longer open. Under READ
    COMMITTED each statement sees the commits made before it: the positions were read open
    before another replica's recording committed (close filled, position closed, in one
    transaction), and the close orders after it. Read again now, after the orders, so a
    filled close means a partial fill only if the position is still open; otherwise the
    next attempt would be sent for a position the venue no longer holds."""
    after_fill = [
        p.id
        for p in positions
        if (x := latest.get((p.signal_id, p.deployment_id))) is not None
        and x.status == OrderStatus.FILLED
    ]
    if not after_fill:
        return positions
    still_open: set[int] = set()
    for start in range(0, len(after_fill), CHUNK):
        still_open |= set(
            (
                await session.execute(
                    select(Position.id).where(
                        among(session, Position.id, after_fill[start : start + CHUNK]),
                        Position.status == PositionStatus.OPEN,
                    )
                )
            ).scalars()
        )
    gone = set(after_fill) - still_open
    return [p for p in positions if p.id not in gone]


@dataclass(slots=True)
class CloseOrders:
    signal_ids: list[int] = field(default_factory=list)  # of the positions closing
    # with an InsertClaim: the close orders written claimed; `complete` when no other
    # pending close of these positions can be waiting (none refused and tried again, none
    # written before), so no claim statement needs to look for more
    claimed: list[PendingOrder] = field(default_factory=list)
    complete: bool = False


async def write_close_orders(
    session: AsyncSession,
    reasons: Mapping[int, str],
    now: datetime,
    namespace: str,
    claim: InsertClaim | None = None,
) -> CloseOrders:
    """Close orders for the open positions among `reasons` (position id -> close reason);
    with `claim`, the first of them written claimed (engine/orders.py, InsertClaim)."""
    ids = sorted(reasons)
    positions = []
    for start in range(0, len(ids), CHUNK):
        positions += plain_rows(
            await session.execute(
                select(*CLOSE_ORDER_COLUMNS).where(
                    among(session, Position.id, ids[start : start + CHUNK]),
                    Position.status == PositionStatus.OPEN,
                )
            )
        )
    latest = await latest_close_orders(session, [(p.signal_id, p.deployment_id) for p in positions])
    positions = await _still_open_after_filled_close(session, positions, latest)
    rows = []
    for p in positions:
        seq, cloid = close_attempt(
            namespace, p.signal_id, p.deployment_id, latest.get((p.signal_id, p.deployment_id))
        )
        rows.append(
            {
                "signal_id": p.signal_id,
                "deployment_id": p.deployment_id,
                "purpose": OrderPurpose.CLOSE,
                "close_seq": seq,
                "client_order_id": cloid,
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
        )
    # a close the venue refused earlier is tried again, as the same order (same client id)
    again = [
        {"cloid": r["client_order_id"], "reason": r["close_reason"]}
        for r, p in zip(rows, positions, strict=True)
        if (x := latest.get((p.signal_id, p.deployment_id))) is not None
        and x.status == OrderStatus.REJECTED
    ]
    retried = {a["cloid"] for a in again}
    fresh = [r for r in rows if r["client_order_id"] not in retried]
    out = CloseOrders(sorted({p.signal_id for p in positions}))
    if claim is not None:
        claim.mark(fresh)
    written = await insert_ignore(session, Order, fresh, returning="client_order_id")
    await executemany(
        session,
        update(Order.__table__)
        .where(
            Order.__table__.c.client_order_id == bindparam("cloid"),
            Order.__table__.c.status == OrderStatus.REJECTED,
        )
        .values(status=OrderStatus.PENDING, error=None, close_reason=bindparam("reason")),
        again,
    )
    if claim is not None and fresh:
        out.claimed = await claim.claimed(session, fresh, out.signal_ids, written)
        # every close written claimed: nothing else of these positions can be pending
        out.complete = not again and len(out.claimed) == len(fresh)
    return out
