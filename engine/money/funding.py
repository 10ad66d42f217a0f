"""Funding: what the venue paid (or charged) our live positions, accrued to them.

Hyperliquid pays funding on the hour, per coin per account, on the account's net position.
Once an hour (a few minutes past it), for every account holding a live position (or one that
closed within `lookback`), this job reads the payments since the latest one already accrued for
the account (inclusive; at first since its oldest such position opened) and, for each payment
not seen before, adds its `usdc` to `funding_usd` of our positions in that coin that were open
at the payment's time, on the payment's side. Where one account holds several of ours in one
coin, the payment is split by their sizes (the last share takes the rounding remainder, so the
shares sum exactly to the payment). A position already closed gets it in its realized PnL too
(the ledger follows engine/money/corrections.py).

Each payment is recorded under the venue's own key (account, coin, time, hash) in
`funding_payments`, unique, in the transaction that accrues it: a payment read twice (an
overlapping read, a retried job, a second replica) is accrued once. A payment for a coin none
of our positions held (the user's own trading) is recorded with no shares, and never accrued.
"""

from __future__ import annotations

import logging
from collections.abc import Callable
from dataclasses import dataclass
from datetime import datetime, timedelta
from decimal import Decimal
from typing import Protocol

from sqlalchemy import func, or_, select
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from engine.money.corrections import share_if_unshared
from engine.venues.hyperliquid_history import FundingPayment
from storage.bulk import _insert, update_by_id
from storage.enums import PositionStatus
from storage.models import FundingPaymentRow, Position
from storage.types import quantize, utcnow

log = logging.getLogger(__name__)


class FundingVenue(Protocol):
    name: str

    async def funding_payments(
        self, account: str, since_ms: int, until_ms: int | None = None
    ) -> list[FundingPayment]: ...


@dataclass(frozen=True, slots=True)
class FundingResult:
    payments: int = 0  # new payments recorded
    accrued: Decimal = Decimal(0)  # USDC added to our positions (net)


def _ms(at: datetime) -> int:
    return int(at.timestamp() * 1000)


def split(usdc: Decimal, sizes: list[Decimal]) -> list[Decimal]:
    """`usdc` in shares proportional to `sizes`, summing exactly to `usdc`."""
    total = sum(sizes, Decimal(0))
    if not sizes or total <= 0:
        return []
    shares = [quantize(usdc * s / total) for s in sizes[:-1]]
    return [*shares, usdc - sum(shares, Decimal(0))]


async def accrue_funding(
    sessions: async_sessionmaker[AsyncSession],
    venue: FundingVenue,
    *,
    clock: Callable[[], datetime] = utcnow,
    lookback: timedelta = timedelta(hours=3),
) -> FundingResult:
    now = clock()
    async with sessions() as s:
        rows = (
            await s.execute(
                select(Position.account, Position.opened_at).where(
                    Position.venue == venue.name,
                    or_(
                        Position.status == PositionStatus.OPEN,
                        Position.closed_at >= now - lookback,
                    ),
                )
            )
        ).all()
        oldest: dict[str, datetime] = {}
        for account, opened_at in rows:
            if account.startswith("paper:"):
                continue
            oldest[account] = min(opened_at, oldest.get(account, opened_at))
        latest = dict(
            (
                await s.execute(
                    select(FundingPaymentRow.account, func.max(FundingPaymentRow.paid_at_ms))
                    .where(FundingPaymentRow.account.in_(list(oldest)))
                    .group_by(FundingPaymentRow.account)
                )
            ).all()
        )
    result = FundingResult()
    for account, opened_at in oldest.items():
        since = latest.get(account) or _ms(opened_at)
        try:
            payments = await venue.funding_payments(account, since)
        except Exception as exc:  # one unreachable account must not stop the others
            log.warning("funding: payments of %s unavailable: %r", account, exc)
            continue
        if not payments:
            continue
        async with sessions() as s, s.begin():
            got = await _accrue(s, venue.name, account, payments)
        result = FundingResult(result.payments + got.payments, result.accrued + got.accrued)
    return result


async def _accrue(
    session: AsyncSession, venue: str, account: str, payments: list[FundingPayment]
) -> FundingResult:
    coins = {p.coin for p in payments}
    positions = (
        (
            await session.execute(
                select(Position)
                .where(
                    Position.venue == venue,
                    Position.account == account,
                    Position.market.in_(coins),
                    or_(
                        Position.status == PositionStatus.OPEN,
                        Position.closed_at > min(p.time for p in payments),
                    ),
                )
                .order_by(Position.id)
                .with_for_update(key_share=True)  # a close or fee settlement alongside waits
            )
        )
        .scalars()
        .all()
    )
    funding = {p.id: p.funding_usd or Decimal(0) for p in positions}
    realized = {p.id: p.realized_pnl for p in positions}
    touched: set[int] = set()
    result = FundingResult()
    for pay in payments:
        held = [
            p
            for p in positions
            if p.market == pay.coin
            and p.opened_at <= pay.time
            and (p.closed_at is None or p.closed_at > pay.time)
            and (p.side == "long") == (pay.size > 0)
        ]
        # the key first: a payment another run recorded already is skipped, not re-accrued
        inserted = await session.execute(
            _insert(session, FundingPaymentRow.__table__)
            .values(
                venue=venue,
                account=account,
                coin=pay.coin,
                paid_at_ms=pay.key[2],
                payment_hash=pay.hash,
                usdc=pay.usdc,
                positions=len(held),
                created_at=utcnow(),
            )
            .on_conflict_do_nothing()
            .returning(FundingPaymentRow.__table__.c.id)
        )
        if inserted.first() is None:
            continue
        result = FundingResult(result.payments + 1, result.accrued)
        # split by size: what an open position holds now, what a closed one closed
        for p, share in zip(held, split(pay.usdc, [p.size for p in held]), strict=True):
            funding[p.id] += share
            if realized[p.id] is not None:
                realized[p.id] = quantize(realized[p.id] + share)
            touched.add(p.id)
            result = FundingResult(result.payments, result.accrued + share)
    await update_by_id(
        session,
        Position,
        [
            {"id": pid, "funding_usd": funding[pid], "realized_pnl": realized[pid]}
            for pid in touched
        ],
    )
    await share_if_unshared(
        session,
        [p.id for p in positions if p.id in touched and p.status == PositionStatus.CLOSED],
    )
    return result
