"""Crash the engine between writing orders and recording fills; a restart must leave every
deployment with exactly one position for the signal, and the venue with exactly one fill."""

from __future__ import annotations

from collections.abc import Mapping
from datetime import UTC, datetime
from decimal import Decimal

import pytest
from sqlalchemy import func, select

from engine.classify.rules import RulesClassifier
from engine.ingest import IncomingPost
from engine.markets import MarketInfo, hyperliquid_markets
from engine.pipeline import Engine
from engine.prices import PriceBook, PriceTick
from engine.replay.runner import _seed
from engine.venues.base import Fill, OrderRequest
from engine.venues.paper import PaperVenue
from storage.models import Order, OutboxMessage, Position
from tests.replay_helpers import agent, scenario

D = Decimal
NOW = datetime(2026, 11, 20, 10, tzinfo=UTC)
POST = IncomingPost("x", "@hawk", "p1", "Long $ETH, breakout", NOW)


class Crash(BaseException):
    """The process dying: nothing in the engine may catch it."""


class CrashingVenue:
    """The real paper venue behind it; dies before or after the call reaches the venue."""

    def __init__(self, inner: PaperVenue, when: str) -> None:
        self.inner, self.when, self.name = inner, when, inner.name
        self.calls = 0

    def markets(self) -> Mapping[str, MarketInfo]:
        return self.inner.markets()

    async def find_order(self, account: str, client_order_id: str) -> Fill | None:
        return await self.inner.find_order(account, client_order_id)

    async def place_order(self, order: OrderRequest) -> Fill:
        self.calls += 1
        if self.when == "before":
            raise Crash
        await self.inner.place_order(order)
        raise Crash  # filled at the venue, but we never hear back


async def _world(sessions, bears: bool = False) -> tuple[PaperVenue, PriceBook]:
    names = ["Hawk", "Bear"] if bears else ["Hawk"]
    sc = scenario(
        agents=[agent(), agent("Bear", ["@bear"])] if bears else [agent()],
        users=[
            {
                "name": n,
                "deployments": [
                    {"agent": a, "collateral_usd": "100", "leverage": "3"} for a in names
                ],
            }
            for n in ("a", "b", "c")
        ],
    )
    await _seed(sessions, sc)
    prices = PriceBook()
    prices.update(PriceTick(NOW, "ETH", D("2000")))
    return PaperVenue("HYPERLIQUID", hyperliquid_markets(), prices), prices


def _engine(sessions, venue, prices) -> Engine:
    return Engine(sessions, {"HYPERLIQUID": venue}, prices, RulesClassifier(), clock=lambda: NOW)


async def _counts(sessions) -> tuple[int, int, list[str]]:
    async with sessions() as s:
        positions = (await s.execute(select(func.count()).select_from(Position))).scalar_one()
        per_dep = (
            await s.execute(
                select(Position.deployment_id, func.count()).group_by(Position.deployment_id)
            )
        ).all()
        statuses = (await s.execute(select(Order.status).order_by(Order.id))).scalars().all()
    assert all(n == 1 for _, n in per_dep)
    return positions, len(per_dep), list(statuses)


@pytest.mark.parametrize("when", ["before", "after"])
async def test_restart_after_a_crash_around_the_venue_call(sessions, when: str) -> None:
    venue, prices = await _world(sessions)
    crashing = CrashingVenue(venue, when)
    with pytest.raises(Crash):
        await _engine(sessions, crashing, prices).ingest(POST)
    # the orders were written before the venue was called; no position yet
    assert await _counts(sessions) == (0, 0, ["pending"] * 3)
    # all three were in flight together: the venue filled none of them, or all of them
    assert len(venue._fills) == (0 if when == "before" else 3)

    restarted = _engine(sessions, venue, prices)
    await restarted.start()
    await restarted.ingest(POST)  # the source delivers the same post again
    await restarted.start()  # and a second restart changes nothing either

    assert await _counts(sessions) == (3, 3, ["filled"] * 3)
    # the venue holds one position per account: the crashed order was adopted, not re-sent
    assert len(venue._fills) == 3
    for acc in venue.accounts.values():
        assert list(acc.positions) == [("ETH", "long")]
    async with sessions() as s:
        sizes = (await s.execute(select(Position.account, Position.size))).all()
        alerts = (
            await s.execute(
                select(func.count())
                .select_from(OutboxMessage)
                .where(OutboxMessage.kind == "position_opened")
            )
        ).scalar_one()
    for account, size in sizes:
        assert venue.accounts[account].size("ETH", "long") == size
    assert alerts == 3  # one "opened" alert per user, however often the work was resumed
    assert len(restarted.index) == 3


async def test_crash_during_close_is_resumed_once(sessions) -> None:
    venue, prices = await _world(sessions)
    engine = _engine(sessions, venue, prices)
    await engine.ingest(POST)
    crashing = CrashingVenue(venue, "after")
    engine.venues["HYPERLIQUID"] = crashing
    with pytest.raises(Crash):
        await engine.on_price(PriceTick(NOW, "ETH", D("1800")))  # through every stop
    async with sessions() as s:
        assert (
            await s.execute(
                select(func.count()).select_from(Position).where(Position.status == "open")
            )
        ).scalar_one() == 3

    restarted = _engine(sessions, venue, prices)
    await restarted.start()
    async with sessions() as s:
        rows = (await s.execute(select(Position.status, Position.close_reason))).all()
        closes = (
            await s.execute(select(func.count()).select_from(Order).where(Order.purpose == "close"))
        ).scalar_one()
    assert rows == [("closed", "stop_loss")] * 3
    assert closes == 3
    assert all(acc.positions == {} for acc in venue.accounts.values())
    assert len(restarted.index) == 0


async def test_checkpoint_saves_trailing_state_alerts_once_and_survives_restart(sessions) -> None:
    venue, prices = await _world(sessions)
    engine = _engine(sessions, venue, prices)
    await engine.ingest(POST)
    # entry 2001 (2000 + 5 bps); trailing activates at 2061.03 and follows the peak by 2%
    for p in ("2070", "2150", "2120"):
        assert await engine.on_price(PriceTick(NOW, "ETH", D(p))) == 0
    moved = await engine.checkpoint()
    assert [(e.market, e.stop_price) for e in moved] == [("ETH", D("2107.00"))] * 3
    assert await engine.checkpoint() == []  # nothing moved since: no second alert
    async with sessions() as s:
        rows = (
            await s.execute(
                select(Position.stop_price, Position.peak_price, Position.trailing_active)
            )
        ).all()
        alerts = (
            await s.execute(
                select(func.count())
                .select_from(OutboxMessage)
                .where(OutboxMessage.kind == "stop_moved")
            )
        ).scalar_one()
    assert rows == [(D("2107"), D("2150"), True)] * 3
    assert alerts == 3

    # a new process resumes the trailing stop where it was, not at the initial stop loss
    restarted = _engine(sessions, PaperVenue("HYPERLIQUID", hyperliquid_markets(), prices), prices)
    await restarted.start()
    assert await restarted.on_price(PriceTick(NOW, "ETH", D("2108"))) == 0
    assert await restarted.on_price(PriceTick(NOW, "ETH", D("2106"))) == 3
    async with sessions() as s:
        reasons = (await s.execute(select(Position.close_reason))).scalars().all()
    assert reasons == ["trailing_stop"] * 3


class CrashesWhenRouting(CrashingVenue):
    def markets(self) -> Mapping[str, MarketInfo]:
        raise Crash


async def test_restart_without_prices_waits_instead_of_rejecting(sessions) -> None:
    venue, prices = await _world(sessions)
    with pytest.raises(Crash):  # dies after the signal is stored, before it is routed
        await _engine(sessions, CrashesWhenRouting(venue, "before"), prices).ingest(POST)

    # a new process: no price has arrived yet, the paper venue starts empty
    empty = PriceBook()
    fresh = PaperVenue("HYPERLIQUID", hyperliquid_markets(), empty)
    restarted = _engine(sessions, fresh, empty)
    await restarted.start()
    async with sessions() as s:
        kinds = (await s.execute(select(OutboxMessage.kind))).scalars().all()
        orders = (await s.execute(select(Order.status, Order.error, Order.size))).all()
    assert "signal_rejected" not in kinds and "order_failed" not in kinds
    # routed and sized at the price the post was made at; waiting for a price to fill
    assert orders == [("pending", "no_price", D("0.1500"))] * 3  # 100 x 3 / 2000

    empty.update(PriceTick(NOW, "ETH", D("2010")))
    await restarted.resume_pending()
    assert await _counts(sessions) == (3, 3, ["filled"] * 3)


async def test_a_trailing_start_survives_a_crash_before_any_checkpoint(sessions) -> None:
    venue, prices = await _world(sessions)
    engine = _engine(sessions, venue, prices)
    await engine.ingest(POST)
    await engine.on_price(PriceTick(NOW, "ETH", D("2070")))  # activates: stop 2070 x 0.98
    # the process dies here: no checkpoint ran
    restarted = _engine(sessions, PaperVenue("HYPERLIQUID", hyperliquid_markets(), prices), prices)
    await restarted.start()
    assert await restarted.on_price(PriceTick(NOW, "ETH", D("2028.7"))) == 0
    assert await restarted.on_price(PriceTick(NOW, "ETH", D("2028.5"))) == 3  # not 1900.95
    async with sessions() as s:
        reasons = (await s.execute(select(Position.close_reason))).scalars().all()
    assert reasons == ["trailing_stop"] * 3


async def test_a_failed_trailing_save_never_costs_a_stop(sessions) -> None:
    # the shorts come from a second agent: one paper account per deployment, and an account
    # holds one net position per market (a short from Hawk itself would meet Hawk's long)
    venue, prices = await _world(sessions, bears=True)
    engine = _engine(sessions, venue, prices)
    await engine.ingest(POST)  # 3 longs at 2001
    await engine.ingest(IncomingPost("x", "@bear", "p2", "Short $ETH", NOW))  # 3 shorts at 1999

    async def broken(ids: list[int]) -> None:
        raise OSError("database is locked")

    engine._save_trailing = broken  # type: ignore[method-assign]
    # one tick starts the longs' trails and runs through the shorts' stops (2098.95)
    assert await engine.on_price(PriceTick(NOW, "ETH", D("2110"))) == 3
    async with sessions() as s:
        rows = await s.execute(select(Position.side, Position.status).order_by(Position.id))
        assert rows.all() == [("long", "open")] * 3 + [("short", "closed")] * 3


@pytest.mark.parametrize("when", ["before", "after"])
async def test_a_stale_open_order_is_adopted_if_filled_else_expires(sessions, when) -> None:
    from datetime import timedelta

    venue, prices = await _world(sessions)
    with pytest.raises(Crash):
        await _engine(sessions, CrashingVenue(venue, when), prices).ingest(POST)
    later = NOW + timedelta(minutes=11)  # past the 10-minute default
    restarted = Engine(
        sessions, {"HYPERLIQUID": venue}, prices, RulesClassifier(), clock=lambda: later
    )
    await restarted.start()
    async with sessions() as s:
        orders = (await s.execute(select(Order.status, Order.error))).all()
        failed = (
            (
                await s.execute(
                    select(OutboxMessage.payload).where(OutboxMessage.kind == "order_failed")
                )
            )
            .scalars()
            .all()
        )
    if when == "after":  # the venue filled them before the crash: adopted, nothing lost
        assert orders == [("filled", None)] * 3 and failed == []
        assert await _counts(sessions) == (3, 3, ["filled"] * 3)
    else:  # never reached the venue: not sent 11 minutes late, and the user is told
        assert orders == [("rejected", "expired")] * 3
        assert [p["reason"] for p in failed] == ["expired"] * 3
        assert len(venue._fills) == 0
