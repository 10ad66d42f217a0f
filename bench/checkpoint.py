"""Does the checkpoint delay a tick? 100,000 open positions (bench/tick.py's book); ETH's
10,000 have their trailing stop running and a new peak, so the checkpoint must save 10,000
moved stops (and write their alerts). While it runs, a stream of price updates for the other
markets (none crossing a level) goes through `Engine.on_price`, one every `--every` ms, and
each update's latency is measured from when it was due to when `on_price` returned: waiting
for the event loop included. The baseline, in the same trial on the same engine: the same
stream for as long with no checkpoint running. The two alternate their order per trial.

    python -m bench.checkpoint [--followers 1000] [--trials 3] [--every 2] [--close-after 10]
                               [--database-url URL]
"""

from __future__ import annotations

import argparse
import asyncio
import gc
import os
import statistics
import time
from decimal import Decimal

from bench import tick
from bench.book import NOW
from bench.tick import AGENTS, MARKETS, ON_ETH, PRICES, _venue, seeded
from bot.runtime import tune_gc
from engine.classify.rules import RulesClassifier
from engine.pipeline import Engine
from engine.prices import PriceBook, PriceTick
from storage.db import create_engine, session_factory

OTHERS = MARKETS[ON_ETH:]


async def _stream(engine: Engine, every: float, until: asyncio.Future[None] | float) -> list[float]:
    """Ticks on the other markets, one due every `every` seconds, until `until` is done (a
    future) or that many seconds have passed; each one's latency from when it was due."""
    latencies: list[float] = []
    start = time.perf_counter()
    n = 0
    while True:
        due = start + n * every
        now = time.perf_counter()
        if isinstance(until, float):
            if now - start >= until:
                return latencies
        elif until.done():
            return latencies
        if due > now:
            await asyncio.sleep(due - now)
        market = OTHERS[n % len(OTHERS)]
        wiggle = Decimal("0.001") if n % 2 else Decimal("-0.001")  # far from every level
        await engine.on_price(PriceTick(NOW, market, PRICES[market] * (1 + wiggle)))
        latencies.append(time.perf_counter() - due)
        n += 1


async def _closing_ticks(
    engine: Engine, trial: int, peak: Decimal, after: float
) -> dict[str, float]:
    """A tick through one market's 3% stop (a signal's followers close), timed while a
    checkpoint of ETH's 10,000 moved stops runs and, on another market, with none running."""
    markets = {"checkpoint": OTHERS[2 * trial], "none": OTHERS[2 * trial + 1]}
    took: dict[str, float] = {}
    for name in ["checkpoint", "none"] if trial % 2 else ["none", "checkpoint"]:
        market = markets[name]
        crash = PriceTick(NOW, market, PRICES[market] * Decimal("0.96"))
        task = None
        if name == "checkpoint":
            await engine.on_price(PriceTick(NOW, "ETH", peak * Decimal("1.003")))  # stops move
            task = asyncio.ensure_future(engine.checkpoint())
            await asyncio.sleep(after)
        t0 = time.perf_counter()
        closed = await engine.on_price(crash)
        took[name] = time.perf_counter() - t0
        assert closed > 0, market
        if task is not None:
            await task
    return took


def _summary(latencies: list[float]) -> str:
    ms = sorted(x * 1000 for x in latencies)
    p99 = ms[min(len(ms) - 1, int(len(ms) * 0.99))]
    return f"{len(ms)} ticks, p50 {statistics.median(ms):.2f} ms, p99 {p99:.2f}, max {ms[-1]:.2f}"


async def main_async(args: argparse.Namespace) -> None:
    tick.FOLLOWERS = followers = args.followers  # what seeded() writes
    tune_gc()
    backend = "postgresql" if args.database_url else "sqlite"
    every = args.every / 1000
    async with seeded(args.database_url) as url:
        db = create_engine(url)
        try:
            prices = PriceBook()
            for m, p in PRICES.items():
                prices.update(PriceTick(NOW, m, p))
            engine = Engine(
                session_factory(db), {"HYPERLIQUID": _venue(prices)}, prices, RulesClassifier()
            )
            await engine.start()
            assert len(engine.index) == followers * AGENTS
            # past the 2% activation: ETH's trails start (saved at once, not by a checkpoint)
            await engine.on_price(PriceTick(NOW, "ETH", PRICES["ETH"] * Decimal("1.025")))
            await engine.checkpoint()
            print(
                f"backend={backend} open={len(engine.index)} moved per checkpoint="
                f"{followers * ON_ETH} tick every {args.every} ms trials={args.trials}"
                f" load={' '.join(f'{x:.1f}' for x in os.getloadavg())}"
            )
            for trial in range(args.trials):
                # a new peak for every ETH position: 10,000 stops to save (below the 10% take profit
                # for 10 trials)
                peak = PRICES["ETH"] * (Decimal("1.03") + Decimal("0.006") * trial)
                await engine.on_price(PriceTick(NOW, "ETH", peak))
                gc.collect()
                results: dict[str, tuple[list[float], float]] = {}
                for name in ["checkpoint", "none"] if trial % 2 == 0 else ["none", "checkpoint"]:
                    if name == "checkpoint":
                        t0 = time.perf_counter()
                        task = asyncio.ensure_future(engine.checkpoint())
                        lat = await _stream(engine, every, task)
                        saved = len(await task)
                        took = time.perf_counter() - t0
                        assert saved == followers * ON_ETH, saved
                        results[name] = (lat, took)
                    else:
                        span = results["checkpoint"][1] if "checkpoint" in results else 1.0
                        results[name] = (await _stream(engine, every, span), span)
                lat, took = results["checkpoint"]
                print(f"  trial {trial + 1}: checkpoint of {saved} stops took {took * 1000:.0f} ms")
                print(f"    ticks during it:   {_summary(lat)}")
                print(f"    ticks without it:  {_summary(results['none'][0])}")
                closing = await _closing_ticks(engine, trial, peak, args.close_after / 1000)
                print(
                    f"    a tick closing {followers} positions:"
                    f" {closing['checkpoint'] * 1000:.0f} ms"
                    f" when it arrives {args.close_after:.0f} ms into a checkpoint,"
                    f" {closing['none'] * 1000:.0f} ms without one",
                    flush=True,
                )
        finally:
            await db.dispose()


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--followers", type=int, default=1000, help="per agent (100 agents)")
    ap.add_argument("--trials", type=int, default=3)
    ap.add_argument("--every", type=float, default=2.0, help="ms between ticks")
    ap.add_argument("--close-after", type=float, default=10.0, help="ms into the checkpoint")
    ap.add_argument("--database-url", default=None)
    asyncio.run(main_async(ap.parse_args()))


if __name__ == "__main__":
    main()
