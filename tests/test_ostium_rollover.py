"""Ostium's rollover accrues to an open trade block by block; it is charged only at the close.
Read while the trade is open the way the SDK reads it (the subgraph's accRollover), it is
recorded into the position's funding (the ledger Hyperliquid's funding uses), counted in the
unrealized PnL; at the close the chain's charge replaces the accrual: PnL equals the wallet's
change to the last unit."""

from __future__ import annotations

from decimal import ROUND_DOWN, Decimal

from sqlalchemy import select

from engine.ingest import IncomingPost
from engine.prices import PriceTick
from engine.venues.ostium_accrual import accrue_rollover
from storage.models import FundingPaymentRow, Position
from storage.types import utcnow
from tests.ostium_helpers import funded_trader
from tests.test_ostium_pipeline import is_closed, live_engine, seed, until

UNIT = Decimal("0.000001")


def mine(ostium, blocks: int) -> None:
    ostium.w3.provider.make_request("anvil_mine", [hex(blocks)])


def rollover_at(ostium, block: int) -> Decimal:
    """What the mock charges trade 1 if it closed at `block`: collateral x leverage x
    rolloverFeePerBlock x blocks open, in USDC units, rounded down (the chain's integers)."""
    t, _, open_block, _, _ = ostium.contracts.ostium.functions.tradeOf(1).call()
    rate = ostium.pair("XAU").rollover_per_block
    units = t[0] * t[5] * rate * (block - open_block) // 100 // 10**18
    return Decimal(units) * UNIT


async def _ledger(sessions) -> list[FundingPaymentRow]:
    async with sessions() as s:
        return list((await s.execute(select(FundingPaymentRow))).scalars())


async def test_rollover_accrues_while_open_and_the_close_equals_the_chain(sessions, ostium) -> None:
    trader = funded_trader(ostium, usdc="1000")
    await seed(sessions, [trader])
    engine, venue, prices = await live_engine(sessions, ostium, [trader])
    prices.update(PriceTick(utcnow(), "XAU", Decimal(2000)))
    await engine.ingest(IncomingPost("x", "@goldbug", "1", "Long $XAU now", utcnow()))
    async with sessions() as s:
        pos = (await s.execute(select(Position))).scalar_one()
    assert pos.status == "open" and pos.funding_usd == 0

    mine(ostium, 500)  # held across blocks: 500 x 1e-6 of 499 USDC notional
    assert await accrue_rollover(sessions, venue) == 1
    [row] = await _ledger(sessions)
    read_block = int(row.payment_hash.rsplit(":", 1)[1])
    async with sessions() as s:
        pos = await s.get_one(Position, pos.id)
    assert pos.funding_usd == -rollover_at(ostium, read_block) < 0
    assert row.usdc == pos.funding_usd and row.venue == "OSTIUM" and row.coin == "XAU"
    assert pos.funding_usd.quantize(UNIT, rounding=ROUND_DOWN) == pos.funding_usd
    # the same block read again records nothing twice
    assert await accrue_rollover(sessions, venue) == 0

    mine(ostium, 1000)
    assert await accrue_rollover(sessions, venue) == 1
    rows = await _ledger(sessions)
    async with sessions() as s:
        pos = await s.get_one(Position, pos.id)
    later = int(max(rows, key=lambda r: r.id).payment_hash.rsplit(":", 1)[1])
    assert pos.funding_usd == -rollover_at(ostium, later)
    assert sum((r.usdc for r in rows), Decimal(0)) == pos.funding_usd  # the ledger adds up

    await engine.close_positions({pos.id: "manual"})
    await until(lambda: is_closed(sessions, pos.id))
    async with sessions() as s:
        pos = await s.get_one(Position, pos.id)
    chain = await venue.chain()
    [charged] = chain.holding_charged(1).values()
    # the chain's own charge at the close (more blocks than the last read) replaced the
    # accrual; no closing fee; the books equal the wallet to the last unit
    assert pos.funding_usd == -charged and charged >= rollover_at(ostium, later)
    assert pos.close_fee == 0
    gross = (pos.exit_price - pos.entry_price) * pos.size
    assert pos.realized_pnl == gross - pos.open_fee + pos.funding_usd
    assert ostium.usdc_balance(trader.user.address) - Decimal(1000) == pos.realized_pnl
