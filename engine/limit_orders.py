"""A call's stated entry as a limit: "long ETH 3,150-3,200", "bid SOL at 140".

When a signal's call states an entry (one price or a range, engine/classify/call_levels.py):

- the market is already at or better than the entry, within the agent's slippage (a long at or
  below the range's top, a short at or above its bottom): the open goes now, at market, its
  limit price capped at the range (plus the slippage the agent accepts), never worse;
- otherwise it rests at the venue as a good-till-cancelled limit at the range's edge, with the
  order's deterministic client order id, for the agent's `limit_ttl_hours` (24 by default, told
  in the alert). It stays a pending order (claimed, never sent twice, looked up by its id after a
  restart) until the venue fills it; it is cancelled by its id at expiry, or when the price
  reaches the call's stop first, and the user is told;
- a call whose stop the market has already passed is not traded: the idea is invalidated;
- venues that cannot rest an order (Ostium, whose limit orders are not modelled here) open at
  market only within the entry range, and otherwise skip with a clear reason.

Sizing happens at the limit price for a resting order, so the user's collateral and leverage
limits hold at the price it fills at; the agent's and user's risk limits still win over the
call's stop and take profit (engine/levels_from_call.py).
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from datetime import datetime, timedelta
from decimal import Decimal

from sqlalchemy import select, update
from sqlalchemy.ext.asyncio import AsyncSession

from engine.prices import PriceBook
from storage.enums import OrderPurpose, OrderStatus
from storage.models import ClassificationRow, Order, Signal

BPS = Decimal(10_000)
DEFAULT_TTL_HOURS = 24
# venues whose adapter rests a good-till-cancelled limit order and can cancel it by client id
RESTING_VENUES = frozenset({"HYPERLIQUID"})

MARKET = "market"  # open now, the limit capped at the entry range
RESTING = "resting"  # rest at the entry until filled, expired or the stop is hit
SKIP = "skip"  # not traded: `reason`


@dataclass(frozen=True, slots=True)
class EntryPlan:
    kind: str
    limit_price: Decimal | None = None
    expires_at: datetime | None = None
    reason: str = ""


def entry_range(levels: Mapping[str, Decimal]) -> tuple[Decimal, Decimal] | None:
    """(low, high) of the stated entry: one price is a range of one."""
    entry = levels.get("entry")
    if entry is None:
        return None
    other = levels.get("entry_to", entry)
    return min(entry, other), max(entry, other)


def stop_passed(side: str, price: Decimal, stop: Decimal | None) -> bool:
    if stop is None:
        return False
    return price <= stop if side == "long" else price >= stop


def plan_entry(
    side: str,
    mark: Decimal,
    levels: Mapping[str, Decimal],
    slippage_bps: Decimal | None,
    venue: str,
    now: datetime,
    ttl: timedelta,
) -> EntryPlan | None:
    """How the open of a call goes given its stated entry; None: no entry stated (market as
    always)."""
    span = entry_range(levels)
    if span is None:
        return None
    if stop_passed(side, mark, levels.get("stop_loss")):
        return EntryPlan(SKIP, reason="stop_already_hit")
    low, high = span
    slip = (slippage_bps or Decimal(0)) / BPS
    if side == "long":
        cap, edge, reached = high * (1 + slip), high, mark <= high * (1 + slip)
    else:
        cap, edge, reached = low * (1 - slip), low, mark >= low * (1 - slip)
    if reached:
        return EntryPlan(MARKET, cap)
    if venue not in RESTING_VENUES:
        return EntryPlan(SKIP, reason="entry_not_reached")
    return EntryPlan(RESTING, edge, now + ttl)


async def apply_plan(session: AsyncSession, signal_id: int, plan: EntryPlan) -> None:
    """The limit on the signal's open orders just written (pending, awaiting approval or
    waiting for a flip's close): an UPDATE in the writer's transaction, before any is sent."""
    await session.execute(
        update(Order)
        .where(
            Order.signal_id == signal_id,
            Order.purpose == OrderPurpose.OPEN,
            Order.status.in_(
                [OrderStatus.PENDING, OrderStatus.AWAITING_APPROVAL, OrderStatus.WAITING]
            ),
        )
        .values(limit_price=plan.limit_price, limit_expires_at=plan.expires_at)
        .execution_options(synchronize_session=False)
    )


@dataclass(frozen=True, slots=True)
class DueEntry:
    order_id: int
    reason: str  # limit_expired / limit_stop_hit


async def due_entries(session: AsyncSession, now: datetime, prices: PriceBook) -> list[DueEntry]:
    """Resting entries to cancel: past their expiry, or whose call's stop the price reached
    before the entry filled."""
    rows = await session.execute(
        select(
            Order.id, Order.market, Order.side, Order.limit_expires_at, ClassificationRow.details
        )
        .join(Signal, Signal.id == Order.signal_id)
        .join(ClassificationRow, ClassificationRow.post_id == Signal.post_id, isouter=True)
        .where(
            Order.status == OrderStatus.PENDING,
            Order.purpose == OrderPurpose.OPEN,
            Order.limit_expires_at.is_not(None),
        )
        .order_by(Order.id)
    )
    due = []
    for oid, market, side, expires, details in rows:
        if expires <= now:
            due.append(DueEntry(oid, "limit_expired"))
            continue
        stop = ((details or {}).get("call_levels") or {}).get("stop_loss")
        price = prices.price(market)
        if stop is not None and price is not None and stop_passed(side, price, Decimal(stop)):
            due.append(DueEntry(oid, "limit_stop_hit"))
    return due
