"""One position's close (a user's Close button: `Engine.close_positions`, written, sent to the
paper venue, recorded) when its signal has one follower and when it has 10,000: the cost must
not grow with the followers (issue 12 measured 16 ms against 250 ms). Closes of different
positions, one at a time, alternating between the two books, each a copy of a seeded database.

    python -m bench.close [--followers 10000] [--closes 20] [--database-url URL]
"""

from __future__ import annotations

import argparse
import asyncio
import statistics
import time
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from decimal import Decimal
from typing import Any

from bench.book import NOW, clone_of, seed_followers, seed_open_positions
from bot.runtime import tune_gc
from engine.classify.rules import RulesClassifier
from engine.markets import hyperliquid_markets
from engine.pipeline import Engine
from engine.prices import PriceBook, PriceTick
from engine.replay.runner import fresh_database
from engine.venues.paper import PaperVenue
from storage.db import create_engine, session_factory
from storage.enums import CloseReason
from storage.migrate import upgrade
from storage.statistics import refresh_statistics

ETH = Decimal("2000")


@asynccontextmanager
async def seeded(database_url: str | None, followers: int, agents: int = 1) -> AsyncIterator[str]:
    """`agents` signals (one per agent) with `followers` positions each."""
    async with fresh_database(database_url) as url:
        await upgrade(url)
        db = create_engine(url)
        book = await seed_followers(session_factory(db), followers, agents)
        await seed_open_positions(session_factory(db), book, ["ETH"], {"ETH": ETH})
        await refresh_statistics(db)
        await db.dispose()
        yield url


@asynccontextmanager
async def running(url: str) -> AsyncIterator[Engine]:
    db = create_engine(url)
    try:
        sessions = session_factory(db)
        prices = PriceBook()
        prices.update(PriceTick(NOW, "ETH", ETH))
        venue = PaperVenue("HYPERLIQUID", hyperliquid_markets(), prices)
        engine = Engine(sessions, {"HYPERLIQUID": venue}, prices, RulesClassifier())
        await engine.start()
        yield engine
    finally:
        await db.dispose()


async def _close(engine: Engine, position_id: int) -> float:
    t0 = time.perf_counter()
    await engine.close_positions({position_id: CloseReason.MANUAL})
    elapsed = time.perf_counter() - t0
    assert position_id not in engine.index
    return elapsed


async def main_async(args: argparse.Namespace) -> None:
    tune_gc()
    one: list[float] = []
    many: list[float] = []
    async with (
        # one follower: a signal per close, each held by one user (position id = agent id)
        seeded(args.database_url, 1, args.closes + 1) as single,
        seeded(args.database_url, args.followers) as crowd,
        clone_of(single) as single_url,
        clone_of(crowd) as crowd_url,
        running(single_url) as single_engine,
        running(crowd_url) as crowd_engine,
    ):
        await _close(single_engine, args.closes + 1)  # warm up both paths
        await _close(crowd_engine, args.followers)
        for i in range(1, args.closes + 1):
            order: list[Any] = [(single_engine, one), (crowd_engine, many)]
            for engine, out in order if i % 2 else order[::-1]:
                out.append(await _close(engine, i))
    backend = "postgresql" if args.database_url else "sqlite"
    ratios = [m / o for o, m in zip(one, many, strict=True)]
    print(f"backend={backend} closes={args.closes}")
    print(
        f"  one follower: {statistics.median(one) * 1000:.1f} ms median;"
        f" {args.followers} followers: {statistics.median(many) * 1000:.1f} ms median;"
        f" ratio {statistics.median(ratios):.2f}x"
    )
    print("  per close (many / one): " + ", ".join(f"{r:.2f}x" for r in ratios))


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--followers", type=int, default=10_000)
    ap.add_argument("--closes", type=int, default=20)
    ap.add_argument("--database-url", default=None)
    asyncio.run(main_async(ap.parse_args()))


if __name__ == "__main__":
    main()
