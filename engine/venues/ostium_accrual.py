"""Ostium's rollover (and funding, on pairs that have it) accrued to a trade while it is open,
counted into our positions as Hyperliquid's funding is (`funding_usd`, in unrealized PnL while
open, in realized PnL at the close).

Ostium charges these only when a trade (or part of it) closes, in the FeesChargedV2 event. While
it is open, the accrued amount is read as ostium-python-sdk computes it (formulae.py, on the
subgraph's pair and trade): rollover = (accRollover now - the trade's accRollover at open) x
collateral x leverage, accRollover now = accRollover + (block - lastRolloverBlock) x
rolloverFeePerBlock; funding alike from the pair's funding state. Rounded down to USDC's unit,
as the chain's integer arithmetic does, and added to what earlier partial closes were charged.

`accrue_rollover` (scheduled with reconciliation) sets each open live position's `funding_usd`
to minus that total, under the position's row lock, and writes the change into
`funding_payments` (the ledger Hyperliquid's funding uses) under a key of the trade and block:
a second run or replica reading the same block records nothing twice, and the value set is the
chain's, never a sum of reads. At the close the venue's fill carries what the chain charged in
all (engine/venues/base.Fill.holding), which replaces the accrual: PnL equals the chain's."""

from __future__ import annotations

import asyncio
import logging
from collections import defaultdict
from collections.abc import Callable
from dataclasses import dataclass
from datetime import datetime
from decimal import ROUND_DOWN, Decimal
from typing import Any

from ostium_python_sdk.formulae import (
    PRECISION_2,
    PRECISION_6,
    PRECISION_18,
    GetCurrentRolloverFee,
    GetFundingRate,
    GetTradeFundingFee,
    GetTradeRolloverFee,
)
from sqlalchemy import func, select
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from engine.money.funding import split
from engine.reconcile import is_live
from storage.bulk import _insert, update_by_id
from storage.enums import PositionStatus
from storage.models import FundingPaymentRow, Position
from storage.types import utcnow

log = logging.getLogger(__name__)
USDC = Decimal("0.000001")


@dataclass(frozen=True, slots=True)
class Holding:
    """What a trade cost to hold so far: charged at partial closes plus accrued since."""

    trade_id: int
    charged: Decimal  # USDC paid (negative: received)
    block: int
    at_ms: int


def accrued(trade: dict[str, Any], block: int) -> Decimal:
    """Rollover plus funding accrued to an open trade at `block`, in USDC (the SDK's
    formulae in Decimal, rounded down to the unit)."""
    pair = trade["pair"]
    collateral = Decimal(trade["collateral"]) / PRECISION_6
    leverage = Decimal(trade["leverage"]) / PRECISION_2
    now = GetCurrentRolloverFee(
        pair["accRollover"], pair["lastRolloverBlock"], pair["rolloverFeePerBlock"], str(block)
    )
    total = GetTradeRolloverFee(
        Decimal(trade["rollover"]) / PRECISION_18, now / PRECISION_18, collateral, leverage
    )
    if int(pair["maxFundingFeePerBlock"]):  # a pair without funding has none of its state
        rate = GetFundingRate(
            pair["accFundingLong"],
            pair["accFundingShort"],
            pair["lastFundingRate"],
            pair["maxFundingFeePerBlock"],
            pair["lastFundingBlock"],
            str(block),
            pair["longOI"],
            pair["shortOI"],
            pair["maxOI"],
            pair["hillInflectionPoint"],
            pair["hillPosScale"],
            pair["hillNegScale"],
            pair["springFactor"],
            pair["sFactorUpScaleP"],
            pair["sFactorDownScaleP"],
        )
        side = "accFundingLong" if trade["isBuy"] else "accFundingShort"
        total += GetTradeFundingFee(
            Decimal(trade["funding"]) / PRECISION_18, Decimal(rate[side]), collateral, leverage
        )
    return total.quantize(USDC, rounding=ROUND_DOWN)


async def holdings(venue: Any, account: str) -> dict[str, Holding]:
    """Each open trade's holding cost so far, by market."""
    reader, chain = await venue.reader(), await venue.chain()
    trades = await venue.open_trades(account)
    if not trades:
        return {}
    block = await asyncio.to_thread(reader.w3.eth.get_block, "latest")
    out = {}
    for market, t in trades.items():
        trade_id = int(t["tradeID"])
        charged = await asyncio.to_thread(chain.holding_charged, trade_id)
        total = accrued(t, int(block["number"])) + sum(charged.values(), Decimal(0))
        out[market] = Holding(trade_id, total, int(block["number"]), int(block["timestamp"]) * 1000)
    return out


async def accrue_rollover(
    sessions: async_sessionmaker[AsyncSession],
    venue: Any,
    *,
    clock: Callable[[], datetime] = utcnow,
) -> int:
    """Bring every open live Ostium position's `funding_usd` to the chain's; returns how many
    changed."""
    async with sessions() as s:
        accounts = {
            a
            for (a,) in await s.execute(
                select(Position.account).where(
                    Position.venue == venue.name, Position.status == PositionStatus.OPEN
                )
            )
            if is_live(a)
        }
    changed = 0
    for account in sorted(accounts):
        try:
            read = await holdings(venue, account)
        except Exception as exc:  # one unreachable account must not stop the others
            log.warning("rollover: trades of %s unavailable: %r", account, exc)
            continue
        if read:
            async with sessions() as s, s.begin():
                changed += await _record(s, venue.name, account, read)
    return changed


async def _record(s: AsyncSession, venue: str, account: str, read: dict[str, Holding]) -> int:
    mine = (
        Position.venue == venue,
        Position.account == account,
        Position.status == PositionStatus.OPEN,
        Position.market.in_(list(read)),
    )
    # under the rows' lock: a close recorded alongside waits, and then is not overwritten
    locked = select(Position).where(*mine).order_by(Position.id).with_for_update(key_share=True)
    positions = list(await s.scalars(locked))
    latest = dict(
        (
            await s.execute(
                select(FundingPaymentRow.coin, func.max(FundingPaymentRow.paid_at_ms))
                .where(FundingPaymentRow.venue == venue, FundingPaymentRow.account == account)
                .group_by(FundingPaymentRow.coin)
            )
        ).all()
    )
    by_market: dict[str, list[Position]] = defaultdict(list)
    for p in positions:
        by_market[p.market].append(p)
    updates = []
    for market, held in by_market.items():
        h = read[market]
        if (latest.get(market) or 0) > h.at_ms:
            continue  # a newer read was recorded already: this one is stale
        targets = split(-h.charged, [p.size for p in held])
        delta = sum(targets, Decimal(0)) - sum(
            (p.funding_usd or Decimal(0) for p in held), Decimal(0)
        )
        if delta == 0:
            continue
        inserted = await s.execute(
            _insert(s, FundingPaymentRow.__table__)
            .values(
                venue=venue,
                account=account,
                coin=market,
                paid_at_ms=h.at_ms,
                payment_hash=f"ostium:{h.trade_id}:{h.block}",
                usdc=delta,
                positions=len(held),
                created_at=utcnow(),
            )
            .on_conflict_do_nothing()
            .returning(FundingPaymentRow.__table__.c.id)
        )
        if inserted.first() is None:
            continue  # this block's read was recorded by another run
        updates += [{"id": p.id, "funding_usd": t} for p, t in zip(held, targets, strict=True)]
    await update_by_id(s, Position, updates)
    return len(updates)
