"""Marketplace benchmark: /agents with thousands of agents and tens of thousands of closed
trades over 30 days, read from the daily roll-up, against the floor of reading the same
figures straight from the positions (what /agents did before: engine/analytics/stats.py).

    python -m bench.marketplace [--agents 2000] [--trades 25] [--trials 5] [--database-url URL]

Timed per trial: the first roll-up (daily rows and the kept standings of every agent), the
marketplace's first page once the roll-up is fresh (a refresh that finds nothing new, one page
read through the standings' place index), one close recorded five minutes before the last
refresh then the page (a late close: the agents and days of the look-back's closes rolled up
again, and the standings of those whose days changed), one close after the last refresh then
the page a minute later (the common case: that agent's day and standing only), a later page,
the baseline (what /agents computed per request before the standings were kept: every agent's
records and figures, all ranked), and the floor (one aggregate over every closed position of
the window).
"""

from __future__ import annotations

import argparse
import asyncio
import random
import statistics
import time
from datetime import UTC, datetime, timedelta
from decimal import Decimal
from typing import Any

from sqlalchemy import insert, select

from engine.analytics.daily import refresh_daily
from engine.analytics.ranking import rank
from engine.analytics.records import agent_records, followers
from engine.analytics.stats import agent_stats
from engine.analytics.summary import window
from engine.classify.rules import RulesClassifier
from engine.markets import default_markets
from engine.pipeline import Engine, EngineConfig
from engine.prices import PriceBook
from engine.replay.runner import fresh_database
from engine.venues.paper import PaperVenue
from handlers.base import Request, Services
from handlers.router import Bot
from storage.bulk import insert_rows
from storage.db import create_engine, session_factory
from storage.migrate import upgrade
from storage.models import Agent, Deployment, Order, Position, Post, Signal, Source, User

NOW = datetime(2026, 11, 20, 10, tzinfo=UTC)
D = Decimal


def _closed_trade(
    n: int, agent: int, closed: datetime, pnl: Decimal
) -> tuple[dict[str, Any], dict[str, Any], dict[str, Any], dict[str, Any]]:
    """The post, signal, order and position rows of trade `n` of `agent` (one follower each:
    deployment id = agent id), closed at `closed` with `pnl`."""
    return (
        {
            "id": n,
            "source_id": 1,
            "external_id": f"p{n}",
            "text": "Long $ETH",
            "posted_at": closed,
            "content_hash": f"h{n}",
        },
        {
            "id": n,
            "agent_id": agent,
            "post_id": n,
            "market": "ETH",
            "side": "long",
            "confidence": D(1),
            "status": "executed",
            "signal_at": closed,
        },
        {
            "id": n,
            "signal_id": n,
            "deployment_id": agent,
            "purpose": "open",
            "client_order_id": f"0x{n:032x}",
            "venue": "HYPERLIQUID",
            "account": "a",
            "market": "ETH",
            "side": "long",
            "size": D("0.3"),
            "leverage": D(3),
            "collateral_usd": D(100),
            "status": "filled",
        },
        {
            "id": n,
            "deployment_id": agent,
            "signal_id": n,
            "open_order_id": n,
            "venue": "HYPERLIQUID",
            "account": "a",
            "market": "ETH",
            "side": "long",
            "size": D("0.3"),
            "leverage": D(3),
            "entry_price": D(1000),
            "open_fee": D("0.1"),
            "stop_price": D(950),
            "peak_price": D(1000),
            "status": "closed",
            "opened_at": closed,
            "exit_price": D(1000) + pnl / D("0.3"),
            "close_fee": D("0.1"),
            "realized_pnl": pnl,
            "close_reason": "take_profit",
            "closed_at": closed,
        },
    )


async def _seed(sessions: Any, agents: int, trades: int) -> None:
    rng = random.Random(7)
    async with sessions() as s, s.begin():
        await s.execute(insert(Source), [{"id": 1, "kind": "x", "handle": "@bench"}])
        await insert_rows(
            s,
            User,
            [
                {"id": i, "display_name": f"u{i}", "language": "en", "settings": {}}
                for i in range(1, agents + 1)
            ],
        )
        await insert_rows(
            s,
            Agent,
            [
                {
                    "id": a,
                    "name": f"Agent{a}",
                    "venue": "HYPERLIQUID",
                    "venue_preference": [],
                    "leverage": D(3),
                    "stop_loss_pct": D("0.05"),
                }
                for a in range(1, agents + 1)
            ],
        )
        await insert_rows(
            s,
            Deployment,
            [
                {
                    "id": a,
                    "user_id": a,
                    "agent_id": a,
                    "mode": "live" if a % 3 else "paper",
                    "status": "active",
                    "collateral_usd": D(100),
                    "leverage": D(3),
                    "account": f"acct{a}",
                }
                for a in range(1, agents + 1)
            ],
        )
    n = 0
    for a in range(1, agents + 1):
        posts, signals, orders, positions = [], [], [], []
        for _ in range(trades):
            n += 1
            closed = NOW - timedelta(minutes=rng.randrange(60, 29 * 24 * 60))
            pnl = D(rng.randrange(-3000, 4000)) / 100
            for rows, row in zip(
                (posts, signals, orders, positions), _closed_trade(n, a, closed, pnl), strict=True
            ):
                rows.append(row)
        async with sessions() as s, s.begin():
            await insert_rows(s, Post, posts)
            await insert_rows(s, Signal, signals)
            await insert_rows(s, Order, orders)
            await insert_rows(s, Position, positions)


async def _one_more_close(
    sessions: Any, n: int, closed: datetime = NOW - timedelta(minutes=5)
) -> None:
    """A trade of agent 1 closed at `closed` (by default five minutes before the last refresh:
    recorded late, so the look-back's closes are rolled up again)."""
    rows = _closed_trade(n, 1, closed, D(3))
    async with sessions() as s, s.begin():
        for model, row in zip((Post, Signal, Order, Position), rows, strict=True):
            await insert_rows(s, model, [row])


async def _per_request_ranking(s: Any) -> None:
    """What /agents did before the kept standings: every agent's 30-day records from the daily
    rows, their figures computed and all ranked, on every request (the baseline)."""
    since, last = window(NOW.date())
    records = await agent_records(s, None, since, last)
    people = await followers(s, None)
    ids = list((await s.execute(select(Agent.id))).scalars())
    rank(ids, records, people)


async def trial(database_url: str | None, agents: int, trades: int) -> dict[str, float]:
    async with fresh_database(database_url) as url:
        await upgrade(url)
        db = create_engine(url)
        sessions = session_factory(db)
        try:
            await _seed(sessions, agents, trades)
            out: dict[str, float] = {}
            started = time.perf_counter()
            async with sessions() as s, s.begin():
                await refresh_daily(s, NOW)
            out["first roll-up"] = time.perf_counter() - started
            prices = PriceBook()
            venues = {n: PaperVenue(n, m, prices) for n, m in default_markets().items()}
            engine = Engine(
                sessions, venues, prices, RulesClassifier(), EngineConfig(), clock=lambda: NOW
            )
            clock = [NOW]
            bot = Bot(Services(sessions, engine, clock=lambda: clock[0]))
            ask = Request("console", "1", "1", text="/agents")
            await bot.handle(ask)  # the user exists; the roll-up is fresh
            started = time.perf_counter()
            page = await bot.handle(ask)
            out["/agents"] = time.perf_counter() - started
            assert "Agent" in page.replies[0].text
            await _one_more_close(sessions, agents * trades + 1)
            started = time.perf_counter()
            await bot.handle(ask)
            out["/agents after a close"] = time.perf_counter() - started
            # a close after the last refresh, then /agents a minute later: the common case
            await _one_more_close(sessions, agents * trades + 2, NOW + timedelta(minutes=1))
            clock[0] = NOW + timedelta(minutes=2)
            started = time.perf_counter()
            await bot.handle(ask)
            out["/agents after an on-time close"] = time.perf_counter() - started
            started = time.perf_counter()
            await bot.handle(Request("console", "1", "1", button="ap:7"))
            out["/agents page 8"] = time.perf_counter() - started
            started = time.perf_counter()
            async with sessions() as s:
                await _per_request_ranking(s)
            out["baseline: figures per request"] = time.perf_counter() - started
            started = time.perf_counter()
            async with sessions() as s:
                await agent_stats(s, list(range(1, agents + 1)), NOW - timedelta(days=30))
            out["floor: positions"] = time.perf_counter() - started
            return out
        finally:
            await db.dispose()


async def main_async(args: argparse.Namespace) -> None:
    runs = [await trial(args.database_url, args.agents, args.trades) for _ in range(args.trials)]
    print(f"{args.agents} agents, {args.agents * args.trades} closed trades over 29 days")
    for key in runs[0]:
        values = [r[key] * 1000 for r in runs]
        print(
            f"{key:24} median {statistics.median(values):8.0f} ms  trials "
            + "/".join(f"{v:.0f}" for v in values)
        )


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--agents", type=int, default=2000)
    ap.add_argument("--trades", type=int, default=25)
    ap.add_argument("--trials", type=int, default=3)
    ap.add_argument("--database-url", default=None)
    asyncio.run(main_async(ap.parse_args()))


if __name__ == "__main__":
    main()
