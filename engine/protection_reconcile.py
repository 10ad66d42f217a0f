"""At start (and whenever the engine reconciles): the protective triggers resting on the venue
against the books (engine/protection.py says what the rows mean).

For each live account: read what rests and what the venue holds, then per open position and
kind (stop loss, take profit):
- resting under the row's cloid (or under the next version's, when a move's answer was lost):
  recorded as resting at the venue's price;
- not resting: looked up by cloid. Filled: the fill goes on the row and is reported as a
  `TriggeredClose`; still triggering: left alone; canceled or never seen: re-placed under the
  next version if the venue still holds the position, else left to engine/reconcile (the position
  went another way: by hand, liquidation);
- a position without rows (opened before protection, or a crash before `protect_opened`): its
  triggers are placed.
Triggers under one of our cloids that should not rest (a closed position's, an older version's,
a take profit no longer wanted) are canceled; triggers we did not place (the user's own, from
Hyperliquid's app) are never touched.

Rows are read, the venue asked, the decisions written, then orders canceled and placed: no
transaction is open across a venue call.
"""

from __future__ import annotations

import logging
from collections import defaultdict
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import datetime
from decimal import Decimal
from typing import Any

from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from engine.protection import (
    CANCELED,
    FILLED,
    LIVE_STATUSES,
    MOVING,
    PENDING,
    RESTING,
    ProtectionVenue,
    TriggeredClose,
    _cancel_rows,
    _Held,
    _live_open,
    _place,
    _row,
    _rows,
    protection_cloid,
)
from engine.venues.base import OrderState
from engine.venues.hyperliquid_protection import STOP, RestingTrigger, TriggerSpec
from storage.enums import CloseReason, PositionStatus
from storage.models import Position, ProtectiveOrder
from storage.types import utcnow

log = logging.getLogger(__name__)


@dataclass
class _Plan:
    """What one account needs, decided from the venue's answers, applied afterwards."""

    updates: dict[int, dict[str, Any]] = field(default_factory=dict)  # row id -> new values
    place: list[tuple[_Held, list[tuple[TriggerSpec, int, int | None]]]] = field(
        default_factory=list
    )  # (position, [(spec, version, existing row id)])
    cancel: list[RestingTrigger] = field(default_factory=list)
    closes: list[TriggeredClose] = field(default_factory=list)


async def reconcile_protection(
    sessions: async_sessionmaker[AsyncSession],
    venue: ProtectionVenue,
    *,
    namespace: str = "",
    clock: Callable[[], datetime] = utcnow,
) -> list[TriggeredClose]:
    async with sessions() as s:
        held = {p.id: _Held.of(p) for p in await _live_open(s, venue.name)}
        trailing = {p.id for p in await _live_open(s, venue.name, held) if p.trailing_active}
        rows = await _rows(s, held)
        stale = await _stale_rows(s, venue.name)
    by_position: dict[int, dict[str, ProtectiveOrder]] = defaultdict(dict)
    for r in rows:
        by_position[r.position_id][r.kind] = r
    accounts = {h.account for h in held.values()} | {acct for _, acct, _ in stale}
    closes: list[TriggeredClose] = []
    for account in sorted(accounts):
        mine = [h for h in held.values() if h.account == account]
        theirs = [r for r, acct, _ in stale if acct == account]
        try:
            plan = await _plan(venue, account, mine, by_position, theirs, trailing, namespace)
        except Exception as exc:  # one unreachable account must not stop the others
            log.warning("protection: reconciling %s failed: %r", account, exc)
            continue
        await _apply(sessions, venue, account, plan, clock)
        closes += plan.closes
    # rows of positions our books closed: off the venue if still there
    gone = [r for r, _, _ in stale]
    await _cancel_rows(sessions, venue, gone, {r.position_id: (a, m) for r, a, m in stale}, clock)
    return closes


async def _stale_rows(s: AsyncSession, venue: str) -> list[tuple[ProtectiveOrder, str, str]]:
    stmt = (
        select(ProtectiveOrder, Position.account, Position.market)
        .join(Position, Position.id == ProtectiveOrder.position_id)
        .where(
            ProtectiveOrder.status.in_(LIVE_STATUSES),
            Position.status != PositionStatus.OPEN,
            Position.venue == venue,
        )
    )
    return [(r, a, m) for r, a, m in (await s.execute(stmt)).all()]


async def _plan(
    venue: ProtectionVenue,
    account: str,
    mine: list[_Held],
    by_position: dict[int, dict[str, ProtectiveOrder]],
    stale: list[ProtectiveOrder],
    trailing: set[int],
    namespace: str,
) -> _Plan:
    resting = await venue.resting_triggers(account)
    sizes = {vp.market: vp.size for vp in await venue.positions(account)}
    by_cloid = {t.cloid: t for t in resting if t.cloid}
    plan, ours, expected = _Plan(), set(), set()
    for r in stale:  # closed in our books: whatever of theirs rests is canceled
        ours |= {protection_cloid(r.position_id, r.kind, v, namespace) for v in _versions(r)}
    for h in mine:
        rows = by_position.get(h.id, {})
        size = sizes.get(h.market, Decimal(0))
        holds = size > 0 if h.side == "long" else size < 0
        for row in rows.values():
            ours |= {protection_cloid(h.id, row.kind, v, namespace) for v in _versions(row)}
            if row.kind not in h.wanted() and row.status in LIVE_STATUSES:
                # no longer wanted (a take profit removed): its order is an orphan, canceled below
                plan.updates[row.id] = {"status": CANCELED, "target_price": None}
        specs: list[tuple[TriggerSpec, int, int | None]] = []
        for kind, price in h.wanted().items():
            row = rows.get(kind)
            if row is None:
                if holds:
                    specs.append((TriggerSpec(kind, price, _cloid(h, kind, 1, namespace)), 1, None))
                continue
            if row.status == FILLED:  # recorded earlier, position still open in our books
                plan.closes.append(_triggered(row, h, trailing))
                continue
            nxt = _cloid(h, kind, row.version + 1, namespace)
            if row.status == MOVING and nxt in by_cloid:  # the move happened; its answer was lost
                t = by_cloid[nxt]
                plan.updates[row.id] = _resting(t) | {"version": row.version + 1, "cloid": nxt}
                expected.add(nxt)
                continue
            if row.cloid in by_cloid and row.status != CANCELED:
                plan.updates[row.id] = _resting(by_cloid[row.cloid])
                expected.add(row.cloid)
                continue
            found = await venue.look_up_trigger(account, row.cloid)
            if found.state == OrderState.FILLED and found.fill is not None:
                f = found.fill
                plan.updates[row.id] = {
                    "status": FILLED, "fill_price": f.price, "fill_size": f.size,
                    "fill_fee": f.fee, "fill_venue_order_id": f.venue_order_id,
                    "filled_at": f.filled_at, "target_price": None,
                }  # fmt: skip
                for key, value in plan.updates[row.id].items():
                    setattr(row, key, value)  # a detached copy, for the report
                plan.closes.append(_triggered(row, h, trailing))
                continue
            if found.state in (OrderState.OPEN, OrderState.FILLED_FILLS_PENDING):
                expected.add(row.cloid)  # firing now, or filled with fills not visible yet
                continue
            if not holds:  # gone another way: engine/reconcile closes it as external
                plan.updates[row.id] = {"status": CANCELED, "target_price": None}
                continue
            # missing: the next version (two on from a lost move, whose cloid may be spent)
            version = row.version + (2 if row.status == MOVING else 1)
            specs.append(
                (TriggerSpec(kind, price, _cloid(h, kind, version, namespace)), version, row.id)
            )
        if specs:
            plan.place.append((h, specs))
    plan.cancel = [t for t in resting if t.cloid in ours and t.cloid not in expected]
    return plan


def _versions(row: ProtectiveOrder) -> range:
    return range(1, row.version + 3)  # every cloid issued, and the ones a lost move may have used


def _cloid(h: _Held, kind: str, version: int, namespace: str) -> str:
    return protection_cloid(h.id, kind, version, namespace)


def _resting(t: RestingTrigger) -> dict[str, Any]:
    return {
        "status": RESTING, "venue_order_id": t.venue_order_id, "trigger_price": t.trigger_price,
        "target_price": None, "error": None,
    }  # fmt: skip


def _triggered(row: ProtectiveOrder, h: _Held, trailing: set[int]) -> TriggeredClose:
    if row.kind == STOP:
        reason = CloseReason.TRAILING_STOP if h.id in trailing else CloseReason.STOP_LOSS
    else:
        reason = CloseReason.TAKE_PROFIT
    return TriggeredClose(
        h.id, row.kind, reason, row.fill_price or Decimal(0), row.fill_size or Decimal(0),
        row.fill_fee or Decimal(0), row.fill_venue_order_id or "", row.cloid, row.filled_at,
    )  # fmt: skip


async def _apply(
    sessions: async_sessionmaker[AsyncSession],
    venue: ProtectionVenue,
    account: str,
    plan: _Plan,
    clock: Callable[[], datetime],
) -> None:
    now = clock()
    async with sessions() as s, s.begin():
        for row_id, values in plan.updates.items():
            row = await s.get_one(ProtectiveOrder, row_id)
            for key, value in values.items():
                setattr(row, key, value)
            row.updated_at = now
        for h, specs in plan.place:  # the intent, before the venue is asked
            for spec, version, row_id in specs:
                if row_id is None:
                    s.add(_row(h.id, spec, version, PENDING, now))
                    continue
                row = await s.get_one(ProtectiveOrder, row_id)
                row.version, row.cloid, row.trigger_price = version, spec.cloid, spec.price
                row.status, row.target_price, row.updated_at = PENDING, None, now
    by_market: dict[str, list[str]] = defaultdict(list)
    for t in plan.cancel:
        by_market[t.market].append(t.cloid or "")
    for market, cloids in by_market.items():
        try:
            await venue.cancel_protection(account, market, cloids)
        except Exception as exc:  # still ours and unexpected: the next reconcile tries again
            log.warning("protection: canceling orphans on %s failed: %r", account, exc)
    for h, specs in plan.place:
        await _place(sessions, venue, h, [spec for spec, _, _ in specs], clock)
