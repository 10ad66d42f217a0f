"""Orders on the paper venue are filled and recorded in the transaction that writes them
(engine/immediate.py): a rollback after the paper fill leaves the paper books as they were,
and the retry, or the restart, fills each order once."""

from __future__ import annotations

import asyncio
from collections import Counter
from decimal import Decimal
from typing import Any

import pytest
from sqlalchemy import func, select, update
from sqlalchemy.exc import OperationalError

import engine.execute
import engine.immediate
from engine.classify.rules import RulesClassifier
from engine.immediate import Immediate, NotWritten
from engine.ingest import IncomingPost
from engine.markets import hyperliquid_markets
from engine.notify import write_outbox
from engine.pipeline import Engine
from engine.prices import PriceBook, PriceTick
from engine.replay.runner import _seed
from engine.venues.paper import PaperVenue
from storage.models import Order, OutboxMessage, Position, Signal
from tests.replay_helpers import agent, scenario
from tests.test_paper_undo import books
from tests.test_pipeline import NOW, _count, _engine, post

D = Decimal
DEPLOYMENTS = [{"collateral_usd": "100", "leverage": "2"}] * 3


def _fail_outbox(monkeypatch: pytest.MonkeyPatch, venue: PaperVenue, error: Exception) -> list:
    """The first write of alerts fails (after the paper fills): a record of what the paper
    venue held at that moment."""
    real = write_outbox
    seen: list[dict[str, Any]] = []

    async def failing(s, events):  # type: ignore[no-untyped-def]
        if not seen:
            seen.append(books(venue))
            raise error
        await real(s, events)

    monkeypatch.setattr(engine.immediate, "write_outbox", failing)
    return seen


def _locked() -> OperationalError:
    # what SQLite says when another writer holds the lock too long: a transient conflict
    return OperationalError("INSERT ...", {}, Exception("database is locked"))


async def _statuses(sessions) -> Counter:
    async with sessions() as s:
        return Counter((await s.execute(select(Order.status))).scalars())


async def test_a_fan_out_whose_transaction_aborts_after_the_fill_is_retried_and_fills_once(
    sessions, monkeypatch
) -> None:
    engine_ = await _engine(sessions, DEPLOYMENTS)
    venue = engine_.venues["HYPERLIQUID"]
    seen = _fail_outbox(monkeypatch, venue, _locked())
    await engine_.ingest(post())
    assert len(seen[0]["fills"]) == 3  # the first attempt had filled them at the venue
    assert len(venue._fills) == 3
    async with sessions() as s:
        cloids = dict((await s.execute(select(Order.account, Order.client_order_id))).all())
    assert len(venue.accounts) == 3
    for name, acc in venue.accounts.items():
        fill = venue._fills[cloids[name]]
        assert acc.balance == -fill.fee  # one fee paid, not two
        assert acc.size("ETH", "long") == fill.size
    assert await _count(sessions, Position) == 3
    assert await _statuses(sessions) == {"filled": 3}
    assert await _count(sessions, OutboxMessage, OutboxMessage.kind == "position_opened") == 3
    assert len(engine_.index) == 3  # the monitor learnt them after the commit


async def test_a_fan_out_that_fails_leaves_the_paper_books_as_before_and_a_restart_fills_once(
    sessions, monkeypatch
) -> None:
    engine_ = await _engine(sessions, DEPLOYMENTS)
    venue = engine_.venues["HYPERLIQUID"]
    before = books(venue)
    seen = _fail_outbox(monkeypatch, venue, RuntimeError("a bug while recording"))
    with pytest.raises(RuntimeError):
        await engine_.ingest(post())
    assert len(seen[0]["fills"]) == 3
    assert books(venue) == before  # no fill, no holding, no fee, no account left behind
    assert await _count(sessions, Order) == 0 and await _count(sessions, Position) == 0
    assert len(engine_.index) == 0
    await engine_.start()  # a restart routes the signal again: each order fills once
    assert len(venue._fills) == 3 and len(venue.accounts) == 3
    assert await _count(sessions, Position) == 3
    assert await _statuses(sessions) == {"filled": 3}


async def test_closes_whose_transaction_fails_after_the_fill_leave_the_books_and_retry_once(
    sessions, monkeypatch
) -> None:
    engine_ = await _engine(sessions, DEPLOYMENTS)
    venue = engine_.venues["HYPERLIQUID"]
    await engine_.ingest(post())
    async with sessions() as s:
        ids = list((await s.execute(select(Position.id).order_by(Position.id))).scalars())
    before = books(venue)
    seen = _fail_outbox(monkeypatch, venue, RuntimeError("a bug while recording"))
    with pytest.raises(RuntimeError):
        await engine_.close_positions(dict.fromkeys(ids, "manual"))
    assert len(seen[0]["fills"]) == 6  # the closes had filled at the venue
    assert books(venue) == before  # holdings, balances, liquidation prices as they were
    assert await _count(sessions, Position, Position.status == "open") == 3

    monkeypatch.setattr(engine.immediate, "write_outbox", _failing_once(_locked()))
    await engine_.close_positions(dict.fromkeys(ids, "manual"))
    assert len(venue._fills) == 6
    for acc in venue.accounts.values():
        assert acc.positions == {}
    assert await _count(sessions, Position, Position.status == "closed") == 3
    assert await _statuses(sessions) == {"filled": 6}
    assert await _count(sessions, OutboxMessage, OutboxMessage.kind == "position_closed") == 3
    async with sessions() as s:
        realized = dict((await s.execute(select(Position.account, Position.realized_pnl))).all())
    # our books equal the venue's: each account's cash moved by its one round trip (fees
    # included), to the 18 decimals money is stored with
    assert realized.keys() == venue.accounts.keys()
    for name, pnl in realized.items():
        assert abs(venue.accounts[name].balance - pnl) < D("1e-17")


def _failing_once(error: Exception):  # type: ignore[no-untyped-def]
    real = write_outbox
    failed: list[bool] = []

    async def failing(s, events):  # type: ignore[no-untyped-def]
        if not failed:
            failed.append(True)
            raise error
        await real(s, events)

    return failing


async def test_two_engines_sharing_one_paper_venue_fill_and_record_each_order_once(
    sessions,
) -> None:
    """Two replicas fed the same posts at once, each filling in its writing transaction:
    each order reaches the venue once, each position opens and closes once."""
    users = [
        {"name": f"u{i}", "deployments": [{"agent": "Hawk", "collateral_usd": "100",
                                           "leverage": "3"}]}
        for i in range(5)
    ]  # fmt: skip
    await _seed(sessions, scenario(agents=[agent(take_profit_pct="0.05")], users=users))
    markets = ["ETH", "SOL", "BTC", "AVAX", "DOGE"]
    prices = PriceBook()
    for m in markets:
        prices.update(PriceTick(NOW, m, D(100)))
    venue = PaperVenue("HYPERLIQUID", hyperliquid_markets(), prices)
    engines = [
        Engine(sessions, {"HYPERLIQUID": venue}, prices, RulesClassifier(), clock=lambda: NOW)
        for _ in range(2)
    ]
    for e in engines:
        await e.namespace()
    posts = [
        IncomingPost("x", "@hawk", f"p{i}", f"Long ${m} #{i}", NOW) for i, m in enumerate(markets)
    ]
    await asyncio.gather(*(e.ingest(p) for p in posts for e in engines))
    assert len(venue._fills) == 25
    for m in markets:
        await asyncio.gather(*(e.on_price(PriceTick(NOW, m, D(106))) for e in engines))
    assert len(venue._fills) == 50
    assert all(not a.positions for a in venue.accounts.values())
    async with sessions() as s:
        statuses = Counter(p.status for p in (await s.execute(select(Position))).scalars())
        kinds = Counter(m.kind for m in (await s.execute(select(OutboxMessage))).scalars())
        orders = (await s.execute(select(func.count()).select_from(Order))).scalar_one()
    assert statuses == {"closed": 25} and orders == 50
    assert kinds["position_opened"] == kinds["position_closed"] == 25


async def test_orders_another_writer_wrote_first_are_not_filled_before_their_insert(
    sessions, monkeypatch
) -> None:
    """A signal routed again (a restart) whose opens another writer commits after this one
    read the followers (a race: a part skips followers it sees served, so only the INSERT
    finds them): the fills made before the INSERT are undone with the transaction, which
    runs again and claims those rows the usual way; each order fills once."""
    engine_ = await _engine(sessions, DEPLOYMENTS)
    venue = engine_.venues["HYPERLIQUID"]
    # an earlier life wrote the opens (unclaimed) and died before sending them
    nothing = _nothing_filled(monkeypatch)
    await engine_.ingest(post())
    nothing.undo()
    async with sessions() as s, s.begin():
        await s.execute(
            update(Order).values(
                claimed_by=None, lease_until=None, send_attempts=0, settled_by=None
            )
        )
        await s.execute(update(Signal).values(status="routed"))
    assert await _statuses(sessions) == {"pending": 3} and venue._fills == {}
    seen: list[str] = []
    real = Immediate.record_written

    async def watched(self, s, written, now):  # type: ignore[no-untyped-def]
        try:
            return await real(self, s, written, now)
        except NotWritten:
            seen.append("not written")
            raise

    monkeypatch.setattr(Immediate, "record_written", watched)
    read_before_they_were_written = engine.execute.active_deployments

    async def racing(session, agent_id, part=None, signal_id=None):  # type: ignore[no-untyped-def]
        return await read_before_they_were_written(session, agent_id)

    monkeypatch.setattr(engine.execute, "active_deployments", racing)
    await engine_.start()
    assert seen  # filled before the INSERT, found not written, rolled back
    assert len(venue._fills) == 3 and len(venue.accounts) == 3
    for acc in venue.accounts.values():
        assert acc.balance == -next(iter(venue._fills.values())).fee
    assert await _statuses(sessions) == {"filled": 3}
    assert await _count(sessions, Position) == 3


def _nothing_filled(monkeypatch: pytest.MonkeyPatch) -> pytest.MonkeyPatch:
    """The paper path off and sending a no-op: orders are written, not sent."""
    patch = pytest.MonkeyPatch()
    patch.setattr(Immediate, "fill_rows", lambda self, rows, now: None)
    patch.setattr(Immediate, "fill_and_record", _none)
    patch.setattr(Engine, "_send", _none)
    return patch


async def _none(*args: object, **kwargs: object) -> None:
    return None


async def test_a_close_the_paper_venue_refuses_is_written_refused_and_told(sessions) -> None:
    """Closes filled before their INSERT where the venue refuses one (it holds nothing):
    that order is written refused, its position stays open for the retry, the user is told;
    the others close."""
    engine_ = await _engine(sessions, DEPLOYMENTS)
    venue = engine_.venues["HYPERLIQUID"]
    await engine_.ingest(post())
    async with sessions() as s:
        positions = (await s.execute(select(Position).order_by(Position.id))).scalars().all()
    venue.accounts[positions[0].account].positions.clear()  # the venue lost that holding
    await engine_.close_positions({p.id: "manual" for p in positions})
    async with sessions() as s:
        closes = (
            (await s.execute(select(Order).where(Order.purpose == "close").order_by(Order.id)))
            .scalars()
            .all()
        )
        statuses = {p.id: p.status for p in (await s.execute(select(Position))).scalars()}
    assert [o.status for o in closes] == ["rejected", "filled", "filled"]
    assert closes[0].error == "reduce_only_increase"
    assert [statuses[p.id] for p in positions] == ["open", "closed", "closed"]
    assert await _count(sessions, OutboxMessage, OutboxMessage.kind == "order_failed") == 1
    assert len(engine_.close_retries) == 1  # its close is retried on the next ticks


async def test_a_fan_out_filled_before_its_insert_is_recorded_in_parts(
    sessions, monkeypatch
) -> None:
    """Every follower's open is claimed and filled in the one transaction that writes them,
    however many (no batches to claim after it), and recorded in parts whose id lists stay
    under PostgreSQL's bind parameter limit."""
    monkeypatch.setattr(engine.immediate, "RECORD_PART", 2)
    engine_ = await _engine(sessions, [{"collateral_usd": "100", "leverage": "2"}] * 5)
    venue = engine_.venues["HYPERLIQUID"]
    parts: list[int] = []
    real = engine.immediate.record_outcomes

    async def counted(s, outcomes, *args, **kwargs):  # type: ignore[no-untyped-def]
        parts.append(len(outcomes))
        return await real(s, outcomes, *args, **kwargs)

    monkeypatch.setattr(engine.immediate, "record_outcomes", counted)
    await engine_.ingest(post())
    assert parts == [2, 2, 1]
    assert len(venue._fills) == 5 and len(engine_.index) == 5
    assert await _statuses(sessions) == {"filled": 5}
    assert await _count(sessions, Position) == 5
    assert await _count(sessions, OutboxMessage, OutboxMessage.kind == "position_opened") == 5
