"""Live books equal the venue's money (issue 19, items 4 and 5, engine side), through the
engine and the unmodified SDK against the Hyperliquid stand-in: a close that fills in part
keeps the rest open and is retried until flat; fees are settled from the venue's fills;
funding is accrued once per payment; realized PnL is the venue's fills minus its fees plus
funding, to the last digit."""

from __future__ import annotations

import asyncio
from datetime import UTC, datetime, timedelta
from decimal import Decimal

from sqlalchemy import select

from engine.fills import record
from engine.ingest import IncomingPost
from engine.money.fees import settle_fees
from engine.money.funding import accrue_funding, split
from engine.orders import PENDING_COLUMNS, Outcome, PendingOrder
from engine.prices import PriceTick
from engine.venues.base import Fill
from storage.models import FundingPaymentRow, LedgerEntry, Order, Position
from tests.hl_helpers import funded_trader
from tests.peers.hyperliquid_api import HyperliquidPeer
from tests.test_hyperliquid_pipeline import live_engine, seed

HOUR = timedelta(hours=1)


class Clock:
    """The engine's clock, moved by the test (positions open three hours ago, so the funding
    payments of the last hours fall while they were open)."""

    def __init__(self, at: datetime) -> None:
        self.at = at

    def __call__(self) -> datetime:
        return self.at


def ms(at: datetime) -> int:
    return int(at.timestamp() * 1000)


async def position(sessions, pid: int | None = None) -> Position:
    async with sessions() as s:
        if pid is None:
            return (await s.execute(select(Position))).scalar_one()
        return await s.get_one(Position, pid)


async def close_orders(sessions) -> list[Order]:
    async with sessions() as s:
        rows = await s.execute(
            select(Order).where(Order.purpose == "close").order_by(Order.close_seq)
        )
        return list(rows.scalars().all())


def venue_money(peer: HyperliquidPeer, account: str) -> tuple[Decimal, Decimal, Decimal]:
    """What the stand-in booked for the account: closedPnl and fees of its fills, funding."""
    acct = peer.book.account(account)
    assert acct is not None
    fills, fundings = acct.fills, acct.fundings
    return (
        sum((f.closed_pnl for f in fills), Decimal(0)),
        sum((f.fee for f in fills), Decimal(0)),
        sum((f.usdc for f in fundings), Decimal(0)),
    )


async def test_a_partial_close_ends_flat_after_retries(sessions, peer) -> None:
    trader = await funded_trader(peer)
    account = trader.user.address
    await seed(sessions, [trader])
    peer.set_fees(taker="0.00035", maker="0.0001")  # not the estimated 4.5 bps
    clock = Clock(datetime.now(UTC))
    engine, venue, _ = await live_engine(sessions, peer, [trader], eth="2000", clock=clock)
    await engine.ingest(IncomingPost("x", "@hawk", "1", "Long $ETH now", clock()))
    pos = await position(sessions)
    assert pos.size == peer.positions(account)["ETH"].szi == Decimal("0.15")

    peer.set_mid("ETH", "2100")
    peer.set_liquidity("ETH", "0.05")  # a thin book: the close meets 0.05 of 0.15
    await engine.close_positions({pos.id: "manual"})
    pos = await position(sessions, pos.id)
    assert pos.status == "open" and pos.size == peer.positions(account)["ETH"].szi
    assert (pos.size, pos.closed_size) == (Decimal("0.10"), Decimal("0.05"))
    assert pos.id in engine.watch.watched  # still under watch

    # a second recorder of the same outcome changes nothing
    first = (await close_orders(sessions))[0]
    async with sessions() as s, s.begin():
        row = (await s.execute(select(*PENDING_COLUMNS).where(Order.id == first.id))).one()
        again = Outcome(
            PendingOrder.from_row(row),
            fill=Fill(first.client_order_id, Decimal(2100), Decimal("0.05"), Decimal(0), "1"),
        )
        done = await record(s, [again], clock())
    assert done.events == [] and done.refused_closes == []
    assert (await position(sessions, pos.id)).size == Decimal("0.10")

    # the retries: each on the market's next tick, each a new order with a new cloid
    for liquidity, held in (("0.04", Decimal("0.06")), (None, None)):
        peer.set_liquidity("ETH", *([liquidity] if liquidity else []))
        clock.at += timedelta(seconds=10)
        await engine.on_price(PriceTick(clock(), "ETH", Decimal(2100)))
        pos = await position(sessions, pos.id)
        if held is not None:
            assert pos.status == "open" and pos.size == held
            assert peer.positions(account)["ETH"].szi == held  # books equal the venue's
    assert pos.status == "closed" and "ETH" not in peer.positions(account)
    closes = await close_orders(sessions)
    assert [(o.close_seq, o.status, o.filled_size) for o in closes] == [
        (0, "filled", Decimal("0.05")),
        (1, "filled", Decimal("0.04")),
        (2, "filled", Decimal("0.06")),
    ]
    assert len({o.client_order_id for o in closes}) == 3
    assert [o.cloid for o in peer.orders(account) if o.reduce_only] == [
        o.client_order_id for o in closes
    ]
    assert (pos.size, pos.closed_size, pos.exit_price) == (
        Decimal("0.15"), Decimal("0.15"), Decimal(2100)
    )  # fmt: skip
    assert pos.close_reason == "manual" and pos.id not in engine.watch.watched

    # fees as Hyperliquid charged them: the realized PnL is its closedPnl minus its fees
    closed_pnl, fees, _ = venue_money(peer, account)
    assert closed_pnl == Decimal("15.000000")
    assert pos.realized_pnl != closed_pnl - fees  # the estimated fees are not the charged ones
    settled = await settle_fees(sessions, venue, clock=clock, settle_after=timedelta(0))
    assert (settled.settled, settled.positions) == (4, 1)  # one open, three closes
    pos = await position(sessions, pos.id)
    assert pos.realized_pnl == closed_pnl - fees
    assert pos.open_fee + pos.close_fee == fees
    again = await settle_fees(sessions, venue, clock=clock, settle_after=timedelta(0))
    assert again.settled == 0  # settled once


async def test_pnl_is_the_venues_fills_minus_its_fees_plus_funding(sessions, peer) -> None:
    trader = await funded_trader(peer)
    account = trader.user.address
    await seed(sessions, [trader])
    peer.set_fees(taker="0.00035", maker="0.0001")  # a fee tier below the estimated 4.5 bps
    now = datetime.now(UTC)
    clock = Clock(now - 3 * HOUR)
    engine, venue, _ = await live_engine(sessions, peer, [trader], eth="2000", clock=clock)
    await engine.ingest(IncomingPost("x", "@hawk", "1", "Long $ETH now", clock()))
    pos = await position(sessions)
    # the open's fee is settled while the position is open
    clock.at = now - 3 * HOUR + timedelta(minutes=1)
    assert (await settle_fees(sessions, venue, clock=clock, settle_after=timedelta(0))).settled == 1
    pos = await position(sessions, pos.id)
    assert pos.open_fee == peer.fills(account)[0].fee == Decimal("0.105")
    assert pos.size == Decimal("0.15") and pos.realized_pnl is None

    peer.pay_funding("ETH", "0.0000125", at_ms=ms(now - 2 * HOUR))  # the long pays
    peer.pay_funding("ETH", "-0.00002", oracle_px="2050", at_ms=ms(now - HOUR))  # receives
    clock.at = now
    got = await accrue_funding(sessions, venue, clock=clock)
    assert (got.payments, got.accrued) == (2, Decimal("-0.00375") + Decimal("0.00615"))
    assert (await accrue_funding(sessions, venue, clock=clock)).payments == 0  # once
    pos = await position(sessions, pos.id)
    assert pos.funding_usd == Decimal("0.0024")

    peer.set_mid("ETH", "2100")
    await engine.close_positions({pos.id: "take_profit"})
    pos = await position(sessions, pos.id)
    closed_pnl, fees, funding = venue_money(peer, account)
    assert (closed_pnl, funding) == (Decimal("15.000000"), Decimal("0.0024"))
    assert pos.realized_pnl != closed_pnl - fees + funding  # the close's fee is an estimate
    clock.at = now + timedelta(minutes=1)
    assert (await settle_fees(sessions, venue, clock=clock, settle_after=timedelta(0))).settled == 1
    pos = await position(sessions, pos.id)
    assert pos.realized_pnl == closed_pnl - fees + funding == Decimal("14.78715")
    assert (pos.open_fee, pos.close_fee) == (Decimal("0.105"), Decimal("0.11025"))


async def test_a_payment_is_never_accrued_twice(sessions, peer) -> None:
    trader = await funded_trader(peer)
    account = trader.user.address
    await seed(sessions, [trader, trader])  # two deployments trading one account
    now = datetime.now(UTC)
    clock = Clock(now - 3 * HOUR)
    engine, venue, _ = await live_engine(sessions, peer, [trader], eth="2000", clock=clock)
    await engine.ingest(IncomingPost("x", "@hawk", "1", "Long $ETH now", clock()))
    assert peer.positions(account)["ETH"].szi == Decimal("0.30")  # netted at the venue
    [paid] = peer.pay_funding("ETH", "0.0000125", at_ms=ms(now - 2 * HOUR))
    assert paid.usdc == Decimal("-0.0075")
    clock.at = now
    # two runs at once (two replicas, or a retried job), then a third: accrued once
    runs = await asyncio.gather(
        *(accrue_funding(sessions, venue, clock=clock) for _ in range(2)),
        return_exceptions=True,
    )
    await accrue_funding(sessions, venue, clock=clock)
    assert sum(r.payments for r in runs if not isinstance(r, BaseException)) <= 1
    async with sessions() as s:
        rows = (await s.execute(select(FundingPaymentRow))).scalars().all()
        positions = (await s.execute(select(Position).order_by(Position.id))).scalars().all()
    assert [(r.coin, r.usdc, r.positions) for r in rows] == [("ETH", Decimal("-0.0075"), 2)]
    # split by size between the two positions, summing exactly to the payment
    assert [p.funding_usd for p in positions] == [Decimal("-0.00375")] * 2
    # a payment after both closed is not theirs
    peer.set_mid("ETH", "2100")
    await engine.close_positions({p.id: "manual" for p in positions})
    assert (await accrue_funding(sessions, venue, clock=clock)).payments == 0


def test_funding_is_split_by_size_and_sums_exactly() -> None:
    shares = split(Decimal("-0.01"), [Decimal("0.1"), Decimal("0.1"), Decimal("0.1")])
    assert sum(shares) == Decimal("-0.01") and shares[0] == shares[1]
    assert split(Decimal("1"), []) == []


async def test_a_close_with_funding_after_it_pays_its_share_once(sessions, peer) -> None:
    """Funding paid before the close but accrued after it corrects the realized PnL; profit
    share is written at close and, by the rule in engine/money/corrections.py, not again."""
    trader = await funded_trader(peer)
    await seed(sessions, [trader])
    now = datetime.now(UTC)
    clock = Clock(now - 3 * HOUR)
    engine, venue, _ = await live_engine(sessions, peer, [trader], eth="2000", clock=clock)
    await engine.ingest(IncomingPost("x", "@hawk", "1", "Long $ETH now", clock()))
    peer.pay_funding("ETH", "0.0001", at_ms=ms(now - 2 * HOUR))  # -0.03 for the long
    clock.at = now
    peer.set_mid("ETH", "2100")
    pos = await position(sessions)
    await engine.close_positions({pos.id: "manual"})
    before = (await position(sessions, pos.id)).realized_pnl
    assert (await accrue_funding(sessions, venue, clock=clock)).payments == 1
    pos = await position(sessions, pos.id)
    assert pos.funding_usd == Decimal("-0.03") and pos.realized_pnl == before - Decimal("0.03")
    assert (await accrue_funding(sessions, venue, clock=clock)).payments == 0
    async with sessions() as s:
        ledger = (await s.execute(select(LedgerEntry))).scalars().all()
    # the source's share (agents without a creator take none): written at close, on the PnL
    # then known, and not written again
    assert [(e.kind, e.amount) for e in ledger] == [("source_share", before * Decimal("0.10"))]


async def test_funding_accrued_after_the_close_corrects_pnl_not_the_settled_share(
    sessions, peer
) -> None:
    """Closed at the entry price, the position lost its fees and paid no share; funding paid
    before the close, accrued after it, makes its realized PnL a profit. The share was settled
    at close into the high-water mark (engine/money/corrections.py): it stays as it was."""
    trader = await funded_trader(peer)
    await seed(sessions, [trader])
    now = datetime.now(UTC)
    clock = Clock(now - 3 * HOUR)
    engine, venue, _ = await live_engine(sessions, peer, [trader], eth="2000", clock=clock)
    await engine.ingest(IncomingPost("x", "@hawk", "1", "Long $ETH now", clock()))
    [paid] = peer.pay_funding("ETH", "-0.01", at_ms=ms(now - 2 * HOUR))  # the long receives $3
    assert paid.usdc == Decimal("3.000000")
    clock.at = now
    pos = await position(sessions)
    await engine.close_positions({pos.id: "manual"})
    pos = await position(sessions, pos.id)
    assert pos.realized_pnl < 0
    async with sessions() as s:
        assert (await s.execute(select(LedgerEntry))).scalars().all() == []
    await accrue_funding(sessions, venue, clock=clock)
    await accrue_funding(sessions, venue, clock=clock)
    pos = await position(sessions, pos.id)
    assert pos.realized_pnl == Decimal(3) - pos.open_fee - pos.close_fee > 0
    async with sessions() as s:
        assert (await s.execute(select(LedgerEntry))).scalars().all() == []
