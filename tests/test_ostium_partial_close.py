"""A close of part of an Ostium trade: Ostium's closeTradeMarket with a closePercentage, two
steps like an open (the keeper fills it later), the piece recorded in the books (the position
smaller, the closed part's PnL and rollover exact), the rest closed after; a process killed
between the request and the keeper's fill adopts the fill on restart and never sends it twice.
Then the books equal the wallet to the last unit."""

from __future__ import annotations

from decimal import Decimal

from sqlalchemy import select, update

from engine.close import write_close_orders
from engine.ingest import IncomingPost
from engine.prices import PriceTick
from engine.venues.ostium import close_share
from storage.enums import OrderPurpose
from storage.models import Order, Position
from storage.types import utcnow
from tests.ostium_helpers import funded_trader
from tests.test_ostium_pipeline import is_closed, live_engine, seed, until

E18 = 10**18


async def _close_part(engine, sessions, position_id: int, size: str) -> Order:
    """A close order for part of the position, written as the engine writes its closes."""
    async with sessions() as s, s.begin():
        await write_close_orders(s, {position_id: "manual"}, utcnow(), await engine.namespace())
        await s.execute(
            update(Order).where(Order.purpose == OrderPurpose.CLOSE).values(size=Decimal(size))
        )
        return (
            await s.execute(select(Order).where(Order.purpose == OrderPurpose.CLOSE))
        ).scalar_one()


async def test_a_part_closed_on_ostium_survives_a_kill_before_the_keepers_fill(
    sessions, ostium
) -> None:
    trader = funded_trader(ostium, usdc="1000")
    await seed(sessions, [trader])
    engine, _, prices = await live_engine(sessions, ostium, [trader], fill_wait=0.2)
    prices.update(PriceTick(utcnow(), "XAU", Decimal(2000)))
    await engine.ingest(IncomingPost("x", "@goldbug", "1", "Long $XAU now", utcnow()))
    async with sessions() as s:
        pos = (await s.execute(select(Position))).scalar_one()
    assert pos.size == Decimal("0.25")
    assert close_share(Decimal("0.1"), int(Decimal("0.25") * E18)) == 4000  # 40.00 %

    # 0.1 of the 0.25 asked to close at 2100; the keeper is late: the request waits
    ostium.set_price("XAU", "2100")
    prices.update(PriceTick(utcnow(), "XAU", Decimal(2100)))
    ostium.keeper.hold = True
    close = await _close_part(engine, sessions, pos.id, "0.1")
    await engine.resume_pending()
    async with sessions() as s:
        assert (await s.get_one(Order, close.id)).status == "pending"
    requested = ostium.contracts.ostium.functions.orderCounter().call()
    assert requested == 2  # the open, and this close

    # the process dies; the keeper fills while it is down; a new process starts
    ostium.keeper.hold = False
    await until(lambda: _true(ostium.keeper.filled[-1:] == [2]))
    restarted, _, prices2 = await live_engine(sessions, ostium, [trader])
    prices2.update(PriceTick(utcnow(), "XAU", Decimal(2100)))
    await restarted.start()
    async with sessions() as s:
        first = await s.get_one(Order, close.id)
        pos = await s.get_one(Position, pos.id)
        rest = (
            await s.execute(select(Order).where(Order.purpose == "close", Order.close_seq == 1))
        ).scalar_one_or_none()
    assert first.status == "filled" and Decimal(first.filled_size) == Decimal("0.1")
    # the piece: 0.1 at 2100 closed (+10), 0.15 left open
    assert (pos.closed_size, pos.closed_gross_pnl) == (Decimal("0.1"), Decimal(10))
    charged_first = -pos.funding_usd
    assert charged_first > 0  # the closed part's rollover, as the chain charged it
    [left] = ostium.open_trades(trader.user.address)
    assert Decimal(left["tradeNotional"]) / E18 == Decimal("0.15")
    assert rest is not None  # the rest of the close was written

    # the rest closes (the engine's next attempt); the close request was never sent twice
    await restarted.resume_pending()
    await until(lambda: is_closed(sessions, pos.id))
    async with sessions() as s:
        pos = await s.get_one(Position, pos.id)
    assert ostium.open_trades(trader.user.address) == []
    assert ostium.contracts.ostium.functions.orderCounter().call() == 3
    assert pos.size == Decimal("0.25") and pos.closed_gross_pnl == Decimal(25)
    assert pos.close_fee == 0 and -pos.funding_usd > charged_first
    assert pos.realized_pnl == Decimal(25) - pos.open_fee + pos.funding_usd
    # the books equal the wallet, to the last unit
    assert ostium.usdc_balance(trader.user.address) - Decimal(1000) == pos.realized_pnl


async def _true(value: bool) -> bool:
    return value
