"""The one interface every venue (paper, Hyperliquid, Ostium) implements.

Everything above it is identical for paper and real money. `place_order` must be idempotent
on `client_order_id`: a retry after a crash returns the original fill, never a second one.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from datetime import datetime
from decimal import Decimal
from enum import StrEnum
from typing import NamedTuple, Protocol

from engine.markets import MarketInfo


# NamedTuples, not frozen dataclasses: a fan-out or a tick makes one of each per order, and a
# frozen dataclass sets each field through object.__setattr__ (2.5 us for eleven fields,
# against 0.45 us for a NamedTuple): immutable either way
class OrderRequest(NamedTuple):
    client_order_id: str
    account: str
    market: str
    side: str  # side of the position being opened or closed: "long" / "short"
    size: Decimal
    leverage: Decimal
    reduce_only: bool = False
    max_slippage_bps: Decimal | None = None
    isolated: bool = False  # isolated margin where the venue has it; cross otherwise
    # the worst price an open may fill at (a call's stated entry, engine/limit_orders.py);
    # `resting`: if it cannot fill now it rests at the venue (good till cancelled) at that price
    limit_price: Decimal | None = None
    resting: bool = False


class Fill(NamedTuple):
    client_order_id: str
    price: Decimal
    size: Decimal
    fee: Decimal
    venue_order_id: str
    filled_at: datetime | None = None
    # a venue that settles funding or rollover with the close (Ostium) reports here everything
    # it charged the position so far (negative: paid); the books' running accrual of it is
    # replaced by this, not added to it. None: the venue settles funding apart (Hyperliquid).
    holding: Decimal | None = None


class OrderState(StrEnum):
    """What a venue knows of an order we may have sent, looked up by client order id."""

    UNKNOWN = "unknown"  # the venue never saw it: safe to send
    OPEN = "open"  # resting or triggered, not done: wait, never send again
    FILLED = "filled"  # done with fills we have (in `OrderLookup.fill`)
    FILLED_FILLS_PENDING = "filled_fills_pending"  # filled, fills not found yet: look again
    CANCELED = "canceled"  # done without a fill (an IOC that found no liquidity): final


@dataclass(frozen=True, slots=True)
class OrderLookup:
    state: OrderState
    fill: Fill | None = None  # with FILLED (a partial IOC fill is FILLED with its size)
    detail: str = ""


class VenueRejected(Exception):
    """The venue refused the order; `reason` is a short code, the message is for humans.
    `retryable`: the refusal is about now (no price yet, busy), not about the order."""

    def __init__(self, reason: str, message: str = "", retryable: bool = False) -> None:
        super().__init__(message or reason)
        self.reason = reason
        self.retryable = retryable


class OrderResting(VenueRejected):
    """A resting limit order was placed and has not filled: the order stays pending (never sent
    again, looked up by its client order id) until it fills or is cancelled."""

    def __init__(self, message: str = "resting at its limit price") -> None:
        super().__init__("resting", message, retryable=True)


class Venue(Protocol):
    name: str

    def markets(self) -> Mapping[str, MarketInfo]: ...

    async def place_order(self, order: OrderRequest) -> Fill: ...

    async def find_order(self, account: str, client_order_id: str) -> Fill | None:
        """The fill of an order we may have sent before a crash, or None if never seen.
        A venue that can tell more (resting, canceled, filled with fills not found yet) also
        has `look_up(account, client_order_id) -> OrderLookup`; the engine never sends an
        order again unless the look-up says UNKNOWN."""
        ...


async def look_up(venue: Venue, account: str, client_order_id: str) -> OrderLookup:
    """`venue.look_up` where the venue has it; venues that only know fills (paper, test
    doubles) answer FILLED with the fill or UNKNOWN."""
    own = getattr(venue, "look_up", None)
    if own is not None:
        return await own(account, client_order_id)
    fill = await venue.find_order(account, client_order_id)
    return OrderLookup(OrderState.UNKNOWN if fill is None else OrderState.FILLED, fill)
