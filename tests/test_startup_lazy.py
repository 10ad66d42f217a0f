"""What start-up with many open positions leaves for later (issue 12), held by what the code
builds and reads, not by timings (those are in bench/startup.py and docs/benchmarks.md): the
paper venue builds a restored holding only when it is needed, a replica's sync does not read
again what start-up is loading, and PostgreSQL's statistics are refreshed only where they are
missing or stale."""

from __future__ import annotations

import asyncio
from decimal import Decimal

import pytest
from sqlalchemy import text, update

from bench.book import NOW, seed_followers, seed_open_positions
from engine.classify.rules import RulesClassifier
from engine.liquidation import liquidation_price
from engine.markets import hyperliquid_markets
from engine.pipeline import Engine
from engine.prices import PriceBook, PriceTick
from engine.venues.paper import PaperVenue
from storage.models import Position
from storage.statistics import refresh_statistics
from tests.replay_helpers import PG_URL

D = Decimal
ETH, BTC = D("2000"), D("90000")


def _engine(sessions) -> tuple[Engine, PaperVenue]:  # type: ignore[no-untyped-def]
    prices = PriceBook()
    prices.update(PriceTick(NOW, "ETH", ETH))
    prices.update(PriceTick(NOW, "BTC", BTC))
    venue = PaperVenue("HYPERLIQUID", hyperliquid_markets(), prices)
    engine = Engine(sessions, {"HYPERLIQUID": venue}, prices, RulesClassifier(), clock=lambda: NOW)
    return engine, venue


async def test_start_up_builds_paper_holdings_only_when_needed(sessions) -> None:
    book = await seed_followers(sessions, users=150, agents=2)
    opened = await seed_open_positions(sessions, book, ["ETH", "BTC"], {"ETH": ETH, "BTC": BTC})
    engine, venue = _engine(sessions)
    assert await engine.watch.sync() == set()  # before start-up's load: nothing read twice
    assert len(engine.index) == 0
    await engine.start()
    assert len(engine.index) == 300  # every open position watched
    assert venue.accounts == {}  # and not one paper holding built yet
    # a tick far from every liquidation price builds none either
    await engine.on_price(PriceTick(NOW, "ETH", ETH * D("0.99")))
    assert venue.accounts == {}
    # BTC through its stops: the 150 closes build their holdings, and close them
    assert await engine.on_price(PriceTick(NOW, "BTC", BTC * D("0.96"))) == 150
    assert len(venue.accounts) == 150
    assert all(acc.positions == {} for acc in venue.accounts.values())
    # an ETH holding asked about is built as start-up would have built it: its margin gives
    # the isolated liquidation price of its entry and leverage
    pid = next(p for p, (market, _) in opened.items() if market == "ETH")
    async with sessions() as s:
        p = await s.get(Position, pid)
    assert p is not None
    mmr = hyperliquid_markets()["ETH"].maintenance_margin_rate
    got = venue.liquidation_price(p.account, "ETH", "long")
    assert got is not None and abs(
        got - liquidation_price("long", p.entry_price, p.leverage, mmr)
    ) < D("1e-20")


@pytest.mark.skipif(not PG_URL, reason="PostgreSQL: SQLite's bounded ANALYZE runs every time")
async def test_statistics_are_refreshed_only_where_missing_or_stale(sessions) -> None:
    book = await seed_followers(sessions, users=300)
    await seed_open_positions(sessions, book, ["ETH"], {"ETH": ETH})
    for table in ("positions", "orders", "deployments"):
        await _changes_counted(sessions, table, 300)
    db = sessions.kw["bind"]
    assert {"positions", "orders", "deployments"} <= set(await refresh_statistics(db))
    current = await refresh_statistics(db)  # a restart with current statistics
    assert not {"positions", "orders", "deployments"} & set(current)
    async with sessions() as s, s.begin():  # every position changes: more than 10% of 1,000
        await s.execute(update(Position).values(peak_price=ETH + 1))
    await _changes_counted(sessions, "positions", 300)
    assert "positions" in await refresh_statistics(db)


async def _changes_counted(sessions, table: str, n: int) -> None:  # type: ignore[no-untyped-def]
    """PostgreSQL counts a backend's row changes when it reports them, up to a second or so
    after its transaction: wait until `n` changes to `table` are counted."""
    query = text("SELECT n_mod_since_analyze FROM pg_stat_user_tables WHERE relname = :t")
    for _ in range(100):
        async with sessions() as s:
            if ((await s.execute(query, {"t": table})).scalar() or 0) >= n:
                return
        await asyncio.sleep(0.1)
