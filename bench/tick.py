"""A real tick through the engine: 100,000 open positions (100 agents x 1,000 followers; 10
agents trade ETH, the other 90 a market each), one price update that crosses the stops of
1,000 (one market's signal) or 10,000 (ETH's ten signals), timed from `Engine.on_price` until
every close is recorded (close orders written, sent to the paper venue, filled, positions
closed with their PnL, alerts written). The floor, in the same trial on a copy of the same
database: the bare writes of those closes through the driver's fastest path (bench/bare.py):
read the positions, insert the close orders, update them with their fills, update the
positions, insert the alerts.

    python -m bench.tick [--followers 1000] [--closing 1000 10000] [--trials 3]
                         [--database-url URL]
"""

from __future__ import annotations

import argparse
import asyncio
import gc
import json
import os
import statistics
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from decimal import Decimal
from typing import Any

from sqlalchemy import func, select, text

from bench.bare import Bare
from bench.book import NOW, clone_of, seed_followers, seed_open_positions
from bench.timing import Stopwatch, Timed, ratios
from bot.runtime import tune_gc
from engine.classify.rules import RulesClassifier
from engine.client_ids import client_order_id
from engine.markets import MarketInfo, hyperliquid_markets
from engine.pipeline import Engine
from engine.prices import PriceBook, PriceTick
from engine.replay.runner import fresh_database
from engine.venues.paper import PaperVenue
from storage.db import create_engine, session_factory
from storage.enums import PositionStatus
from storage.migrate import upgrade
from storage.models import Position

FOLLOWERS, AGENTS, ON_ETH = 1000, 100, 10
MARKETS = ["ETH"] * ON_ETH + [f"M{a}" for a in range(ON_ETH + 1, AGENTS + 1)]
PRICES = {"ETH": Decimal("2000")} | {m: Decimal("100") for m in MARKETS[ON_ETH:]}

CLOSE_COLUMNS = (
    "id", "signal_id", "deployment_id", "purpose", "client_order_id", "venue", "account",
    "market", "side", "reduce_only", "isolated_margin", "size", "leverage", "collateral_usd",
    "status", "close_reason", "send_attempts", "close_seq", "created_at", "updated_at",
)  # fmt: skip
FILL_COLUMNS = ("status", "fill_price", "filled_size", "fee", "venue_order_id", "updated_at")
CLOSED_COLUMNS = (
    "status", "closed_at", "exit_price", "close_fee", "realized_pnl", "close_reason",
    "closed_size", "closed_gross_pnl",
)  # fmt: skip
ALERT_COLUMNS = ("user_id", "kind", "payload", "dedupe_key", "status", "attempts", "created_at")
POSITIONS_SQL = (
    "SELECT p.id, p.signal_id, p.deployment_id, p.account, p.size, p.leverage, p.entry_price,"
    " p.open_fee, d.user_id FROM positions p JOIN deployments d ON d.id = p.deployment_id"
    " WHERE p.market = {p} AND p.status = 'open'"
)


@asynccontextmanager
async def seeded(database_url: str | None) -> AsyncIterator[str]:
    async with fresh_database(database_url) as url:
        await upgrade(url)
        db = create_engine(url)
        sessions = session_factory(db)
        book = await seed_followers(sessions, FOLLOWERS, AGENTS)
        await seed_open_positions(sessions, book, MARKETS, PRICES)
        async with db.begin() as c:
            await c.execute(text("ANALYZE"))
        await db.dispose()
        yield url


def _venue(prices: PriceBook) -> PaperVenue:
    markets = hyperliquid_markets() | {m: MarketInfo(m) for m in MARKETS[ON_ETH:]}
    return PaperVenue("HYPERLIQUID", markets, prices)


async def _engine_tick(url: str, market: str, drop: Decimal, closing: int) -> Timed:
    db = create_engine(url)
    try:
        sessions = session_factory(db)
        prices = PriceBook()
        for m, p in PRICES.items():
            prices.update(PriceTick(NOW, m, p))
        engine = Engine(sessions, {"HYPERLIQUID": _venue(prices)}, prices, RulesClassifier())
        await engine.start()
        assert len(engine.index) == FOLLOWERS * AGENTS
        gc.collect()
        clock = Stopwatch()
        closed = await engine.on_price(PriceTick(NOW, market, drop))
        elapsed = clock.read()
        assert closed == closing, closed
        await _check(sessions, closing)
        return elapsed
    finally:
        await db.dispose()


async def _bare_closes(url: str, market: str, drop: Decimal, closing: int) -> Timed:
    db = create_engine(url)
    try:
        sessions = session_factory(db)
        async with sessions() as s, s.begin():
            bare = await Bare.of(await s.connection())
            m, t = bare.money, bare.time(NOW)
            fee, price = Decimal("0.05"), drop
            clock = Stopwatch()
            rows = await bare.fetch(
                POSITIONS_SQL.format(p="?"), POSITIONS_SQL.format(p="$1"), market
            )
            orders, fills, positions, alerts = [], [], [], []
            for i, (pid, sid, did, account, size, lev, entry, open_fee, uid) in enumerate(rows):
                oid = 50_000_000 + i
                size, entry, open_fee = Decimal(size), Decimal(entry), Decimal(open_fee)
                cloid = client_order_id("bare", sid, did, "close")
                orders.append(
                    (oid, sid, did, "close", cloid, "HYPERLIQUID", account, market, "long",
                     True, False, m(size), m(Decimal(lev)), m(Decimal(0)), "pending",
                     "stop_loss", 1, 0, t, t)
                )  # fmt: skip
                fills.append((oid, "filled", m(price), m(size), m(fee), f"paper-{oid}", t))
                gross = (price - entry) * size
                pnl = gross - open_fee - fee
                positions.append(
                    (pid, "closed", t, m(price), m(fee), m(pnl), "stop_loss", m(size), m(gross))
                )
                payload = json.dumps({"position_id": pid, "pnl": str(pnl)})
                alerts.append((uid, "position_closed", payload, f"c:{pid}", "pending", 0, t))
            await bare.insert("orders", CLOSE_COLUMNS, orders)
            await bare.update("orders", FILL_COLUMNS, fills)
            await bare.update("positions", CLOSED_COLUMNS, positions)
            await bare.insert("outbox", ALERT_COLUMNS, alerts)
        elapsed = clock.read()
        await _check(sessions, closing)
        return elapsed
    finally:
        await db.dispose()


async def _check(sessions: Any, closing: int) -> None:
    async with sessions() as s:
        stmt = select(func.count()).where(Position.status == PositionStatus.CLOSED)
        assert (await s.execute(stmt)).scalar_one() == closing


async def main_async(args: argparse.Namespace) -> None:
    global FOLLOWERS
    FOLLOWERS = args.followers
    tune_gc()
    backend = "postgresql" if args.database_url else "sqlite"
    async with seeded(args.database_url) as template:
        for closing in args.closing or [FOLLOWERS, FOLLOWERS * ON_ETH]:
            market = "ETH" if closing == FOLLOWERS * ON_ETH else "M11"
            assert closing in (FOLLOWERS, FOLLOWERS * ON_ETH), "one signal's followers or ten"
            drop = PRICES[market] * Decimal("0.96")  # through the 3% stop
            runs = []
            for i in range(args.trials):
                out = {}
                for name in ["engine", "bare"] if i % 2 == 0 else ["bare", "engine"]:
                    async with clone_of(template) as url:
                        step = _engine_tick if name == "engine" else _bare_closes
                        out[name] = await step(url, market, drop, closing)
                runs.append((out["engine"], out["bare"]))
            print(
                f"backend={backend} open={FOLLOWERS * AGENTS} closing={closing}"
                f" trials={args.trials} load={' '.join(f'{x:.1f}' for x in os.getloadavg())}"
            )
            ticks, bares = [r[0] for r in runs], [r[1] for r in runs]
            med = statistics.median
            print(
                f"  median: tick {med(e.wall for e in ticks) * 1000:.0f} ms,"
                f" bare writes {med(b.wall for b in bares) * 1000:.0f} ms"
            )
            print("  per trial (tick / bare): " + ratios(ticks, bares))
            print(
                f"  median ratio: {med(e.wall / b.wall for e, b in runs):.2f}x"
                f" (cpu {med(e.cpu / b.cpu for e, b in runs):.2f}x)",
                flush=True,
            )


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--followers", type=int, default=FOLLOWERS, help="per agent (100 agents)")
    ap.add_argument("--closing", type=int, nargs="+", default=None, help="followers x 1 or 10")
    ap.add_argument("--trials", type=int, default=3)
    ap.add_argument("--database-url", default=None)
    asyncio.run(main_async(ap.parse_args()))


if __name__ == "__main__":
    main()
