"""The close read race (fixed in 1ac6f7a, engine/close.py `_still_open_after_filled_close`),
forced deterministically: one replica's `write_close_orders` reads the position open; before
it reads the close orders, another replica's recording commits (the close filled and the
position closed, in one transaction); the first replica then sees the newest close filled. It
must not take that for a partial fill and write a second close attempt: the venue no longer
holds the position ("reduce only would increase position").

Runs on both databases: PostgreSQL's READ COMMITTED gives each statement the commits made
before it, and SQLite through pysqlite runs a SELECT outside any transaction (BEGIN comes only
before a write), so each read there sees the latest commit too. With the fix reverted the test
fails on both (a second attempt, close_seq 1, pending)."""

from __future__ import annotations

from datetime import UTC, datetime
from decimal import Decimal
from typing import Any

import pytest
from sqlalchemy import select, update

from engine import close
from engine.classify.rules import RulesClassifier
from engine.ingest import IncomingPost
from engine.markets import hyperliquid_markets
from engine.pipeline import Engine
from engine.prices import PriceBook, PriceTick
from engine.replay.runner import _seed
from engine.venues.paper import PaperVenue
from storage.enums import OrderPurpose, OrderStatus, PositionStatus
from storage.models import Order, Position
from tests.replay_helpers import agent, scenario

NOW = datetime(2026, 11, 20, 10, tzinfo=UTC)


async def _open_position(sessions) -> tuple[Engine, int]:
    await _seed(
        sessions,
        scenario(
            agents=[agent()],
            users=[
                {
                    "name": "u0",
                    "deployments": [{"agent": "Hawk", "collateral_usd": "100", "leverage": "2"}],
                }
            ],
        ),
    )
    prices = PriceBook()
    prices.update(PriceTick(NOW, "ETH", Decimal(2000)))
    venue = PaperVenue("HYPERLIQUID", hyperliquid_markets(), prices)
    engine = Engine(sessions, {"HYPERLIQUID": venue}, prices, RulesClassifier(), clock=lambda: NOW)
    await engine.ingest(IncomingPost("x", "@hawk", "1", "Long $ETH now", NOW))
    async with sessions() as s:
        return engine, (await s.execute(select(Position.id))).scalar_one()


async def _closes(sessions) -> list[tuple[int, str]]:
    async with sessions() as s:
        rows = await s.execute(
            select(Order.close_seq, Order.status)
            .where(Order.purpose == OrderPurpose.CLOSE)
            .order_by(Order.close_seq)
        )
        return [(seq, str(status)) for seq, status in rows.all()]


async def test_a_close_recorded_between_the_two_reads_gets_no_second_attempt(
    sessions, db_url: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    engine, position_id = await _open_position(sessions)
    namespace = await engine.namespace()
    # replica B wrote the first close attempt and sent it to the venue
    async with sessions() as s, s.begin():
        await close.write_close_orders(s, {position_id: "stop_loss"}, NOW, namespace)
    assert await _closes(sessions) == [(0, "pending")]

    async def replica_b_records_the_fill() -> None:
        """B's recording: the close filled and the position closed, one transaction, on a
        connection of its own (committed while A's statements run)."""
        async with sessions() as b, b.begin():
            await b.execute(
                update(Order)
                .where(Order.purpose == OrderPurpose.CLOSE)
                .values(status=OrderStatus.FILLED, filled_size=Decimal("0.05"))
            )
            await b.execute(
                update(Position)
                .where(Position.id == position_id)
                .values(status=PositionStatus.CLOSED, closed_at=NOW)
            )

    real_latest = close.latest_close_orders
    interleaved: list[bool] = []

    async def latest_after_b_commits(session: Any, keys: Any) -> Any:
        # A has read the position open (the statement before this one); B commits now
        interleaved.append(bool(keys))
        await replica_b_records_the_fill()
        return await real_latest(session, keys)

    monkeypatch.setattr(close, "latest_close_orders", latest_after_b_commits)
    # replica A: the stop is still crossed on its tick, and it writes the close it needs
    async with sessions() as a, a.begin():
        await close.write_close_orders(a, {position_id: "stop_loss"}, NOW, namespace)

    assert interleaved == [True], "A must have read the position open before B committed"
    # one close, filled: no second attempt for a position the venue no longer holds
    assert await _closes(sessions) == [(0, "filled")]
