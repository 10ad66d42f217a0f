"""Stop latency under load: the time from a price tick that crosses a stop to that position's
close order reaching the venue, while a fan-out of N opens is in flight against a venue that
enforces Hyperliquid's request-weight budget (1,200 per minute, engine/venues/hyperliquid_
limits.WeightLimiter, the limiter the live venue uses); next to the same with no fan-out in
flight, and the floor: one close order row written and handed to the venue, nothing else.

    python -m bench.stop_latency [--fanout 2000] [--closes 20] [--database-url URL]

"Reaching the venue" is the moment the close has its budget and would go on the wire; the
venue then fills it on the paper book.
"""

from __future__ import annotations

import argparse
import asyncio
import statistics
import time
from datetime import UTC, datetime
from decimal import Decimal
from typing import Any

from sqlalchemy import insert

from bot.runtime import tune_gc
from engine.classify.rules import RulesClassifier
from engine.ingest import IncomingPost
from engine.markets import hyperliquid_markets
from engine.pipeline import Engine
from engine.prices import PriceBook, PriceTick
from engine.replay.runner import fresh_database
from engine.venues.base import Fill, OrderRequest
from engine.venues.hyperliquid_limits import WeightLimiter, exchange_weight
from engine.venues.paper import PaperVenue
from storage.db import create_engine, session_factory
from storage.migrate import upgrade
from storage.models import Agent, Deployment, Order, Source, User
from storage.models import agent_sources as agent_sources_table

NOW = datetime(2026, 11, 20, 10, tzinfo=UTC)
# markets Hyperliquid lists and the rules classifier reads, one guarded position each
GUARDED = ["BTC", "SOL", "DOGE", "LINK", "AVAX", "ARB", "OP", "LTC", "XRP", "BNB",
           "APT", "ATOM", "SUI", "INJ", "TIA", "SEI", "WIF"]  # fmt: skip


class BudgetVenue:
    """The paper book behind Hyperliquid's weight budget: every order spends its weight in
    the shared limiter first (closes as urgent, as the live venue does)."""

    def __init__(self, inner: PaperVenue, limiter: WeightLimiter) -> None:
        self.inner, self.name, self.limiter = inner, inner.name, limiter
        self.reached: dict[str, float] = {}  # close cloid -> when it had its budget

    def markets(self) -> Any:
        return self.inner.markets()

    async def find_order(self, account: str, client_order_id: str) -> Fill | None:
        return await self.inner.find_order(account, client_order_id)

    async def place_order(self, order: OrderRequest) -> Fill:
        spent = await self.limiter.acquire(exchange_weight(1), urgent=order.reduce_only)
        if order.reduce_only:
            self.reached[order.client_order_id] = time.perf_counter()
        try:
            return await self.inner.place_order(order)
        finally:
            self.limiter.settle(spent)


def _agent(agent_id: int, name: str) -> dict[str, Any]:
    return {
        "id": agent_id,
        "name": name,
        "venue": "HYPERLIQUID",
        "venue_preference": [],
        "leverage": Decimal(5),
        "stop_loss_pct": Decimal("0.03"),
        "min_confidence": Decimal("0.3"),
    }


async def _seed(sessions: Any, fanout: int) -> None:
    async with sessions() as s, s.begin():
        await s.execute(
            insert(Source),
            [
                {"id": 1, "kind": "x", "handle": "@crowd"},
                {"id": 2, "kind": "x", "handle": "@guard"},
            ],
        )
        await s.execute(insert(Agent), [_agent(1, "Crowd"), _agent(2, "Guard")])
        await s.execute(
            agent_sources_table.insert(),
            [{"agent_id": 1, "source_id": 1}, {"agent_id": 2, "source_id": 2}],
        )
        n = fanout + 1
        await s.execute(
            insert(User),
            [{"id": i, "display_name": f"u{i}", "settings": {}} for i in range(1, n + 1)],
        )
        rows = [
            {"id": i, "user_id": i, "agent_id": 1, "collateral_usd": Decimal(100),
             "leverage": Decimal(3), "account": f"paper:{i}"}
            for i in range(1, n)
        ]  # fmt: skip
        rows.append(
            {"id": n, "user_id": n, "agent_id": 2, "collateral_usd": Decimal(100),
             "leverage": Decimal(3), "account": "paper:guard"}
        )  # fmt: skip
        await s.execute(insert(Deployment), rows)


async def trial(
    database_url: str | None, fanout: int, closes: int, budget: int = 1200
) -> list[float]:
    """Latencies (s) of `closes` stop closes, with a fan-out of `fanout` opens in flight."""
    async with fresh_database(database_url) as url:
        await upgrade(url)
        db = create_engine(url)
        try:
            sessions = session_factory(db)
            await _seed(sessions, fanout)
            prices = PriceBook()
            for m in ["ETH", *GUARDED[:closes]]:
                prices.update(PriceTick(NOW, m, Decimal(100)))
            limiter = WeightLimiter(budget=budget)
            venue = BudgetVenue(PaperVenue("HYPERLIQUID", hyperliquid_markets(), prices), limiter)
            engine = Engine(
                sessions, {"HYPERLIQUID": venue}, prices, RulesClassifier(), clock=lambda: NOW
            )
            await engine.start()
            for i, m in enumerate(GUARDED[:closes]):  # the guarded positions, opened first
                await engine.ingest(IncomingPost("x", "@guard", f"g{i}", f"Long ${m} now", NOW))
            crowd: asyncio.Task[Any] | None = None
            if fanout:
                post = IncomingPost("x", "@crowd", "c1", "Long $ETH, breakout", NOW)
                crowd = asyncio.create_task(engine.ingest(post))
                # in flight: the opens have spent what the budget allows and now wait
                while limiter.used() < limiter.budget - limiter.reserve - 5:  # noqa: ASYNC110
                    await asyncio.sleep(0.01)
            latencies = []
            for m in GUARDED[:closes]:
                before = set(venue.reached)
                t0 = time.perf_counter()
                await engine.on_price(PriceTick(NOW, m, Decimal(90)))  # through the 3% stop
                (cloid,) = set(venue.reached) - before
                latencies.append(venue.reached[cloid] - t0)
                await asyncio.sleep(0.05)
            if crowd is not None:
                assert not crowd.done(), "the fan-out finished before the closes were timed"
                crowd.cancel()
            return latencies
        finally:
            await db.dispose()


async def floor(database_url: str | None, closes: int) -> list[float]:
    """The bare work of a close: one order row written in its own transaction, then handed
    to the same venue (budget included)."""
    async with fresh_database(database_url) as url:
        await upgrade(url)
        db = create_engine(url)
        try:
            sessions = session_factory(db)
            await _seed(sessions, 0)
            prices = PriceBook()
            prices.update(PriceTick(NOW, "BTC", Decimal(100)))
            venue = BudgetVenue(
                PaperVenue("HYPERLIQUID", hyperliquid_markets(), prices), WeightLimiter()
            )
            engine = Engine(
                sessions, {"HYPERLIQUID": venue}, prices, RulesClassifier(), clock=lambda: NOW
            )
            await engine.ingest(IncomingPost("x", "@guard", "g", "Long $BTC now", NOW))
            out = []
            for i in range(closes):
                cloid = f"0x{i:032x}"
                t0 = time.perf_counter()
                async with sessions() as s, s.begin():
                    await s.execute(
                        insert(Order).values(
                            signal_id=1, deployment_id=1, purpose=f"close{i}",
                            client_order_id=cloid, venue="HYPERLIQUID", account="paper:guard",
                            market="BTC", side="long", reduce_only=True, size=Decimal("0.01"),
                            leverage=Decimal(3), collateral_usd=Decimal(0), status="pending",
                            created_at=NOW,
                        )
                    )  # fmt: skip
                request = OrderRequest(
                    cloid, "paper:guard", "BTC", "long", Decimal("0.01"), Decimal(3), True
                )
                await venue.place_order(request)
                out.append(venue.reached[cloid] - t0)
            return out
        finally:
            await db.dispose()


def _ms(values: list[float]) -> str:
    return f"median {statistics.median(values) * 1000:.2f} ms, max {max(values) * 1000:.2f} ms"


async def main_async(args: argparse.Namespace) -> None:
    tune_gc()  # as every maxxit command runs
    if args.fanout <= args.budget:
        raise SystemExit("--fanout must exceed --budget, or the fan-out is not left waiting")
    loaded = await trial(args.database_url, args.fanout, args.closes, args.budget)
    idle = await trial(args.database_url, 0, args.closes, args.budget)
    bare = await floor(args.database_url, args.closes)
    backend = "postgresql" if args.database_url else "sqlite"
    print(f"backend={backend} fan-out={args.fanout} opens in flight, closes timed={args.closes}")
    print(f"tick -> close at the venue, fan-out in flight: {_ms(loaded)}")
    print(f"tick -> close at the venue, nothing in flight: {_ms(idle)}")
    print(f"floor (one close row written, then sent):     {_ms(bare)}")
    print(
        f"in flight / idle: {statistics.median(loaded) / statistics.median(idle):.2f}x;"
        f" idle / floor: {statistics.median(idle) / statistics.median(bare):.2f}x"
    )


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--fanout", type=int, default=2000)
    ap.add_argument("--closes", type=int, default=len(GUARDED))
    ap.add_argument("--budget", type=int, default=1200, help="weight per minute (Hyperliquid)")
    ap.add_argument("--database-url", default=None)
    asyncio.run(main_async(ap.parse_args()))


if __name__ == "__main__":
    main()
