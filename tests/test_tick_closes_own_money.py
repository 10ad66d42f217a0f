"""A tick closes many followers of one signal at one price, and works out each distinct
closing money once (engine/filled_closes.py): followers who hold the same size at the same
entry but have been charged different funding still each get their own realized PnL."""

from __future__ import annotations

from decimal import Decimal

from sqlalchemy import select, update

from engine.prices import PriceTick
from storage.enums import PositionStatus
from storage.models import Position
from tests.test_pipeline import NOW, _engine, post

D = Decimal
FUNDING = [D(0), D("-1.25"), D("0.40"), D("-1.25")]


async def test_followers_closed_in_one_tick_keep_their_own_funding(sessions) -> None:
    engine = await _engine(sessions, [{"collateral_usd": "100", "leverage": "2"}] * 4)
    await engine.ingest(post())
    async with sessions() as s, s.begin():
        ids = list((await s.execute(select(Position.id).order_by(Position.id))).scalars())
        assert len(ids) == 4
        for pid, funding in zip(ids, FUNDING, strict=True):
            await s.execute(update(Position).where(Position.id == pid).values(funding_usd=funding))
    assert await engine.on_price(PriceTick(NOW, "ETH", D("1000"))) == 4  # through every stop
    async with sessions() as s:
        rows = (await s.execute(select(Position).order_by(Position.id))).scalars().all()
    assert {p.status for p in rows} == {PositionStatus.CLOSED}
    # the same fill for all four: the same gross and fees; only the funding differs
    assert len({(p.closed_gross_pnl, p.open_fee, p.close_fee, p.size) for p in rows}) == 1
    for p, funding in zip(rows, FUNDING, strict=True):
        assert p.realized_pnl == p.closed_gross_pnl - p.open_fee - p.close_fee + funding
    assert rows[1].realized_pnl == rows[3].realized_pnl
    assert rows[2].realized_pnl - rows[1].realized_pnl == D("1.65")
