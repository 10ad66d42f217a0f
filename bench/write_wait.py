"""How long another writer waits during a fan-out: while one post fans out to N followers on
the paper venue, a small write transaction (one row updated: what a stop's close needs first,
the write lock on SQLite) is started every 20 ms, and each one's wait until it commits is
measured. On SQLite there is one writer at a time, so this is how long a stop's close may
wait behind a fan-out; on PostgreSQL row locks keep them apart.

    python -m bench.write_wait [--deployments 10000 50000] [--trials 2] [--database-url URL]
"""

from __future__ import annotations

import argparse
import asyncio
import os
import statistics
import time
from typing import Any

from sqlalchemy import text

from bench.book import seed_followers
from bench.fanout import _fan_out
from bot.runtime import tune_gc
from engine.replay.runner import fresh_database
from storage.db import create_engine, session_factory
from storage.migrate import upgrade
from storage.statistics import refresh_statistics


async def _small_writes(sessions: Any, until: asyncio.Future[Any]) -> list[float]:
    waits = []
    while not until.done():
        t0 = time.perf_counter()
        async with sessions() as s, s.begin():
            await s.execute(text("UPDATE agents SET name = name WHERE id = 1"))
        waits.append(time.perf_counter() - t0)
        await asyncio.sleep(0.02)
    return waits


async def trial(database_url: str | None, n: int, number: int) -> tuple[float, list[float]]:
    async with fresh_database(database_url) as url:
        await upgrade(url)
        db = create_engine(url)
        try:
            sessions = session_factory(db)
            await seed_followers(sessions, n)
            # planner statistics of the followers, as `maxxit run` keeps them (at start and
            # every 10 minutes); the fan-out's own rows are new to them, as in the product
            await refresh_statistics(db)
            fan = asyncio.ensure_future(_fan_out(sessions, number))
            waits = await _small_writes(sessions, fan)
            return (await fan).wall, waits
        finally:
            await db.dispose()


async def main_async(args: argparse.Namespace) -> None:
    tune_gc()
    backend = "postgresql" if args.database_url else "sqlite"
    for n in args.deployments:
        print(
            f"backend={backend} followers={n} trials={args.trials}"
            f" load={' '.join(f'{x:.1f}' for x in os.getloadavg())}"
        )
        for number in range(args.trials):
            took, waits = await trial(args.database_url, n, number)
            ms = sorted(w * 1000 for w in waits)
            print(
                f"  trial {number + 1}: fan-out {took * 1000:.0f} ms; {len(ms)} small writes"
                f" during it waited at most {ms[-1]:.0f} ms (median {statistics.median(ms):.1f})",
                flush=True,
            )


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--deployments", type=int, nargs="+", default=[10_000, 50_000])
    ap.add_argument("--trials", type=int, default=2)
    ap.add_argument("--database-url", default=None)
    asyncio.run(main_async(ap.parse_args()))


if __name__ == "__main__":
    main()
