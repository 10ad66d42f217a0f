"""What Hyperliquid says happened, read after the fact: an account's fills by time (with the
fee Hyperliquid charged on each) and its funding payments.

Why by time: `userFills` answers only the 2,000 most recent fills, so on a busy account an
older order's fills are simply absent from it. `userFillsByTime` reaches the 10,000 most
recent, at most 2,000 a call, oldest first from `startTime`: asked for the window of one
order (its placement to its final status) it finds that order's fills however busy the
account is. `userFunding` answers at most 500 payments a call, oldest first. Both are paged
by moving `startTime` to the last returned time (inclusive: rows are de-duplicated).

Both cost 20 weight plus 1 per 20 rows returned (hyperliquid_limits), against 1 for an order:
they are for look-ups and periodic settlement, not for every order's hot path.

For the engine (the wiring is the engine's; these are the venue's calls):

Real fees. An order's answer carries no fee, so `HyperliquidVenue.place_order` records one
estimated at the configured taker rate. Reading the fills right after each order instead
would cost 20 weight per order (an order costs 1), cut the orders a minute the budget allows
by about twenty times, and race /info, which may not show a fill of that block yet. So the
fee is settled afterwards: for each live fill recorded with an estimated fee, once it is a
few seconds old, call `venue.fills_of(account, int(fill.venue_order_id), since_ms=<when the
order was sent, ms, minus 1000>)`; when it returns fills, replace the recorded fee (and
price and size) by `combine(client_order_id, fills)`: they then equal what Hyperliquid
booked, to the last digit. To settle all of one account's recent orders in one request, call
`venue.fills_since(account, oldest_send_ms)` and group by `VenueFill.oid`. In the
reconciliation pass (per account with recent live fills, every minute or so) that is one or
two /info requests per account.

Funding. Hyperliquid pays funding on the hour, per coin per account. Once an hour (a few
minutes past it), for every account with a live position open, call
`venue.funding_payments(account, since_ms=<the latest payment time already accrued for the
account, ms, + 1; at first the open time of its oldest open position>)` and add each
payment's `usdc` (> 0 received, < 0 paid) to the account's open position in `payment.coin`
that was open at `payment.time`, storing `payment.key` so that a payment read twice is
accrued once. Realized PnL at close is then the venue's fills minus its fees plus the
funding accrued. Where one account holds several of our positions in one coin, Hyperliquid
paid the net position: split by their sizes.
"""

from __future__ import annotations

import logging
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from datetime import UTC, datetime
from decimal import Decimal
from typing import Any

from engine.venues.base import Fill

log = logging.getLogger(__name__)

FILLS_PAGE = 2000  # userFillsByTime answers at most this many
FUNDING_PAGE = 500  # HL: a time-ranged answer holds at most 500 elements
MAX_PAGES = 50  # a bound on one read, far above the 10,000 fills HL keeps

InfoCall = Callable[[str, dict[str, Any]], Awaitable[Any]]


@dataclass(frozen=True, slots=True)
class VenueFill:
    """One fill as Hyperliquid reports it: the price, size and fee it booked."""

    oid: int
    cloid: str | None
    coin: str
    price: Decimal
    size: Decimal
    fee: Decimal  # USDC charged (negative: a maker rebate)
    closed_pnl: Decimal
    time_ms: int
    tid: int

    @classmethod
    def parse(cls, row: dict[str, Any]) -> VenueFill:
        return cls(
            oid=int(row["oid"]),
            cloid=row.get("cloid"),
            coin=row["coin"],
            price=Decimal(row["px"]),
            size=Decimal(row["sz"]),
            fee=Decimal(row["fee"]),
            closed_pnl=Decimal(row["closedPnl"]),
            time_ms=int(row["time"]),
            tid=int(row["tid"]),
        )


@dataclass(frozen=True, slots=True)
class FundingPayment:
    """One funding payment to the account's position in `coin`: `usdc` > 0 received, < 0
    paid (Hyperliquid: -size * oracle price * rate, hourly). `(hash, coin, time)` identifies
    it, so accruing it twice can be refused."""

    coin: str
    usdc: Decimal
    time: datetime
    size: Decimal  # the signed position size it was paid on
    funding_rate: Decimal
    hash: str

    @property
    def key(self) -> tuple[str, str, int]:
        return (self.hash, self.coin, int(self.time.timestamp() * 1000))


def combine(client_order_id: str, fills: list[VenueFill]) -> Fill:
    """One order's fills as one Fill: total size, size-weighted price, the fees summed as
    charged (each already in whole USDC units, so the sum is exact)."""
    size = sum((f.size for f in fills), Decimal(0))
    price = sum((f.price * f.size for f in fills), Decimal(0)) / size
    fee = sum((f.fee for f in fills), Decimal(0))
    last = max(f.time_ms for f in fills)
    at = datetime.fromtimestamp(last / 1000, UTC)
    return Fill(client_order_id, price, size, fee, str(fills[0].oid), at)


async def _paged(
    info: InfoCall, kind: str, body: dict[str, Any], start_ms: int, page: int
) -> list[dict[str, Any]]:
    """Every row of a time-ranged /info answer from start_ms on, page after page."""
    rows: list[dict[str, Any]] = []
    start = start_ms
    for _ in range(MAX_PAGES):
        got = list(await info(kind, body | {"startTime": start}))
        rows += got
        if len(got) < page:
            return rows
        last = max(int(r["time"]) for r in got)
        if last <= start:  # a whole page in one millisecond: the rest of it can't be paged to
            log.warning("%s: %d rows at %d ms; moving past them", kind, len(got), last)
            last = start + 1
        start = last
    log.warning("%s: stopped after %d pages", kind, MAX_PAGES)
    return rows


async def fills_by_time(
    info: InfoCall, account: str, start_ms: int, end_ms: int | None = None
) -> list[VenueFill]:
    body: dict[str, Any] = {"user": account, "aggregateByTime": False}
    if end_ms is not None:
        body["endTime"] = end_ms
    rows = await _paged(info, "userFillsByTime", body, start_ms, FILLS_PAGE)
    unique = {int(r["tid"]): VenueFill.parse(r) for r in rows}  # pages overlap at their edge
    return sorted(unique.values(), key=lambda f: (f.time_ms, f.tid))


async def funding_by_time(
    info: InfoCall, account: str, start_ms: int, end_ms: int | None = None
) -> list[FundingPayment]:
    body: dict[str, Any] = {"user": account}
    if end_ms is not None:
        body["endTime"] = end_ms
    rows = await _paged(info, "userFunding", body, start_ms, FUNDING_PAGE)
    unique: dict[tuple[str, str, int], FundingPayment] = {}
    for r in rows:
        delta = r["delta"]
        if delta.get("type") != "funding":
            continue
        payment = FundingPayment(
            coin=delta["coin"],
            usdc=Decimal(delta["usdc"]),
            time=datetime.fromtimestamp(int(r["time"]) / 1000, UTC),
            size=Decimal(delta["szi"]),
            funding_rate=Decimal(delta["fundingRate"]),
            hash=r["hash"],
        )
        unique[payment.key] = payment
    return sorted(unique.values(), key=lambda p: (p.time, p.coin))
