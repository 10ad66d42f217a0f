"""Chat throughput of one process: updates a second through the handlers (`Bot.handle`, what
every transport calls) for /positions, /pnl, a button (a position's Close, which asks for
confirmation) and a mix of the three, from random users of 10,000 who follow 10 agents each
(100,000 open positions), 8 updates in flight at a time as a webhook server would take them.

Beside it, /positions on a book a tenth the size (1,000 users, 10,000 open positions): a
user's /positions must cost the same whatever the number of open positions of everyone else.

Then, as in a process that has run a while, every user writes once (/help) and the mix and
/positions run again: who a user is, their language and settings are kept in memory after
their first message (handlers/known_users.py), so the first runs, which meet most users for
the first time, measure a process just started; and the small book's users are met more
often than the big one's, so only the second /positions comparison has both at the same
footing.

    python -m bench.chat [--users 10000] [--agents 10] [--updates 2000] [--database-url URL]
"""

from __future__ import annotations

import argparse
import asyncio
import random
import statistics
import time
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from decimal import Decimal

from bench.book import NOW, clone_of, seed_followers, seed_open_positions
from bot.runtime import tune_gc
from engine.classify.rules import RulesClassifier
from engine.markets import hyperliquid_markets
from engine.pipeline import Engine
from engine.prices import PriceBook, PriceTick
from engine.replay.runner import fresh_database
from engine.venues.paper import PaperVenue
from handlers.base import Request, Services
from handlers.router import Bot
from storage.db import create_engine, session_factory
from storage.migrate import upgrade
from storage.statistics import refresh_statistics

MARKETS = ["ETH", "BTC", "SOL", "DOGE", "AVAX"]
PRICES = {
    "ETH": Decimal("2000"),
    "BTC": Decimal("90000"),
    "SOL": Decimal("150"),
    "DOGE": Decimal("0.4"),
    "AVAX": Decimal("40"),
}
IN_FLIGHT = 8


@asynccontextmanager
async def seeded(database_url: str | None, users: int, agents: int) -> AsyncIterator[str]:
    async with fresh_database(database_url) as url:
        await upgrade(url)
        db = create_engine(url)
        book = await seed_followers(session_factory(db), users, agents, chat=True)
        await seed_open_positions(session_factory(db), book, MARKETS, PRICES)
        await db.dispose()
        yield url


def _request(kind: str, user: int, agents: int, users: int) -> Request:
    if kind == "button":
        agent = random.randint(1, agents)
        position = (agent - 1) * users + user  # bench.book: position id = deployment id
        return Request("console", str(user), str(user), button=f"pc:{position}")
    return Request("console", str(user), str(user), text=f"/{kind}")


async def _throughput(
    bot: Bot, kinds: list[str], users: int, agents: int, n: int
) -> tuple[float, float]:
    """(updates a second, updates per second of this process's CPU time, threads included:
    what one core would serve if the machine were not shared)."""
    rng = random.Random(7)
    todo = [_request(rng.choice(kinds), rng.randint(1, users), agents, users) for _ in range(n)]
    queue = iter(todo)

    async def worker() -> None:
        for req in queue:
            response = await bot.handle(req)
            assert response.replies, req

    t0, cpu0 = time.perf_counter(), time.process_time()
    await asyncio.gather(*(worker() for _ in range(IN_FLIGHT)))
    wall, cpu = time.perf_counter() - t0, time.process_time() - cpu0
    return n / wall, n / cpu


MET = "mix, every user met before"
MET_POSITIONS = "/positions, every user met before"


async def _meet_everyone(bot: Bot, users: int) -> None:
    queue = iter(range(1, users + 1))

    async def worker() -> None:
        for user in queue:
            await bot.handle(Request("console", str(user), str(user), text="/help"))

    await asyncio.gather(*(worker() for _ in range(IN_FLIGHT)))


async def measure(url: str, users: int, agents: int, n: int, kinds: dict[str, list[str]]) -> dict:
    db = create_engine(url)
    try:
        await refresh_statistics(db)  # as `maxxit run` does at start
        sessions = session_factory(db)
        prices = PriceBook()
        for m, p in PRICES.items():
            prices.update(PriceTick(NOW, m, p))
        venue = PaperVenue("HYPERLIQUID", hyperliquid_markets(), prices)
        engine = Engine(sessions, {"HYPERLIQUID": venue}, prices, RulesClassifier())
        await engine.start()
        bot = Bot(Services(sessions, engine))
        await _throughput(bot, ["positions", "pnl"], users, agents, 50)  # warm caches
        out = {name: await _throughput(bot, k, users, agents, n) for name, k in kinds.items()}
        # as a process that has run a while: every user has written once (handlers/
        # known_users.py keeps who they are; the runs above meet most users first, and the
        # small book's users more often than the big one's)
        await _meet_everyone(bot, users)
        if "mix" in kinds:
            out[MET] = await _throughput(bot, kinds["mix"], users, agents, n)
        out[MET_POSITIONS] = await _throughput(bot, ["positions"], users, agents, n)
        return out
    finally:
        await db.dispose()


async def main_async(args: argparse.Namespace) -> None:
    tune_gc()
    kinds = {
        "/positions": ["positions"],
        "/pnl": ["pnl"],
        "button": ["button"],
        "mix": ["positions", "pnl", "button"],
    }
    small_users = args.users // 10
    async with (
        seeded(args.database_url, args.users, args.agents) as big,
        seeded(args.database_url, small_users, args.agents) as small,
    ):
        runs = []
        for i in range(args.trials):
            out = {}
            for name in ["big", "small"] if i % 2 == 0 else ["small", "big"]:
                async with clone_of(big if name == "big" else small) as url:
                    if name == "big":
                        out[name] = await measure(url, args.users, args.agents, args.updates, kinds)
                    else:
                        pos = {"/positions": ["positions"]}
                        out[name] = await measure(url, small_users, args.agents, args.updates, pos)
            runs.append(out)
    backend = "postgresql" if args.database_url else "sqlite"
    print(
        f"backend={backend} users={args.users} open positions={args.users * args.agents}"
        f" updates={args.updates} in flight={IN_FLIGHT} trials={args.trials}"
    )
    for name in [*kinds, MET]:
        per = [r["big"][name][0] for r in runs]
        cpu = [r["big"][name][1] for r in runs]
        trials = ", ".join(f"{x:.0f}" for x in per)
        print(
            f"  {name}: {statistics.median(per):.0f} updates/s (trials: {trials});"
            f" per CPU-second: {statistics.median(cpu):.0f}"
            f" (trials: {', '.join(f'{x:.0f}' for x in cpu)})"
        )
    ratios = [r["small"]["/positions"][1] / r["big"]["/positions"][1] for r in runs]
    print(
        f"  /positions with {small_users * args.agents} open in all vs"
        f" {args.users * args.agents}: "
        + ", ".join(
            f"{r['small']['/positions'][1]:.0f} vs {r['big']['/positions'][1]:.0f}"
            f" per CPU-s = {x:.2f}x"
            for r, x in zip(runs, ratios, strict=True)
        )
    )
    print(
        f"  {MET_POSITIONS}, {small_users * args.agents} open in all vs"
        f" {args.users * args.agents}: "
        + ", ".join(
            f"{r['small'][MET_POSITIONS][1]:.0f} vs {r['big'][MET_POSITIONS][1]:.0f}"
            f" per CPU-s = {r['small'][MET_POSITIONS][1] / r['big'][MET_POSITIONS][1]:.2f}x"
            for r in runs
        )
    )


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--users", type=int, default=10_000)
    ap.add_argument("--agents", type=int, default=10)
    ap.add_argument("--updates", type=int, default=2000)
    ap.add_argument("--trials", type=int, default=3)
    ap.add_argument("--database-url", default=None)
    asyncio.run(main_async(ap.parse_args()))


if __name__ == "__main__":
    main()
