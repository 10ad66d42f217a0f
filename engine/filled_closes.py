"""Filled closes end their positions: a close that filled in part leaves the rest open
(engine/partial_close.py); a full one closes the position by a guarded transition, so of two
recorders only the one that moved it writes PnL, profit share and the alert, and the opens
that waited for it (a flip) may go. Part of the recording in engine/fills.py, in its
transaction."""

from __future__ import annotations

from datetime import datetime
from typing import TYPE_CHECKING, Any

from sqlalchemy import select, update
from sqlalchemy.ext.asyncio import AsyncSession

from engine.close import CLOSE_ORDER_COLUMNS, key_chunks
from engine.events import OrderFailed, PositionClosed
from engine.orders import Outcome
from engine.partial_close import FinalPiece, final_piece, record_partial_closes
from engine.profit_share import ClosedTrade, record_profit_share
from engine.venues.routed import mode_of
from storage.bulk import transition_rows
from storage.enums import OrderPurpose, OrderStatus, PositionStatus
from storage.ids import among
from storage.models import Order, Position
from storage.rows import plain_rows

if TYPE_CHECKING:  # engine/fills.py imports this module
    from engine.fills import Recorded, SignalInfo


async def record_closes(
    session: AsyncSession,
    closes: list[Outcome],
    info: dict[int, SignalInfo],
    users: dict[int, int],
    now: datetime,
    done: Recorded,
) -> None:
    keys = {(o.order.signal_id, o.order.deployment_id): o for o in closes}
    positions = await _open_positions_of(session, keys)
    # a close that filled in part: the rest stays open, under watch, and is closed by the
    # next attempt (engine/partial_close.py); the fill is accounted as a piece
    partial = [
        p
        for p in positions
        if (o := keys[(p.signal_id, p.deployment_id)]).fill is not None and o.fill.size < p.size
    ]
    if partial:
        await record_partial_closes(
            session, [(p, keys[(p.signal_id, p.deployment_id)]) for p in partial], now, done
        )
        for p in partial:
            o = keys[(p.signal_id, p.deployment_id)]
            done.events.append(
                OrderFailed(
                    users[p.deployment_id],
                    o.order.id,
                    info[p.signal_id].agent_name,
                    p.market,
                    p.side,
                    OrderPurpose.CLOSE,
                    "partial_fill",
                )
            )
    partial_ids = {p.id for p in partial}
    closing = [p for p in positions if p.id not in partial_ids]
    lasts = {}  # the closing money of each filled close, written only if the close is ours
    # a tick closes a signal's followers at one price: each distinct money worked out once
    pieces: dict[tuple[Any, ...], FinalPiece] = {}
    for p in closing:
        if (o := keys[(p.signal_id, p.deployment_id)]).fill is not None:
            f = o.fill
            key = (
                p.side, p.entry_price, p.open_fee, p.close_fee, p.closed_size,
                p.closed_gross_pnl, p.funding_usd, f.price, f.size, f.fee, f.holding,
            )  # fmt: skip
            last = pieces.get(key)
            if last is None:
                last = pieces[key] = final_piece(p, f)
            lasts[p.id] = last, o.order.close_reason or "manual"
    # a position is closed once: of two recorders (a trigger and a manual close on two
    # replicas), only the one whose guarded update moves it writes PnL, shares and alerts
    mine = set(
        await transition_rows(
            session,
            Position,
            [p.id for p in closing],
            PositionStatus.OPEN,
            {"status": PositionStatus.CLOSED, "closed_at": now},
            {i: {**last.values, "close_reason": why} for i, (last, why) in lasts.items()},
        )
    )
    if mine:
        done.released_opens += await release_waiting_opens(session, sorted(mine), now)
    trades = []
    for p in closing:
        if p.id not in mine or p.id not in lasts:
            continue
        last, reason = lasts[p.id]
        pnl = last.values["realized_pnl"]
        si, user_id = info[p.signal_id], users[p.deployment_id]
        trades.append(ClosedTrade(p.id, pnl, now, p.account))
        done.closed.append(p.id)
        done.closed_owners.add(user_id)
        done.events.append(
            PositionClosed(
                user_id,
                p.id,
                si.agent_name,
                p.venue,
                p.market,
                p.side,
                last.values["size"],
                p.entry_price,
                last.values["exit_price"],
                reason,
                p.open_fee + last.values["close_fee"],
                pnl,
                p.leverage,
                mode_of(p.account),
            )
        )
    await record_profit_share(session, trades)


async def release_waiting_opens(
    session: AsyncSession, closed_position_ids: list[int], now: datetime
) -> list[int]:
    """Opens that waited for these positions to close (position policy "flip": close first,
    then open, so the venue's one net position and our books move together) may go now: they
    become pending, and are claimed and sent like any order. Returns their ids."""
    # first through the index on after_position_id (almost always: none), then the guarded
    # update by id; one statement filtering on the status walked every order on SQLite
    waiting = (
        await session.execute(
            select(Order.id).where(
                among(session, Order.after_position_id, closed_position_ids),
                Order.status == OrderStatus.WAITING,
            )
        )
    ).scalars()
    ids = list(waiting)
    if not ids:
        return []
    rows = await session.execute(
        update(Order)
        .where(Order.id.in_(ids), Order.status == OrderStatus.WAITING)
        .values(status=OrderStatus.PENDING, updated_at=now)
        .returning(Order.id)
        .execution_options(synchronize_session=False)
    )
    return [r[0] for r in rows]


# what recording a close reads of its position (engine/partial_close.py reads the same)
_CLOSING_COLUMNS = (
    *CLOSE_ORDER_COLUMNS,
    Position.entry_price,
    Position.open_fee,
    Position.close_fee,
    Position.closed_size,
    Position.closed_gross_pnl,
    Position.funding_usd,
)


async def _open_positions_of(
    session: AsyncSession, keys: dict[tuple[int, int], Outcome]
) -> list[Any]:
    """The open positions these closes are for, found through their unique (signal,
    deployment) key: a close reads its own position, whatever the number of followers of its
    signal or of open positions in all. Plain rows of the columns recording needs, not ORM
    objects (a tick closing thousands builds none)."""
    positions: list[Any] = []
    for signal_ids, deployment_ids in key_chunks(list(keys)):
        positions += plain_rows(
            await session.execute(
                select(*_CLOSING_COLUMNS)
                .where(
                    among(session, Position.signal_id, signal_ids),
                    among(session, Position.deployment_id, deployment_ids),
                    Position.status == PositionStatus.OPEN,
                )
                # locked (PostgreSQL), in id order as `transition` locks: a funding accrual
                # or fee settlement alongside waits, and what is read here stays true
                .order_by(Position.id)
                .with_for_update(key_share=True)
            )
        )
    positions.sort(key=lambda p: p.id)
    return [p for p in positions if (p.signal_id, p.deployment_id) in keys]
