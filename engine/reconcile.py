"""Reconciliation with a live venue: our books against the venue's own state.

Positions: for each live account, our open positions per market are compared with the
venue's `clearinghouseState`. A market we hold that the venue no longer does was closed
outside Maxxit (a liquidation, a manual close in the venue's app): it is closed in our books
at the venue's own closing fills, through the normal close path (close order, PnL, profit
share, alert), so nothing about it is special-cased downstream.

Orders: pending orders are looked up by cloid by `Engine.resume_pending`, run alongside.
"""

from __future__ import annotations

import logging
from collections import defaultdict
from dataclasses import dataclass
from decimal import Decimal
from typing import Any, Protocol

from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from engine.orders import Outcome
from engine.venues.base import Fill, OrderRequest, VenueRejected
from storage.enums import CloseReason, OrderPurpose, PositionStatus
from storage.models import Order, Position

log = logging.getLogger(__name__)
# the venue's refusal of a reduce-only close of a position it no longer holds
# (engine/venues/hyperliquid_errors.py): a resting trigger, or a close outside Maxxit, was first
CLOSED_AT_VENUE = "reduce_only_increase"


class LiveVenue(Protocol):
    name: str

    async def positions(self, account: str) -> list[Any]: ...

    async def user_fills(self, account: str) -> list[dict[str, Any]]: ...


@dataclass(frozen=True, slots=True)
class ExternalClose:
    position_id: int
    price: Decimal
    size: Decimal
    fee: Decimal
    reason: str  # CloseReason.EXTERNAL or CloseReason.LIQUIDATION
    venue_order_id: str
    holding: Decimal | None = None  # rollover or funding settled with it (engine/venues/base)


def is_live(account: str) -> bool:
    return not account.startswith("paper:")


async def find_external_closes(
    sessions: async_sessionmaker[AsyncSession], venue: LiveVenue
) -> list[ExternalClose]:
    async with sessions() as s:
        rows = (
            (
                await s.execute(
                    select(Position).where(
                        Position.status == PositionStatus.OPEN, Position.venue == venue.name
                    )
                )
            )
            .scalars()
            .all()
        )
    by_account: dict[str, list[Position]] = defaultdict(list)
    for p in rows:
        if is_live(p.account):
            by_account[p.account].append(p)
    out: list[ExternalClose] = []
    for account, ours in by_account.items():
        try:
            held = {vp.market: vp.size for vp in await venue.positions(account)}
        except Exception as exc:  # one unreachable account must not stop the others
            log.warning("reconcile: positions of %s unavailable: %r", account, exc)
            continue
        gone = [p for p in ours if _gone(p, held.get(p.market, Decimal(0)))]
        if not gone:
            continue
        fills = await venue.user_fills(account)
        for p in gone:
            close = _closing_fill(p, fills)
            if close is None:
                log.info(
                    "reconcile: %s %s gone at the venue, fills not visible yet", account, p.market
                )
                continue
            out.append(close)
    return out


def _gone(p: Position, venue_size: Decimal) -> bool:
    """The venue holds nothing on our side of this market any more."""
    if p.side == "long":
        return venue_size <= 0
    return venue_size >= 0


def _closing_fill(p: Position, fills: list[dict[str, Any]]) -> ExternalClose | None:
    opened_ms = int(p.opened_at.timestamp() * 1000)
    closing = [
        f
        for f in fills
        if f.get("coin") == p.market
        and int(f.get("time", 0)) >= opened_ms
        and (str(f.get("dir", "")).startswith("Close") or f.get("liquidation"))
        and (("Long" in str(f.get("dir", ""))) == (p.side == "long") or f.get("liquidation"))
    ]
    if not closing:
        return None
    size = sum((Decimal(str(f["sz"])) for f in closing), Decimal(0))
    if size <= 0:
        return None
    price = sum((Decimal(str(f["px"])) * Decimal(str(f["sz"])) for f in closing), Decimal(0)) / size
    # the position's share of the closing fees, by size
    fee = sum((Decimal(str(f.get("fee", 0))) for f in closing), Decimal(0)) * min(
        Decimal(1), p.size / size
    )
    liquidated = any(f.get("liquidation") for f in closing)
    return ExternalClose(
        p.id,
        price,
        p.size,
        fee,
        CloseReason.LIQUIDATION if liquidated else CloseReason.EXTERNAL,
        str(closing[-1].get("oid", "")),
    )


class AdoptVenue:
    """Stands in for the venue when recording external closes: every close order 'finds'
    the venue's own closing fill, and nothing is ever placed."""

    def __init__(self, name: str, fills: dict[str, Fill]) -> None:
        self.name = name
        self._fills = fills

    def markets(self) -> dict[str, Any]:
        return {}

    async def place_order(self, order: OrderRequest) -> Fill:
        raise VenueRejected("external_close_missing", "no venue fill to adopt")

    async def find_order(self, account: str, client_order_id: str) -> Fill | None:
        return self._fills.get(client_order_id)


async def close_cloids(session: AsyncSession, position_ids: list[int]) -> dict[int, str]:
    """The client order id of each position's close order, as written (engine/close.py)."""
    rows = (
        await session.execute(
            select(Position.id, Order.client_order_id)
            .join(
                Order,
                (Order.signal_id == Position.signal_id)
                & (Order.deployment_id == Position.deployment_id)
                & (Order.purpose == OrderPurpose.CLOSE),
            )
            .where(Position.id.in_(position_ids))
            # the newest close attempt last (a close that filled in part has later ones)
            .order_by(Order.close_seq)
        )
    ).all()
    return dict(rows)


def fills_for(closes: list[ExternalClose], cloids: dict[int, str]) -> dict[str, Fill]:
    return {
        cloids[c.position_id]: Fill(
            cloids[c.position_id], c.price, c.size, c.fee, c.venue_order_id, holding=c.holding
        )
        for c in closes
        if c.position_id in cloids
    }


async def open_sizes(
    sessions: async_sessionmaker[AsyncSession], position_ids: list[int]
) -> dict[int, Decimal]:
    """The size of each position still open in our books: what an adopted close closes."""
    async with sessions() as s:
        rows = await s.execute(
            select(Position.id, Position.size).where(
                Position.id.in_(position_ids), Position.status == PositionStatus.OPEN
            )
        )
        return dict(rows.all())


def closed_at_venue(outcomes: list[Outcome]) -> dict[int, str]:
    """Order id -> venue, of live closes the venue refused because it no longer holds the
    position: reconciliation, not a retry, settles those (at the venue's own fill)."""
    return {
        o.order.id: o.order.venue
        for o in outcomes
        if o.rejected == CLOSED_AT_VENUE
        and o.order.purpose == OrderPurpose.CLOSE
        and is_live(o.order.account)
    }
