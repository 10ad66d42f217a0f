"""Fan-out benchmark: one signal to N active deployments on the paper venue, timed until
every order and position (and every alert) is persisted; next to the floor, the same order
and position rows bulk-inserted alone, in the same database, in the same run.

    python -m bench.fanout [--deployments 10000] [--trials 3] [--database-url URL]
"""

from __future__ import annotations

import argparse
import asyncio
import statistics
import time
from datetime import UTC, datetime
from decimal import Decimal
from typing import Any

from sqlalchemy import delete, insert, select

from bot.runtime import tune_gc
from engine.classify.rules import RulesClassifier
from engine.ingest import IncomingPost
from engine.markets import hyperliquid_markets
from engine.pipeline import Engine
from engine.prices import PriceBook, PriceTick
from engine.replay.runner import fresh_database
from engine.venues.paper import PaperVenue
from storage.bulk import insert_rows
from storage.db import create_engine, session_factory
from storage.migrate import upgrade
from storage.models import Agent, Deployment, Order, OutboxMessage, Position, Source, User
from storage.models import agent_sources as agent_sources_table

NOW = datetime(2026, 11, 20, 10, tzinfo=UTC)


async def _seed(sessions: Any, n: int) -> None:
    async with sessions() as s, s.begin():
        await s.execute(insert(Source), [{"id": 1, "kind": "x", "handle": "@hawk"}])
        await s.execute(
            insert(Agent),
            [
                {
                    "id": 1,
                    "name": "Hawk",
                    "venue": "HYPERLIQUID",
                    "venue_preference": [],
                    "leverage": Decimal(5),
                    "stop_loss_pct": Decimal("0.03"),
                    "take_profit_pct": Decimal("0.1"),
                    "trailing_activation_pct": Decimal("0.02"),
                    "trailing_distance_pct": Decimal("0.01"),
                    "min_confidence": Decimal("0.3"),
                }
            ],
        )
        await s.execute(agent_sources_table.insert(), [{"agent_id": 1, "source_id": 1}])
        await s.execute(
            insert(User),
            [{"id": i, "display_name": f"u{i}", "settings": {}} for i in range(1, n + 1)],
        )
        await s.execute(
            insert(Deployment),
            [
                {
                    "id": i,
                    "user_id": i,
                    "agent_id": 1,
                    "collateral_usd": Decimal(100 + i % 50),
                    "leverage": Decimal(3),
                    "account": f"paper:{i}",
                }
                for i in range(1, n + 1)
            ],
        )


async def trial(database_url: str | None, n: int) -> tuple[float, float]:
    async with fresh_database(database_url) as url:
        await upgrade(url)
        db = create_engine(url)
        try:
            sessions = session_factory(db)
            await _seed(sessions, n)
            prices = PriceBook()
            prices.update(PriceTick(NOW, "ETH", Decimal("3000")))
            venue = PaperVenue("HYPERLIQUID", hyperliquid_markets(), prices)
            engine = Engine(
                sessions, {"HYPERLIQUID": venue}, prices, RulesClassifier(), clock=lambda: NOW
            )
            post = IncomingPost("x", "@hawk", "1", "Long $ETH, breakout", NOW)
            t0 = time.perf_counter()
            await engine.ingest(post)
            fanout = time.perf_counter() - t0
            async with sessions() as s:
                orders = [_row(o, Order) for o in (await s.execute(select(Order))).scalars()]
                positions = [
                    _row(p, Position) for p in (await s.execute(select(Position))).scalars()
                ]
                assert len(orders) == len(positions) == n, (len(orders), len(positions))
                alerts = len((await s.execute(select(OutboxMessage.id))).all())
                assert alerts == n
            async with sessions() as s, s.begin():
                await s.execute(delete(Position))
                await s.execute(delete(Order))
            t0 = time.perf_counter()
            async with sessions() as s, s.begin():
                # the fastest bulk path we have (the one the engine itself uses)
                await insert_rows(s, Order, orders)
                await insert_rows(s, Position, positions)
            floor = time.perf_counter() - t0
            return fanout, floor
        finally:
            await db.dispose()


def _row(obj: Any, model: Any) -> dict[str, Any]:
    return {c.key: getattr(obj, c.key) for c in model.__table__.columns}


async def main_async(args: argparse.Namespace) -> None:
    if not args.default_gc:
        tune_gc()  # as every maxxit command runs
    runs = [await trial(args.database_url, args.deployments) for _ in range(args.trials)]
    fanout = statistics.median(r[0] for r in runs)
    floor = statistics.median(r[1] for r in runs)
    backend = "postgresql" if args.database_url else "sqlite"
    print(
        f"backend={backend} deployments={args.deployments} trials={args.trials}"
        f" gc={'python default' if args.default_gc else 'maxxit (bot/runtime.py)'}"
    )
    print(f"fan-out (orders + positions + alerts persisted): {fanout * 1000:.0f} ms")
    print(f"floor (same orders + positions bulk-inserted alone): {floor * 1000:.0f} ms")
    print(f"ratio: {fanout / floor:.2f}x")
    print(
        "trials (fan-out / floor, ms): "
        + ", ".join(f"{a * 1000:.0f}/{b * 1000:.0f}" for a, b in runs)
    )


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--deployments", type=int, default=10_000)
    ap.add_argument("--trials", type=int, default=3)
    ap.add_argument("--database-url", default=None)
    ap.add_argument("--default-gc", action="store_true", help="CPython's GC thresholds")
    asyncio.run(main_async(ap.parse_args()))


if __name__ == "__main__":
    main()
