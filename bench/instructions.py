"""Instructions, not seconds: the fan-out and the tick against their bare writes, counted by
callgrind (valgrind) in this process only while the step runs. Unlike wall or CPU time, a
count is the same from run to run (to about 0.2% here) whatever else the machine does, so
it tells a change of a few percent apart where the timed benchmarks (bench/fanout.py,
bench/tick.py), whose trials drift 15-30% on these shared machines, cannot. It counts our
process only: SQLite's work (in aiosqlite's thread) is in it, PostgreSQL's server is not.

Each step runs once warm (after one unmeasured run of each, so statements are compiled),
in a process of its own under valgrind; the floors are bench/fanout.py's and bench/tick.py's
bare writes, counted the same way in the same run.

    python -m bench.instructions [--followers 2000] [--database-url URL]

Needs valgrind and gcc with valgrind's headers (valgrind/callgrind.h): a tiny library
switches counting on and off around the step.
"""

from __future__ import annotations

import argparse
import asyncio
import ctypes
import gc
import os
import re
import subprocess
import sys
import tempfile
from decimal import Decimal
from pathlib import Path
from typing import Any

from sqlalchemy import text

from bench import fanout, tick
from bench.book import seed_followers, seed_open_positions
from bot.runtime import tune_gc
from engine.classify.rules import RulesClassifier
from engine.pipeline import Engine
from engine.prices import PriceBook, PriceTick
from engine.replay.runner import fresh_database
from storage.db import create_engine, session_factory
from storage.migrate import upgrade
from storage.statistics import refresh_statistics

TOGGLE_C = """#include <valgrind/callgrind.h>
void count_start(void) { CALLGRIND_ZERO_STATS; CALLGRIND_START_INSTRUMENTATION; }
void count_stop(void) { CALLGRIND_STOP_INSTRUMENTATION; CALLGRIND_DUMP_STATS; }
"""
STEPS = ("fan-out", "fan-out bare", "tick", "tick bare")
TICK_MARKETS = ["ETH", "M11", "M12"]  # three agents of 1,000 followers; M11's 1,000 close


def _toggle_library(into: Path) -> Path:
    source, lib = into / "toggle.c", into / "libtoggle.so"
    source.write_text(TOGGLE_C)
    subprocess.run(["gcc", "-shared", "-fPIC", "-O2", "-o", str(lib), str(source)], check=True)
    return lib


async def _fan_out_step(counter: Any, followers: int, bare: bool, url: str | None) -> None:
    async with fresh_database(url) as db_url:
        await upgrade(db_url)
        db = create_engine(db_url)
        try:
            sessions = session_factory(db)
            await seed_followers(sessions, followers)
            await fanout.seed_bare_signal(sessions)
            await refresh_statistics(db)
            await fanout._fan_out(sessions, 99)  # warm: each statement compiled once
            await fanout._clear(sessions)
            await fanout._bare(sessions, followers, everything=True)
            await fanout._clear(sessions)
            gc.collect()
            counter.count_start()
            if bare:
                await fanout._bare(sessions, followers, everything=True)
            else:
                await fanout._fan_out(sessions, 0)
            counter.count_stop()
        finally:
            await db.dispose()


async def _tick_step(counter: Any, bare: bool, url: str | None) -> None:
    async with fresh_database(url) as db_url:
        await upgrade(db_url)
        db = create_engine(db_url)
        try:
            sessions = session_factory(db)
            book = await seed_followers(sessions, tick.FOLLOWERS, len(TICK_MARKETS))
            await seed_open_positions(sessions, book, TICK_MARKETS, tick.PRICES)
            async with db.begin() as c:
                await c.execute(text("ANALYZE"))
            drop = tick.PRICES["M11"] * Decimal("0.96")
            if bare:
                gc.collect()
                counter.count_start()
                await tick._bare_closes(db_url, "M11", drop, tick.FOLLOWERS)
                counter.count_stop()
                return
            prices = PriceBook()
            for market, price in tick.PRICES.items():
                prices.update(PriceTick(tick.NOW, market, price))
            venues = {"HYPERLIQUID": tick._venue(prices)}
            engine = Engine(sessions, venues, prices, RulesClassifier())
            await engine.start()
            gc.collect()
            counter.count_start()
            closed = await engine.on_price(PriceTick(tick.NOW, "M11", drop))
            counter.count_stop()
            assert closed == tick.FOLLOWERS, closed
        finally:
            await db.dispose()


def _count(step: str, args: argparse.Namespace, lib: Path, out: Path) -> int:
    """Run one step in a process of its own under callgrind; its instructions."""
    command = [
        "valgrind", "--tool=callgrind", "--instr-atstart=no",
        f"--callgrind-out-file={out}/%p", sys.executable, "-m", "bench.instructions",
        "--step", step, "--library", str(lib), "--followers", str(args.followers),
    ] + (["--database-url", args.database_url] if args.database_url else [])  # fmt: skip
    done = subprocess.run(command, capture_output=True, text=True, env=os.environ.copy())
    found = re.search(r"Collected : (\d+)", done.stderr)
    if done.returncode != 0 or found is None:
        raise RuntimeError(f"{step} failed under valgrind:\n{done.stderr[-2000:]}")
    return int(found[1])


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--followers", type=int, default=2000, help="of the fan-out")
    ap.add_argument("--database-url", default=None)
    ap.add_argument("--step", choices=STEPS, help=argparse.SUPPRESS)
    ap.add_argument("--library", help=argparse.SUPPRESS)
    args = ap.parse_args()
    if args.step:  # inside valgrind
        tune_gc()
        counter = ctypes.CDLL(args.library)
        if args.step.startswith("fan-out"):
            step = _fan_out_step(counter, args.followers, "bare" in args.step, args.database_url)
        else:
            step = _tick_step(counter, "bare" in args.step, args.database_url)
        asyncio.run(step)
        return
    backend = "postgresql" if args.database_url else "sqlite"
    with tempfile.TemporaryDirectory() as tmp:
        lib = _toggle_library(Path(tmp))
        counts = {step: _count(step, args, lib, Path(tmp)) for step in STEPS}
    print(f"backend={backend} instructions of this process (callgrind)")
    for name in ("fan-out", "tick"):
        ours, floor = counts[name], counts[f"{name} bare"]
        what = f"{args.followers} followers" if name == "fan-out" else "1,000 of 3,000 closing"
        print(
            f"  {name} ({what}): {ours / 1e6:,.0f}M against {floor / 1e6:,.0f}M for the bare"
            f" writes = {ours / floor:.2f}x",
            flush=True,
        )


if __name__ == "__main__":
    main()
