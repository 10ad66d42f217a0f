"""Costs that must not grow with the number of followers or open positions (issue 12), held
by what the code reads and how it asks, not by timings (those are in bench/ and
docs/benchmarks.md): a close reads its own position only, start-up builds no ORM objects,
a checkpoint reads only the stops that moved, a user's /positions is found through an index,
each part of a fan-out reads its followers through indexes whatever the statistics, and a
fan-out to more followers than PostgreSQL takes bind parameters works."""

from __future__ import annotations

import asyncio
from collections.abc import Iterator
from contextlib import contextmanager
from decimal import Decimal
from types import SimpleNamespace
from typing import Any

import pytest
from sqlalchemy import event, func, select

from bench.book import NOW, seed_followers, seed_open_positions
from engine import checkpoint as checkpoint_module
from engine.classify.rules import RulesClassifier
from engine.execute import Part, active_deployments
from engine.ingest import IncomingPost
from engine.market_state import market_state
from engine.markets import hyperliquid_markets
from engine.pipeline import Engine
from engine.prices import PriceBook, PriceTick
from engine.venues.paper import PaperVenue
from handlers.base import Request, Services
from handlers.router import Bot
from storage.enums import CloseReason, PositionStatus
from storage.models import Order, OutboxMessage, Position
from storage.statistics import refresh_statistics
from tests.replay_helpers import PG_URL
from tests.test_pipeline import _engine as _pipeline_engine
from tests.test_pipeline import post as _post

D = Decimal
ETH, BTC = D("2000"), D("90000")


@contextmanager
def positions_loaded() -> Iterator[list[int]]:
    """Ids of the Position ORM objects built while the block runs."""
    loaded: list[int] = []

    def on_load(target: Position, _context: object) -> None:
        loaded.append(target.id)

    event.listen(Position, "load", on_load)
    try:
        yield loaded
    finally:
        event.remove(Position, "load", on_load)


@contextmanager
def position_rows_read(sessions) -> Iterator[list[int]]:  # type: ignore[no-untyped-def]
    """Rows each SELECT from positions returned while the block runs (the close path reads
    plain rows, not ORM objects). Both drivers' adapted cursors hold a statement's rows
    (`_rows`) once it has executed."""
    counts: list[int] = []
    sync = sessions.kw["bind"].sync_engine

    def after(_conn, cursor, statement, _parameters, _context, _many) -> None:  # type: ignore[no-untyped-def]
        if statement.lstrip().upper().startswith("SELECT") and "FROM positions" in statement:
            counts.append(len(cursor._rows))

    event.listen(sync, "after_cursor_execute", after)
    try:
        yield counts
    finally:
        event.remove(sync, "after_cursor_execute", after)


@contextmanager
def statements(sessions) -> Iterator[list[tuple[str, object]]]:  # type: ignore[no-untyped-def]
    seen: list[tuple[str, object]] = []
    sync = sessions.kw["bind"].sync_engine

    def before(_conn, _cursor, statement, parameters, _context, _many) -> None:  # type: ignore[no-untyped-def]
        seen.append((statement, parameters))

    event.listen(sync, "before_cursor_execute", before)
    try:
        yield seen
    finally:
        event.remove(sync, "before_cursor_execute", before)


def _engine(sessions) -> Engine:  # type: ignore[no-untyped-def]
    prices = PriceBook()
    prices.update(PriceTick(NOW, "ETH", ETH))
    prices.update(PriceTick(NOW, "BTC", BTC))
    venue = PaperVenue("HYPERLIQUID", hyperliquid_markets(), prices)
    return Engine(sessions, {"HYPERLIQUID": venue}, prices, RulesClassifier(), clock=lambda: NOW)


async def _open_count(sessions) -> int:  # type: ignore[no-untyped-def]
    async with sessions() as s:
        stmt = select(func.count()).where(Position.status == PositionStatus.OPEN)
        return (await s.execute(stmt)).scalar_one()


async def test_a_close_reads_only_its_own_position_among_many_followers(sessions) -> None:
    book = await seed_followers(sessions, users=300)
    await seed_open_positions(sessions, book, ["ETH"], {"ETH": ETH})
    engine = _engine(sessions)
    await engine.start()
    assert len(engine.index) == 300
    mine = book.deployment_id(1, 7)
    with positions_loaded() as loaded, position_rows_read(sessions) as rows:
        await engine.close_positions({mine: CloseReason.MANUAL})
    # the signal has 300 followers; the close read one position: its own, and built none
    assert rows and max(rows) == 1 and loaded == []
    async with sessions() as s:
        closed = await s.get_one(Position, mine)
    assert closed.status == PositionStatus.CLOSED and closed.close_reason == CloseReason.MANUAL
    assert await _open_count(sessions) == 299
    assert mine not in engine.index and len(engine.index) == 299


async def test_start_up_watches_every_open_position_without_building_orm_objects(
    sessions,
) -> None:
    book = await seed_followers(sessions, users=250, agents=2)
    opened = await seed_open_positions(sessions, book, ["ETH", "BTC"], {"ETH": ETH, "BTC": BTC})
    engine = _engine(sessions)
    with positions_loaded() as loaded:
        await engine.start()
    assert loaded == []
    assert len(engine.index) == 500
    for pid, (_market, levels) in list(opened.items())[::37]:
        assert engine.index.state(pid) == (levels.stop, None, False)
    # the monitor acts on what it loaded: BTC through its stop closes BTC's 250, not ETH's
    closed = await engine.on_price(PriceTick(NOW, "BTC", BTC * D("0.96")))
    assert closed == 250
    assert await _open_count(sessions) == 250


async def test_a_checkpoint_reads_only_the_positions_whose_stop_moved(sessions) -> None:
    book = await seed_followers(sessions, users=120, agents=2)
    await seed_open_positions(sessions, book, ["ETH", "BTC"], {"ETH": ETH, "BTC": BTC})
    engine = _engine(sessions)
    await engine.start()
    # ETH rallies past the trailing activation (+2%) and on: its 120 stops trail; BTC is flat
    for px in ("2050", "2100", "2150"):
        await engine.on_price(PriceTick(NOW, "ETH", D(px)))
    await engine.on_price(PriceTick(NOW, "BTC", BTC))
    with statements(sessions) as seen:
        moved = await engine.checkpoint()
    assert len(moved) == 120
    assert all(e.market == "ETH" and e.stop_price == D("2128.5") for e in moved)
    read = [p for sql, p in seen if sql.lstrip().upper().startswith("SELECT")]
    btc_ids = {book.deployment_id(2, u) for u in range(1, 121)}
    for params in read:  # BTC's positions were never asked for
        assert not btc_ids & set(_flat(params)), params
    async with sessions() as s:
        stored = (
            await s.execute(select(Position.stop_price).where(Position.market == "ETH"))
        ).scalars()
        assert set(stored) == {D("2128.5")}
    # nothing moved since: the next checkpoint reads nothing and alerts nobody
    with statements(sessions) as seen:
        assert await engine.checkpoint() == []
    assert seen == []


async def test_a_close_during_a_checkpoint_goes_before_its_remaining_chunks(
    sessions, monkeypatch
) -> None:
    """A stop's close arriving while the checkpoint saves moved stops goes between two of the
    checkpoint's chunks, not after all of them: on SQLite the close waited for the write lock
    while the next chunk took it straight back (engine/price_path.py)."""
    book = await seed_followers(sessions, users=60, agents=2)
    await seed_open_positions(sessions, book, ["ETH", "BTC"], {"ETH": ETH, "BTC": BTC})
    engine = _engine(sessions)
    await engine.start()
    for px in ("2050", "2100", "2150"):  # ETH's 60 stops trail and move
        await engine.on_price(PriceTick(NOW, "ETH", D(px)))
    monkeypatch.setattr(checkpoint_module, "CHUNK", 20)
    chunks_saved: list[int] = []
    save_chunk = checkpoint_module._save_chunk

    async def counted(*args: object) -> list[object]:
        events = await save_chunk(*args)
        chunks_saved.append(len(events))
        return events

    monkeypatch.setattr(checkpoint_module, "_save_chunk", counted)
    saving = asyncio.ensure_future(engine.checkpoint())
    await asyncio.sleep(0)  # the checkpoint has started its first chunk
    # BTC falls through its 3% stop while the checkpoint runs: its 60 positions close
    closed = await engine.on_price(PriceTick(NOW, "BTC", BTC * D("0.96")))
    chunks_before_the_tick_was_done = len(chunks_saved)
    moved = await saving
    assert closed == 60
    assert len(moved) == 60 and chunks_saved == [20, 20, 20]
    assert chunks_before_the_tick_was_done == 1, "the close waited for the checkpoint"


def _flat(params: object) -> list[object]:
    if isinstance(params, (list, tuple)):
        return [x for p in params for x in _flat(p)]
    if isinstance(params, dict):
        return list(params.values())
    return [params]


@pytest.mark.skipif(bool(PG_URL), reason="SQLite's planner is the one that needed it")
async def test_positions_reads_the_users_rows_through_an_index_not_every_open_one(
    sessions,
) -> None:
    book = await seed_followers(sessions, users=400, agents=3, chat=True)
    await seed_open_positions(
        sessions, book, ["ETH", "BTC", "SOL"], {"ETH": ETH, "BTC": BTC, "SOL": D("150")}
    )
    await refresh_statistics(sessions.kw["bind"])
    engine = _engine(sessions)
    await engine.start()
    bot = Bot(Services(sessions, engine, clock=lambda: NOW))
    with statements(sessions) as seen:
        response = await bot.handle(Request("console", "42", "42", text="/positions"))
    assert "3" in response.replies[0].text  # the header counts the user's 3 open positions
    assert len(response.replies) == 4
    query = [(sql, p) for sql, p in seen if "FROM positions" in sql and "deployments" in sql]
    assert query, [sql for sql, _ in seen]
    async with sessions() as s:
        conn = await s.connection()
        for sql, params in query:
            plan = (await conn.exec_driver_sql("EXPLAIN QUERY PLAN " + sql, params)).all()
            steps = " | ".join(str(r[-1]) for r in plan)
            assert "SCAN positions" not in steps, steps


async def test_a_parts_holdings_are_read_through_the_account_index_whatever_the_statistics(
    sessions,
) -> None:
    """Each part of a fan-out asks what its followers' accounts hold in the market, while
    the parts before it write positions its statistics have never seen. The read must probe
    ix_positions_open_account_market per account, on PostgreSQL in a prepared statement's
    generic plan too (a parameterised status cannot use the partial index; a plain join
    walked every position of the market for each follower, 1.3 s to 10 s a part at 50,000
    followers)."""
    book = await seed_followers(sessions, users=2000)
    await refresh_statistics(sessions.kw["bind"])  # followers known, positions none yet
    await seed_open_positions(sessions, book, ["ETH"], {"ETH": ETH})
    signal = SimpleNamespace(id=0, market="ETH")
    async with sessions() as s:
        with statements(sessions) as seen:
            held, _busy = await market_state(s, signal, "HYPERLIQUID", 1, (1, 100))  # type: ignore[arg-type]
        assert sorted(held) == sorted(f"paper:{d}:1" for d in range(1, 101))
        assert all(len(h) == 1 for h in held.values())
        first = held["paper:1:1"][0]  # money typed as money, on SQLite's text statement too
        assert (first.position_id, first.side, first.leverage) == (1, "long", D(3))
        assert first.entry_price == ETH and type(first.size) is D
        (sql, params), *_ = [(q, p) for q, p in seen if "entry_price" in q and "followers" in q]
        plan = await _plan(await s.connection(), sql, params)
        if PG_URL:
            assert "Index Cond: (((account)::text = (deployments.account)::text)" in plan, plan
            assert "Seq Scan on positions" not in plan, plan
        else:
            assert "ix_positions_open_account_market (account=?" in plan, plan
            assert "SCAN p " not in plan and "ix_positions_status" not in plan, plan


async def _plan(conn: Any, sql: str, params: Any) -> str:
    """The plan of `sql`: PostgreSQL's generic one, or SQLite's query plan, its steps
    joined by " | "."""
    if PG_URL:
        return await _generic_plan(conn, sql, params)
    rows = await conn.exec_driver_sql("EXPLAIN QUERY PLAN " + sql, params)
    return " | ".join(str(r[-1]) for r in rows)


async def _generic_plan(conn: Any, sql: str, params: Any) -> str:
    """PostgreSQL's plan of `sql` as a prepared statement settles on after five runs: one
    made without the parameters' values."""
    await conn.exec_driver_sql("SET plan_cache_mode = force_generic_plan")
    name = f"generic_{abs(hash(sql))}"
    await conn.exec_driver_sql(f"PREPARE {name} AS " + sql)
    values = ", ".join(f"'{v}'" if isinstance(v, str) else str(v) for v in params)
    plan = "\n".join(r[0] for r in await conn.exec_driver_sql(f"EXPLAIN EXECUTE {name}({values})"))
    assert "$1" in plan, plan  # generic indeed
    return plan


async def test_a_parts_followers_are_found_by_a_probe_each_whatever_the_statistics(
    sessions,
) -> None:
    """Each part takes the followers with no open order for the signal yet, while the parts
    before it write the orders the planner's statistics have never seen. Each follower must
    be one probe of the unique (signal, deployment) index: PostgreSQL planned an anti-join
    that read every order of the signal once and compared each follower with all of them
    (6-7 s a part at 100,000 followers)."""
    book = await seed_followers(sessions, users=2000)
    await refresh_statistics(sessions.kw["bind"])  # followers known, orders none yet
    await seed_open_positions(sessions, book, ["ETH"], {"ETH": ETH})  # signal 1's opens
    async with sessions() as s:
        assert await active_deployments(s, 1, Part(0, 500), signal_id=1) == []
        # a part one after another (a limit), and a range laid out for parts side by side
        for part in (Part(100, 500), Part(100, 500, upto=600)):
            with statements(sessions) as seen:
                fresh = await active_deployments(s, 1, part, signal_id=2)
            assert [d.id for d in fresh] == list(range(101, 601))
            (sql, params), *_ = [(q, p) for q, p in seen if "EXISTS" in q]
            plan = await _plan(await s.connection(), sql, params)
            if PG_URL:
                assert "Index Cond: ((signal_id = $" in plan, plan
                assert "deployment_id = deployments.id" in plan, plan
                assert "Materialize" not in plan, plan
            else:
                assert "(signal_id=? AND deployment_id=?" in plan, plan


@pytest.mark.skipif(not PG_URL, reason="PostgreSQL's limit of 32,767 bind parameters")
async def test_a_fan_out_to_100000_followers_works_on_postgresql(sessions) -> None:
    await seed_followers(sessions, users=100_000)
    engine = _engine(sessions)
    outcome = await engine.ingest(IncomingPost("x", "@hawk", "1", "Long $ETH, breakout", NOW))
    assert outcome.signals and outcome.signals[0].venue == "HYPERLIQUID"
    async with sessions() as s:
        orders = (await s.execute(select(func.count()).select_from(Order))).scalar_one()
        alerts = (await s.execute(select(func.count()).select_from(OutboxMessage))).scalar_one()
    assert orders == 100_000
    assert await _open_count(sessions) == 100_000
    assert alerts == 100_000
    assert len(engine.index) == 100_000


class _HeldCloses(PaperVenue):
    """A venue across a network: its closes wait until the test lets them through."""

    gate: asyncio.Event
    reached: asyncio.Event

    async def place_order(self, order):  # type: ignore[no-untyped-def]
        if order.reduce_only:
            self.reached.set()
            await self.gate.wait()
        return await super().place_order(order)


async def test_background_writers_do_not_wait_for_a_close_at_the_venue(sessions) -> None:
    """The checkpoint and a fan-out's later parts wait for a tick's close transaction
    (engine/price_path.py), never for its round trip to a venue: that would hold them
    across a network call, for as long as the venue or its rate limit takes."""
    engine_ = await _pipeline_engine(
        sessions, [{"collateral_usd": "100", "leverage": "2"}], venue_cls=_HeldCloses
    )
    venue = engine_.venues["HYPERLIQUID"]
    venue.gate, venue.reached = asyncio.Event(), asyncio.Event()
    await engine_.ingest(_post())
    closing = asyncio.ensure_future(engine_.on_price(PriceTick(NOW, "ETH", D("1900"))))
    await asyncio.wait_for(venue.reached.wait(), timeout=5)  # the close is at the venue
    await asyncio.wait_for(engine_.price_path.wait_turn(), timeout=2)  # not held
    assert not closing.done()  # the close is still at the venue
    venue.gate.set()
    assert await closing == 1
