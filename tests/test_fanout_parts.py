"""A fan-out on the paper venue is written in parts, each its own transaction (filled and
recorded as it is written): one transaction of 100,000 followers held SQLite's one write lock
for more than its 5 s busy timeout, and a stop's close failed with "database is locked"
(bench/write_wait.py). A crash between two parts resumes with the followers not served yet;
a tick's closes go before the next part. Both backends: on PostgreSQL the parts bound how
long the event loop is held and write each order once, filled."""

from __future__ import annotations

import asyncio
from dataclasses import replace
from decimal import Decimal

import pytest
from sqlalchemy import select

import engine.signal_writing
from engine.classify.rules import RulesClassifier
from engine.markets import hyperliquid_markets
from engine.pipeline import Engine
from engine.prices import PriceTick
from engine.venues.paper import PaperVenue
from storage.enums import SignalStatus
from storage.models import Order, OutboxMessage, Position, Signal
from tests.test_pipeline import NOW, _count, _engine, post

D = Decimal
FOLLOWERS = [{"collateral_usd": "100", "leverage": "2"}] * 5


def _in_parts_of(engine_: Engine, size: int) -> Engine:
    engine_.config = replace(engine_.config, fanout_part=size)
    return engine_


def _count_parts(monkeypatch: pytest.MonkeyPatch, fail_after: int | None = None) -> list[int]:
    """Each part written after the first, by its number; `fail_after`: the process dies
    (an exception out of the fan-out) before writing the part after that many."""
    parts: list[int] = []
    real = engine.signal_writing.write_next_part

    async def counted(*args, **kwargs):  # type: ignore[no-untyped-def]
        if fail_after is not None and len(parts) + 1 >= fail_after:
            raise RuntimeError("killed between two parts")
        out = await real(*args, **kwargs)
        parts.append(len(parts) + 2)
        return out

    monkeypatch.setattr(engine.signal_writing, "write_next_part", counted)
    return parts


async def test_a_fan_out_in_parts_fills_every_follower_once(sessions, monkeypatch) -> None:
    engine_ = _in_parts_of(await _engine(sessions, FOLLOWERS), 2)
    parts = _count_parts(monkeypatch)
    await engine_.ingest(post())
    # 2 + 2 + 1 followers; PostgreSQL writes the parts after the first side by side, then
    # one more that finds nobody left and ends the fan-out (tests/test_fanout_side_by_side.py)
    side_by_side = sessions.kw["bind"].dialect.name == "postgresql"
    assert parts == ([2, 3, 4] if side_by_side else [2, 3])
    assert await _count(sessions, Position) == 5
    async with sessions() as s:
        assert set((await s.execute(select(Order.status))).scalars()) == {"filled"}
        assert (await s.execute(select(Signal.status))).scalar_one() == SignalStatus.EXECUTED
    assert await _count(sessions, OutboxMessage, OutboxMessage.kind == "position_opened") == 5
    assert len(engine_.index) == 5
    venue = engine_.venues["HYPERLIQUID"]
    assert len(venue._fills) == 5 and len(venue.accounts) == 5


async def test_a_fan_out_killed_between_parts_resumes_with_the_followers_not_served(
    sessions, monkeypatch
) -> None:
    engine_ = _in_parts_of(await _engine(sessions, FOLLOWERS), 2)
    _count_parts(monkeypatch, fail_after=1)
    with pytest.raises(RuntimeError):
        await engine_.ingest(post())
    assert await _count(sessions, Position) == 2  # the first part was committed
    async with sessions() as s:
        assert (await s.execute(select(Signal.status))).scalar_one() == SignalStatus.ROUTED
    monkeypatch.undo()
    # a new life of the process: the paper books restored from ours, the signal resumed
    again = _in_parts_of(await _engine_on(sessions, engine_), 2)
    await again.start()
    assert await _count(sessions, Position) == 5
    async with sessions() as s:
        per_follower = (await s.execute(select(Order.deployment_id))).scalars().all()
        assert sorted(per_follower) == sorted(set(per_follower))  # one order each
        assert set((await s.execute(select(Order.status))).scalars()) == {"filled"}
        assert (await s.execute(select(Signal.status))).scalar_one() == SignalStatus.EXECUTED
        kinds = set((await s.execute(select(OutboxMessage.kind))).scalars())
    # the first part's followers were not decided again ("skipped: already holding")
    assert kinds == {"position_opened"}
    assert await _count(sessions, OutboxMessage) == 5
    assert len(again.venues["HYPERLIQUID"]._fills) == 3


async def _engine_on(sessions, before: Engine) -> Engine:

    venue = PaperVenue("HYPERLIQUID", hyperliquid_markets(), before.prices)
    return Engine(
        sessions, {"HYPERLIQUID": venue}, before.prices, RulesClassifier(), clock=before.clock
    )


async def test_a_close_goes_before_the_next_part_of_a_fan_out(sessions, monkeypatch) -> None:
    engine_ = _in_parts_of(await _engine(sessions, FOLLOWERS), 1)
    await engine_.ingest(post())  # every follower long ETH
    engine_.prices.update(PriceTick(NOW, "BTC", D("90000")))
    parts = _count_parts(monkeypatch)
    fan_out = asyncio.ensure_future(engine_.ingest(post("Long $BTC now", pid="2")))
    await asyncio.sleep(0)  # the BTC fan-out has begun its first part
    closed = await engine_.on_price(PriceTick(NOW, "ETH", D("1900")))  # through the stop
    parts_before_the_close_was_done = len(parts)
    await fan_out
    assert closed == 5
    assert parts[:4] == [2, 3, 4, 5]  # one part per follower (and maybe an empty one)
    assert parts_before_the_close_was_done <= 1, "the close waited for the whole fan-out"
    assert await _count(sessions, Position, Position.market == "BTC") == 5
