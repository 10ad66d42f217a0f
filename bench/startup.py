"""`maxxit run` with 100,000 open positions against an empty database: time until ready (the
"maxxit running" line: migrations checked, statistics refreshed, every open position under
the monitor, paper books restored, web server up), the process's resident memory then (RSS,
from /proc, not tracemalloc), and shutdown (final checkpoint included). Each run is a fresh
process on a fresh copy of the database; empty and full runs alternate.

    python -m bench.startup [--users 10000] [--agents 10] [--trials 3] [--database-url URL]
"""

from __future__ import annotations

import argparse
import asyncio
import json
import logging
import os
import statistics
import subprocess
import sys
import tempfile
import time
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from decimal import Decimal

from bench.book import clone_of, seed_followers, seed_open_positions
from engine.replay.runner import fresh_database
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


def rss_bytes() -> int:
    with open("/proc/self/status") as f:
        for line in f:
            if line.startswith("VmRSS:"):
                return int(line.split()[1]) * 1024
    raise RuntimeError("no VmRSS")


async def child(url: str) -> dict[str, float]:
    """One `maxxit run` (bot.service.run), stopped as soon as it says it is ready."""
    from bot.runtime import tune_gc
    from bot.service import run
    from bot.settings import Settings

    tune_gc()
    stop = asyncio.Event()
    marks: dict[str, float] = {}

    class Ready(logging.Handler):
        def emit(self, record: logging.LogRecord) -> None:
            if record.getMessage().startswith("maxxit running") and "ready" not in marks:
                marks["ready"] = time.perf_counter()
                marks["cpu"] = time.process_time()
                marks["rss"] = rss_bytes()
                stop.set()

    logging.getLogger("bot.service").addHandler(Ready())
    logging.getLogger("bot.service").setLevel(logging.INFO)
    with tempfile.TemporaryDirectory() as tmp:
        settings = Settings(database_url=url, data_dir=tmp, port=0, telegram_bot_token=None)
        t0, cpu0 = time.perf_counter(), time.process_time()
        await run(settings, stop)
        done = time.perf_counter()
    return {
        "ready_s": marks["ready"] - t0,
        "ready_cpu_s": marks["cpu"] - cpu0,  # this process's CPU time: the machine is shared
        "shutdown_s": done - marks["ready"],
        "rss_bytes": marks["rss"],
    }


@asynccontextmanager
async def seeded(database_url: str | None, users: int, agents: int) -> AsyncIterator[str]:
    async with fresh_database(database_url) as url:
        await upgrade(url)
        if users:
            db = create_engine(url)
            book = await seed_followers(session_factory(db), users, agents)
            await seed_open_positions(session_factory(db), book, MARKETS, PRICES)
            # as a running service leaves it (it refreshes them every 10 minutes): a restart
            # finds current statistics, and PostgreSQL does not analyze again
            await refresh_statistics(db)
            await db.dispose()
        yield url


def _spawn(url: str) -> dict[str, float]:
    out = subprocess.run(
        [sys.executable, "-m", "bench.startup", "--child", url],
        check=True,
        capture_output=True,
        text=True,
        env={**os.environ, "PYTHONPATH": os.getcwd()},
    )
    return json.loads(out.stdout.strip().splitlines()[-1])


async def main_async(args: argparse.Namespace) -> None:
    open_positions = args.users * args.agents
    async with (
        seeded(args.database_url, 0, 0) as empty,
        seeded(args.database_url, args.users, args.agents) as full,
    ):
        runs: list[tuple[dict[str, float], dict[str, float]]] = []
        for i in range(args.trials):
            result = {}
            for name in ["empty", "full"] if i % 2 == 0 else ["full", "empty"]:
                async with clone_of(empty if name == "empty" else full) as url:
                    result[name] = await asyncio.to_thread(_spawn, url)
            runs.append((result["empty"], result["full"]))
    backend = "postgresql" if args.database_url else "sqlite"
    print(f"backend={backend} open positions={open_positions} trials={args.trials}")
    for e, f in runs:
        extra = f["ready_s"] - e["ready_s"]
        per = (f["rss_bytes"] - e["rss_bytes"]) / open_positions
        print(
            f"  ready {e['ready_s'] * 1000:.0f} ms empty / {f['ready_s'] * 1000:.0f} ms full"
            f" (+{extra * 1000:.0f} ms); shutdown {e['shutdown_s'] * 1000:.0f} /"
            f" {f['shutdown_s'] * 1000:.0f} ms; CPU to ready {e['ready_cpu_s'] * 1000:.0f} /"
            f" {f['ready_cpu_s'] * 1000:.0f} ms; RSS {e['rss_bytes'] / 2**20:.0f} /"
            f" {f['rss_bytes'] / 2**20:.0f} MiB = {per:.0f} bytes per open position"
        )
    extra = statistics.median(f["ready_s"] - e["ready_s"] for e, f in runs)
    extra_cpu = statistics.median(f["ready_cpu_s"] - e["ready_cpu_s"] for e, f in runs)
    per = statistics.median((f["rss_bytes"] - e["rss_bytes"]) / open_positions for e, f in runs)
    print(
        f"  median: +{extra * 1000:.0f} ms to ready (+{extra_cpu * 1000:.0f} ms of CPU),"
        f" {per:.0f} bytes RSS per open position"
    )


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--users", type=int, default=10_000)
    ap.add_argument("--agents", type=int, default=10)
    ap.add_argument("--trials", type=int, default=3)
    ap.add_argument("--database-url", default=None)
    ap.add_argument("--child", default=None, help=argparse.SUPPRESS)
    args = ap.parse_args()
    if args.child:
        print(json.dumps(asyncio.run(child(args.child))))
        return
    asyncio.run(main_async(args))


if __name__ == "__main__":
    main()
