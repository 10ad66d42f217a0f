"""Fan-out benchmark: one post to N followers of an agent on the paper venue, timed until every
order, position and "position opened" alert is committed; against two floors measured in the
same trial, in the same database, through the driver's fastest path (bench/bare.py):

- bare writes: every write the fan-out must make and nothing else: read the deployments,
  insert the orders, update them with their fills, insert the positions, insert the alerts;
- orders + positions: the two inserts alone.

Trials interleave the three (their order rotates), each on a freshly seeded database.

    python -m bench.fanout [--deployments 10000] [--trials 3] [--database-url URL]
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import statistics
from collections.abc import Awaitable, Callable
from datetime import timedelta
from decimal import Decimal
from typing import Any

from sqlalchemy import delete, insert, select

from bench.bare import Bare
from bench.book import NOW, PARAMS, seed_followers
from bench.timing import Stopwatch, Timed, ratios
from bot.runtime import tune_gc
from engine.classify.rules import RulesClassifier
from engine.client_ids import client_order_id
from engine.ingest import IncomingPost
from engine.levels import RiskLevels
from engine.markets import hyperliquid_markets
from engine.pipeline import Engine
from engine.prices import PriceBook, PriceTick
from engine.replay.runner import fresh_database
from engine.venues.paper import PaperVenue
from storage.db import create_engine, session_factory
from storage.migrate import upgrade
from storage.models import Order, OutboxMessage, Position, Post, Signal
from storage.statistics import refresh_statistics

ETH = Decimal("3000")
BARE_SIGNAL = 1_000_000  # the floors' own post and signal, apart from the fan-out's
BARE_IDS = 10_000_000  # the floors write explicit ids (no read-back): the cheapest possible

ORDER_COLUMNS = (
    "id", "signal_id", "deployment_id", "purpose", "client_order_id", "venue", "account",
    "market", "side", "reduce_only", "isolated_margin", "size", "leverage", "collateral_usd",
    "reference_price", "status", "send_attempts", "close_seq", "created_at", "updated_at",
)  # fmt: skip
FILL_COLUMNS = ("status", "fill_price", "filled_size", "fee", "venue_order_id", "updated_at")
POSITION_COLUMNS = (
    "id", "deployment_id", "signal_id", "open_order_id", "venue", "account", "market", "side",
    "size", "leverage", "entry_price", "open_fee", "stop_price", "take_profit_price",
    "trailing_activation_price", "trailing_distance_pct", "trailing_active", "peak_price",
    "status", "opened_at", "created_at",
)  # fmt: skip
ALERT_COLUMNS = ("user_id", "kind", "payload", "dedupe_key", "status", "attempts", "created_at")

DEPLOYMENTS_SQL = (
    "SELECT d.id, d.user_id, d.account, d.collateral_usd, d.leverage, u.settings"
    " FROM deployments d JOIN users u ON u.id = d.user_id"
    " WHERE d.agent_id = {p} AND d.status = 'active' ORDER BY d.id"
)


async def _fan_out(sessions: Any, trial: int) -> Timed:
    prices = PriceBook()
    prices.update(PriceTick(NOW, "ETH", ETH))
    venue = PaperVenue("HYPERLIQUID", hyperliquid_markets(), prices)
    engine = Engine(sessions, {"HYPERLIQUID": venue}, prices, RulesClassifier(), clock=lambda: NOW)
    post = IncomingPost("x", "@hawk", f"fan-{trial}", "Long $ETH, breakout", NOW)
    clock = Stopwatch()
    await engine.ingest(post)
    return clock.read()


async def _bare(sessions: Any, n: int, everything: bool) -> Timed:
    levels = RiskLevels.initial("long", ETH, PARAMS)
    async with sessions() as s, s.begin():
        bare = await Bare.of(await s.connection())
        m, t = bare.money, bare.time(NOW)
        fee, stop, tp = m(Decimal("0.15")), m(levels.stop), m(levels.take_profit)
        act, dist = m(levels.activation), m(levels.distance)
        lev, entry, no = m(Decimal(3)), m(ETH), False
        clock = Stopwatch()
        if everything:
            deployments = await bare.fetch(
                DEPLOYMENTS_SQL.format(p="?"), DEPLOYMENTS_SQL.format(p="$1"), 1
            )
        else:  # the inserts alone: the deployments' values as the seed wrote them
            deployments = [(d, d, f"paper:{d}:1", 100 + d % 50) for d in range(1, n + 1)]
        sized = {c: m((Decimal(c) * 3 / ETH).quantize(Decimal("0.0001"))) for c in range(100, 150)}
        orders, positions, fills, alerts = [], [], [], []
        for i, (did, uid, account, collateral, *_) in enumerate(deployments):
            oid = BARE_IDS + i
            size = sized[int(collateral)]
            cloid = client_order_id("bare", BARE_SIGNAL, did, "open")
            status = "pending" if everything else "filled"
            orders.append(
                (oid, BARE_SIGNAL, did, "open", cloid, "HYPERLIQUID", account, "ETH", "long",
                 no, no, size, lev, m(Decimal(collateral)), entry, status, 1, 0, t, t)
            )  # fmt: skip
            positions.append(
                (oid, did, BARE_SIGNAL, oid, "HYPERLIQUID", account, "ETH", "long", size, lev,
                 entry, fee, stop, tp, act, dist, no, entry, "open", t, t)
            )  # fmt: skip
            if everything:
                fills.append((oid, "filled", entry, size, fee, f"paper-{oid}", t))
                payload = json.dumps({"position_id": oid, "market": "ETH", "size": str(size)})
                alerts.append((uid, "position_opened", payload, f"o:{oid}", "pending", 0, t))
        await bare.insert("orders", ORDER_COLUMNS, orders)
        if everything:
            await bare.update("orders", FILL_COLUMNS, fills)
        await bare.insert("positions", POSITION_COLUMNS, positions)
        if everything:
            await bare.insert("outbox", ALERT_COLUMNS, alerts)
    return clock.read()


async def _clear(sessions: Any) -> None:
    async with sessions() as s, s.begin():
        await s.execute(delete(OutboxMessage))
        await s.execute(delete(Position))
        await s.execute(delete(Order))


async def seed_bare_signal(sessions: Any) -> None:
    """The floors' own post and signal, apart from the fan-out's."""
    async with sessions() as s, s.begin():
        await s.execute(
            insert(Post),
            [{"id": BARE_SIGNAL, "source_id": 1, "external_id": "bare", "text": "-",
              "posted_at": NOW, "content_hash": "bare"}],
        )  # fmt: skip
        await s.execute(
            insert(Signal),
            [{"id": BARE_SIGNAL, "agent_id": 1, "post_id": BARE_SIGNAL, "market": "ETH",
              "side": "long", "confidence": Decimal(1), "status": "executed",
              "signal_at": NOW - timedelta(days=1)}],
        )  # fmt: skip


async def trial(database_url: str | None, n: int, number: int) -> dict[str, Timed]:
    async with fresh_database(database_url) as url:
        await upgrade(url)
        db = create_engine(url)
        try:
            sessions = session_factory(db)
            await seed_followers(sessions, n)
            await seed_bare_signal(sessions)
            # planner statistics of the followers, as `maxxit run` keeps them (at start and
            # every 10 minutes); the fan-out's own rows are new to them, as in the product
            await refresh_statistics(db)
            steps: dict[str, Callable[[], Awaitable[Timed]]] = {
                "fan-out": lambda: _fan_out(sessions, number),
                "bare writes": lambda: _bare(sessions, n, everything=True),
                "orders+positions": lambda: _bare(sessions, n, everything=False),
            }
            names = list(steps)
            names = names[number % 3 :] + names[: number % 3]  # rotate the order per trial
            out = {}
            for name in names:
                out[name] = await steps[name]()
                await _check(sessions, name, n)
                await _clear(sessions)
            return out
        finally:
            await db.dispose()


async def _check(sessions: Any, name: str, n: int) -> None:
    async with sessions() as s:
        positions = len((await s.execute(select(Position.id))).all())
        alerts = len((await s.execute(select(OutboxMessage.id))).all())
    assert positions == n, (name, positions)
    assert alerts == (0 if name == "orders+positions" else n), (name, alerts)


async def main_async(args: argparse.Namespace) -> None:
    tune_gc()  # as every maxxit command runs
    backend = "postgresql" if args.database_url else "sqlite"
    for n in args.deployments:
        runs = []
        for i in range(args.trials):
            runs.append(await trial(args.database_url, n, i))
        fan = [r["fan-out"] for r in runs]
        bare = [r["bare writes"] for r in runs]
        op = [r["orders+positions"] for r in runs]
        wall = statistics.median
        print(f"backend={backend} followers={n} trials={args.trials} load={_load()}")
        print(
            f"  median: fan-out {wall(f.wall for f in fan) * 1000:.0f} ms, bare writes"
            f" {wall(b.wall for b in bare) * 1000:.0f} ms, orders+positions"
            f" {wall(o.wall for o in op) * 1000:.0f} ms;"
            f" per follower {wall(f.wall for f in fan) / n * 1e6:.1f} us"
            f" (cpu {wall(f.cpu for f in fan) / n * 1e6:.1f} us)"
        )
        print("  per trial, fan-out / bare writes: " + ratios(fan, bare))
        print("  per trial, fan-out / orders+positions: " + ratios(fan, op))
        by_wall = wall(f.wall / b.wall for f, b in zip(fan, bare, strict=True))
        by_cpu = wall(f.cpu / b.cpu for f, b in zip(fan, bare, strict=True))
        print(f"  median ratio to bare writes: {by_wall:.2f}x (cpu {by_cpu:.2f}x)", flush=True)


def _load() -> str:
    return " ".join(f"{x:.1f}" for x in os.getloadavg())


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--deployments", type=int, nargs="+", default=[10_000])
    ap.add_argument("--trials", type=int, default=3)
    ap.add_argument("--database-url", default=None)
    asyncio.run(main_async(ap.parse_args()))


if __name__ == "__main__":
    main()
