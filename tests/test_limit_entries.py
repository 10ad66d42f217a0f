"""A call's stated entry is a limit: at or better than the entry the open goes now, capped at
the range; otherwise it rests at the entry (paper: filled when the price crosses it), is
cancelled at expiry or when the call's stop comes first, and the user is told each time."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from decimal import Decimal

from sqlalchemy import select

from engine.classify.rules import RulesClassifier
from engine.ingest import IncomingPost
from engine.markets import default_markets
from engine.pipeline import Engine
from engine.prices import PriceBook, PriceTick
from engine.replay.runner import _seed
from engine.venues.paper import FeeConfig, PaperVenue
from handlers.alerts import render
from storage.enums import OrderStatus
from storage.models import Order, OutboxMessage, Position
from tests.replay_helpers import agent, scenario

D = Decimal
NOW = datetime(2026, 11, 20, 10, tzinfo=UTC)


async def _engine(sessions, mark: str = "2000", venue: str = "HYPERLIQUID", **risk) -> Engine:
    await _seed(
        sessions,
        scenario(
            agents=[agent(venue=venue, **risk)],
            users=[
                {
                    "name": "u",
                    "deployments": [{"agent": "Hawk", "collateral_usd": "100", "leverage": "2"}],
                }
            ],
        ),
    )
    prices = PriceBook()
    prices.update(PriceTick(NOW, "ETH", D(mark)))
    fees = FeeConfig(D(0), D(0))
    venues = {n: PaperVenue(n, m, prices, fees) for n, m in default_markets().items()}
    clock = [NOW]
    engine = Engine(sessions, venues, prices, RulesClassifier(), clock=lambda: clock[0])
    engine.test_clock = clock  # type: ignore[attr-defined]
    return engine


def post(text: str) -> IncomingPost:
    return IncomingPost("x", "@hawk", "1", text, NOW)


async def _state(sessions) -> tuple[Order, list[Position], list[OutboxMessage]]:
    async with sessions() as s:
        order = (await s.execute(select(Order))).scalar_one()
        positions = list((await s.execute(select(Position))).scalars())
        told = list((await s.execute(select(OutboxMessage).order_by(OutboxMessage.id))).scalars())
    return order, positions, told


async def test_within_the_entry_range_the_open_goes_now_capped_at_the_range(sessions) -> None:
    engine = await _engine(sessions, mark="2000")
    await engine.ingest(post("Long $ETH 1,990-2,010, stop 1,950"))
    order, [position], told = await _state(sessions)
    assert order.status == OrderStatus.FILLED and order.limit_expires_at is None
    # the agent's 50 bps of slippage above the range's top, never more
    assert order.limit_price == D(2010) * D("1.005")
    assert position.entry_price == 2000 and position.stop_price == 1950
    opened = next(m for m in told if m.kind == "position_opened")
    assert "From the call: entry" in render(opened.kind, opened.payload)


async def test_an_entry_not_reached_rests_and_fills_when_the_price_crosses_it(sessions) -> None:
    engine = await _engine(sessions, mark="2100")
    await engine.ingest(post("Long $ETH 1,990-2,010, stop 1,960, tp 2,300"))
    order, positions, told = await _state(sessions)
    assert positions == [] and order.status == OrderStatus.PENDING
    assert order.limit_price == 2010 and order.limit_expires_at == NOW + timedelta(hours=24)
    [placed] = [m for m in told if m.kind == "limit_entry_placed"]
    text = render(placed.kind, placed.payload)
    assert "limit order at 2010" in text and "2026-11-21" in text

    await engine.resume_pending()  # a sweep (or a restart) looks it up: never sent twice
    await engine.on_price(PriceTick(NOW, "ETH", D(2050)))  # not reached yet
    order, positions, _ = await _state(sessions)
    assert positions == [] and order.status == OrderStatus.PENDING

    await engine.on_price(PriceTick(NOW, "ETH", D(2005)))
    order, [position], told = await _state(sessions)
    assert order.status == OrderStatus.FILLED and position.entry_price == 2010
    assert (position.stop_price, position.take_profit_price) == (1960, 2300)
    assert [m.kind for m in told].count("position_opened") == 1
    venue = engine.venues["HYPERLIQUID"]
    assert len(venue.accounts[order.account].positions) == 1  # one fill, once


async def test_a_resting_entry_is_cancelled_at_expiry_and_the_user_told(sessions) -> None:
    engine = await _engine(sessions, mark="1900")
    await engine.ingest(post("Short $ETH 2,000-2,020, stop 2,080"))
    order, _, _ = await _state(sessions)
    assert order.status == OrderStatus.PENDING and order.limit_price == 2000
    engine.test_clock[0] = NOW + timedelta(hours=23)
    await engine.settle_limit_entries()
    assert (await _state(sessions))[0].status == OrderStatus.PENDING
    engine.test_clock[0] = NOW + timedelta(hours=24, seconds=1)
    await engine.settle_limit_entries()
    order, positions, told = await _state(sessions)
    assert order.status == OrderStatus.REJECTED and order.error == "limit_expired"
    failed = next(m for m in told if m.kind == "order_failed")
    assert "entry was not reached before the limit order expired" in render(
        failed.kind, failed.payload
    )
    await engine.on_price(PriceTick(NOW, "ETH", D(2010)))  # cancelled: nothing fills now
    assert (await _state(sessions))[1] == positions == []


async def test_a_resting_entry_is_cancelled_when_the_calls_stop_comes_first(sessions) -> None:
    engine = await _engine(sessions, mark="1900")
    await engine.ingest(post("Short $ETH 2,000-2,020, stop 2,080"))
    # a gap past the entry and the stop between two ticks of ours
    engine.prices.update(PriceTick(NOW, "ETH", D(2090)))
    await engine.settle_limit_entries()
    order, positions, _ = await _state(sessions)
    assert order.status == OrderStatus.REJECTED and order.error == "limit_stop_hit"
    assert positions == []


async def test_a_call_whose_stop_is_already_passed_is_not_traded(sessions) -> None:
    engine = await _engine(sessions, mark="1900")
    out = await engine.ingest(post("Long $ETH 2,000-2,010, stop 1,950"))
    assert [s.reason for s in out.signals] == ["listed"]
    async with sessions() as s:
        assert (await s.execute(select(Order))).first() is None
        [told] = (await s.execute(select(OutboxMessage))).scalars()
    assert told.payload["reason"] == "stop_already_hit"


async def test_ostium_opens_within_the_range_only_and_otherwise_skips_saying_why(
    sessions,
) -> None:
    engine = await _engine(sessions, mark="2100", venue="OSTIUM")
    await engine.ingest(post("Long $ETH 1,990-2,010, stop 1,960"))
    async with sessions() as s:
        assert (await s.execute(select(Order))).first() is None
        [told] = (await s.execute(select(OutboxMessage))).scalars()
    assert told.payload["reason"] == "entry_not_reached"
    assert "cannot leave a limit order waiting" in render(told.kind, told.payload)


async def test_a_restart_adopts_a_resting_entry_and_fills_it_once(sessions) -> None:
    engine = await _engine(sessions, mark="2100")
    await engine.ingest(post("Long $ETH 1,990-2,010, stop 1,960"))
    # the process dies: a new one starts with an empty paper book, hours later
    prices = PriceBook()
    prices.update(PriceTick(NOW, "ETH", D(2100)))
    fresh = PaperVenue(
        "HYPERLIQUID", default_markets()["HYPERLIQUID"], prices, FeeConfig(D(0), D(0))
    )
    later = [NOW + timedelta(hours=3)]
    restarted = Engine(
        sessions, {"HYPERLIQUID": fresh}, prices, RulesClassifier(), clock=lambda: later[0]
    )
    await restarted.start()  # looked up by its id, unknown to the new book: rests again
    await restarted.on_price(PriceTick(later[0], "ETH", D(2000)))
    order, [position], told = await _state(sessions)
    assert order.status == OrderStatus.FILLED and position.entry_price == 2010
    assert [m.kind for m in told].count("position_opened") == 1
    assert fresh.accounts[order.account].positions[("ETH", "long")].size == order.size
