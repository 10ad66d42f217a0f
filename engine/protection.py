"""Protection that outlives the process: every live position's stop loss (and take profit, when
set) rests on the venue as a reduce-only trigger order, moved as the trailing stop moves, so a
crash or an outage leaves the position protected.

Each trigger is a `protective_orders` row (storage/models/protection.py), written before the
venue is called, under a client order id derived from the position, the kind and a version
(`protection_cloid`): each placement or move is the next version. No transaction is open while
the venue is called: rows are read or written, the venue called, then the answer recorded.

Row statuses: pending (written, venue not yet known to have it), resting, moving (a modify to
version + 1 sent, answer not recorded), filled (the trigger closed the position; the fill is on
the row), canceled (our position closed, or the venue's gone), failed (the venue refused it:
re-placed by `reconcile_protection` under the next version).

`reconcile_protection` at start compares what rests with the books, re-places what is missing,
cancels our own triggers that should no longer rest, and reports triggers that filled while we
were down as `TriggeredClose`s, which the engine closes in its books at the venue's fill. It
reports one as long as the position is open in our books; the close itself is idempotent on the
close order's deterministic client order id, so the position is closed once.
"""

from __future__ import annotations

import hashlib
import logging
from collections import defaultdict
from collections.abc import Callable, Iterable
from dataclasses import dataclass
from datetime import datetime, timedelta
from decimal import Decimal
from typing import Any, Protocol

from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from engine.reconcile import ExternalClose, is_live
from engine.venues.base import OrderLookup
from engine.venues.hyperliquid_protection import (
    STOP,
    TAKE_PROFIT,
    ProtectionOrder,
    RestingTrigger,
    TriggerSpec,
)
from storage.enums import PositionStatus
from storage.models import Position, ProtectiveOrder
from storage.types import utcnow

log = logging.getLogger(__name__)
PENDING, RESTING, MOVING = "pending", "resting", "moving"
FILLED, CANCELED, FAILED = "filled", "canceled", "failed"
LIVE_STATUSES = (PENDING, RESTING, MOVING, FAILED)  # should be resting on the venue


class ProtectionVenue(Protocol):
    """What engine/venues/hyperliquid_protection.HyperliquidProtection offers."""

    name: str

    def trigger_price(self, market: str, side: str, kind: str, price: Decimal) -> Decimal: ...

    async def place_triggers(
        self, account: str, market: str, side: str, size: Decimal, specs: list[TriggerSpec]
    ) -> list[ProtectionOrder]: ...

    async def move_stop(
        self,
        account: str,
        market: str,
        side: str,
        size: Decimal,
        new_stop_px: Decimal,
        cloid: str,
        new_cloid: str,
    ) -> ProtectionOrder: ...

    async def cancel_protection(
        self, account: str, market: str, cloids: list[str]
    ) -> list[bool]: ...

    async def resting_triggers(self, account: str) -> list[RestingTrigger]: ...

    async def positions(self, account: str) -> list[Any]: ...

    async def look_up_trigger(self, account: str, cloid: str) -> OrderLookup: ...


@dataclass(frozen=True, slots=True)
class MoveSettings:
    # the weight budget: at most one modify per position this often, and only for a real step
    min_interval: timedelta = timedelta(seconds=30)
    min_step_pct: Decimal = Decimal("0.001")  # 0.1% of the price


@dataclass(frozen=True, slots=True)
class TriggeredClose:
    """A trigger that closed a position on the venue while the books still hold it open."""

    position_id: int
    kind: str  # "sl" | "tp"
    reason: str  # CloseReason.STOP_LOSS or TAKE_PROFIT
    price: Decimal  # the venue's fill (size-weighted)
    size: Decimal  # what the venue filled
    fee: Decimal  # the venue's fee on that fill
    venue_order_id: str
    cloid: str
    filled_at: datetime | None
    holding: Decimal | None = None  # rollover or funding settled with it (engine/venues/base)

    def as_external_close(self, position_size: Decimal) -> ExternalClose:
        """For the engine's adopt path (engine/reconcile.fills_for, AdoptVenue)."""
        return ExternalClose(
            self.position_id,
            self.price,
            position_size,
            self.fee,
            self.reason,
            self.venue_order_id,
            self.holding,
        )


def protection_cloid(position_id: int, kind: str, version: int, namespace: str = "") -> str:
    """0x + 32 hex digits; `namespace` is the installation's (issue 19, item 2) when it has one."""
    text = f"maxxit:protect:{namespace}:{position_id}:{kind}:{version}"
    return "0x" + hashlib.sha256(text.encode()).hexdigest()[:32]


@dataclass(frozen=True, slots=True)
class _Held:
    """A position as protection needs it, read in one transaction, used after it."""

    id: int
    account: str
    market: str
    side: str
    size: Decimal
    stop: Decimal
    take_profit: Decimal | None

    @classmethod
    def of(cls, p: Position) -> _Held:
        return cls(p.id, p.account, p.market, p.side, p.size, p.stop_price, p.take_profit_price)

    def wanted(self) -> dict[str, Decimal]:
        out = {STOP: self.stop}
        if self.take_profit is not None:
            out[TAKE_PROFIT] = self.take_profit
        return out


async def _live_open(
    s: AsyncSession, venue: str, ids: Iterable[int] | None = None
) -> list[Position]:
    stmt = select(Position).where(Position.status == PositionStatus.OPEN, Position.venue == venue)
    if ids is not None:
        stmt = stmt.where(Position.id.in_(list(ids)))
    return [p for p in (await s.execute(stmt)).scalars().all() if is_live(p.account)]


async def _rows(s: AsyncSession, position_ids: Iterable[int]) -> list[ProtectiveOrder]:
    stmt = select(ProtectiveOrder).where(ProtectiveOrder.position_id.in_(list(position_ids)))
    return list((await s.execute(stmt)).scalars().all())


async def protect_opened(
    sessions: async_sessionmaker[AsyncSession],
    venue: ProtectionVenue,
    position_ids: list[int],
    *,
    namespace: str = "",
    clock: Callable[[], datetime] = utcnow,
) -> dict[int, list[ProtectionOrder]]:
    """Place the triggers of newly opened live positions (those without rows yet)."""
    async with sessions() as s, s.begin():
        held = [_Held.of(p) for p in await _live_open(s, venue.name, position_ids)]
        have = {(r.position_id, r.kind) for r in await _rows(s, [h.id for h in held])}
        work: list[tuple[_Held, list[TriggerSpec]]] = []
        for h in held:
            specs = [
                TriggerSpec(kind, px, protection_cloid(h.id, kind, 1, namespace))
                for kind, px in h.wanted().items()
                if (h.id, kind) not in have
            ]
            for spec in specs:
                s.add(_row(h.id, spec, 1, PENDING, clock()))
            if specs:
                work.append((h, specs))
    return {h.id: await _place(sessions, venue, h, specs, clock) for h, specs in work}


def _row(position_id: int, spec: TriggerSpec, version: int, status: str, now: datetime) -> Any:
    return ProtectiveOrder(
        position_id=position_id, kind=spec.kind, version=version, cloid=spec.cloid,
        trigger_price=spec.price, status=status, updated_at=now,
    )  # fmt: skip


async def _place(
    sessions: async_sessionmaker[AsyncSession],
    venue: ProtectionVenue,
    h: _Held,
    specs: list[TriggerSpec],
    clock: Callable[[], datetime],
) -> list[ProtectionOrder]:
    """Venue call, then record the answer on the rows (already written with specs' cloids)."""
    try:
        placed = await venue.place_triggers(h.account, h.market, h.side, h.size, specs)
    except Exception as exc:  # unreachable or refused whole: reconcile places them later
        log.warning("protection: placing for position %s failed: %r", h.id, exc)
        placed = [ProtectionOrder(x.kind, x.cloid, x.price, None, str(exc)[:500]) for x in specs]
    async with sessions() as s, s.begin():
        by_cloid = {r.cloid: r for r in await _rows(s, [h.id])}
        for o in placed:
            row = by_cloid[o.cloid]
            row.venue_order_id, row.trigger_price = o.venue_order_id, o.trigger_price
            row.status = RESTING if o.venue_order_id else FAILED
            row.error, row.updated_at = o.error, clock()
    return placed


async def move_stops(
    sessions: async_sessionmaker[AsyncSession],
    venue: ProtectionVenue,
    moves: dict[int, Decimal],
    *,
    settings: MoveSettings | None = None,
    namespace: str = "",
    clock: Callable[[], datetime] = utcnow,
) -> dict[int, str]:
    """Move resting stops to new prices. Per position: "moved", "too_soon" (moved less than
    `min_interval` ago), "too_small" (less than `min_step_pct`, or the same tick),
    "unprotected" (no resting stop), "gone" (the stop is no longer on the venue: it fired or
    was canceled; reconcile_protection settles it), or "failed"."""
    settings = settings or MoveSettings()
    now, out = clock(), {}
    sends: list[tuple[_Held, ProtectiveOrder, Decimal, str]] = []
    async with sessions() as s, s.begin():
        held = {p.id: _Held.of(p) for p in await _live_open(s, venue.name, moves)}
        rows = {r.position_id: r for r in await _rows(s, held) if r.kind == STOP}
        for pid, new in moves.items():
            row, h = rows.get(pid), held.get(pid)
            if row is None or h is None or row.status != RESTING:
                out[pid] = "unprotected"
                continue
            rounded = venue.trigger_price(h.market, h.side, STOP, new)
            step = abs(rounded - row.trigger_price)
            if row.moved_at is not None and now - row.moved_at < settings.min_interval:
                out[pid] = "too_soon"
            elif step == 0 or step < settings.min_step_pct * row.trigger_price:
                out[pid] = "too_small"
            else:  # the intent first: a crash from here is settled by reconcile_protection
                row.status, row.target_price, row.moved_at, row.updated_at = MOVING, new, now, now
                new_cloid = protection_cloid(pid, STOP, row.version + 1, namespace)
                sends.append((h, row, new, new_cloid))
    for h, row, new, new_cloid in sends:
        try:
            o = await venue.move_stop(
                h.account, h.market, h.side, h.size, new, row.cloid, new_cloid
            )
        except Exception as exc:
            log.warning("protection: moving the stop of %s failed: %r", h.id, exc)
            o = ProtectionOrder(STOP, new_cloid, new, None, str(exc)[:500])
        out[h.id] = await _record_move(sessions, row.id, o, clock())
    return out


async def _record_move(
    sessions: async_sessionmaker[AsyncSession], row_id: int, o: ProtectionOrder, now: datetime
) -> str:
    async with sessions() as s, s.begin():
        row = await s.get_one(ProtectiveOrder, row_id)
        row.target_price, row.updated_at, row.error = None, now, o.error
        if o.venue_order_id is not None:
            row.version, row.cloid, row.venue_order_id = row.version + 1, o.cloid, o.venue_order_id
            row.trigger_price, row.status = o.trigger_price, RESTING
            return "moved"
        # refused: the old order stands (or is gone: reconcile looks it up)
        row.status = RESTING
        return "gone" if o.reason == "protection_gone" else "failed"


async def cancel_protection(
    sessions: async_sessionmaker[AsyncSession],
    venue: ProtectionVenue,
    position_ids: list[int],
    *,
    clock: Callable[[], datetime] = utcnow,
) -> int:
    """After the engine closed positions itself: take their triggers off the venue (with
    positionTpsl the venue drops them too once flat; an `na` trigger would stay)."""
    async with sessions() as s:
        rows = [r for r in await _rows(s, position_ids) if r.status in LIVE_STATUSES]
        where = {p.id: (p.account, p.market) for p in await _positions(s, position_ids)}
    return await _cancel_rows(sessions, venue, rows, where, clock)


async def _positions(s: AsyncSession, ids: Iterable[int]) -> list[Position]:
    stmt = select(Position).where(Position.id.in_(list(ids)))
    return list((await s.execute(stmt)).scalars().all())


async def _cancel_rows(
    sessions: async_sessionmaker[AsyncSession],
    venue: ProtectionVenue,
    rows: list[ProtectiveOrder],
    where: dict[int, tuple[str, str]],
    clock: Callable[[], datetime],
) -> int:
    groups: dict[tuple[str, str], list[ProtectiveOrder]] = defaultdict(list)
    for r in rows:
        groups[where[r.position_id]].append(r)
    done: list[int] = []
    for (account, market), group in groups.items():
        try:
            await venue.cancel_protection(account, market, [r.cloid for r in group])
        except Exception as exc:  # stays live in our rows: the next reconcile tries again
            log.warning("protection: canceling on %s failed: %r", account, exc)
            continue
        done += [r.id for r in group]
    async with sessions() as s, s.begin():
        for rid in done:
            row = await s.get_one(ProtectiveOrder, rid)
            row.status, row.updated_at = CANCELED, clock()
    return len(done)
