"""Replicas sharing one database, in one process: market shards and singleton jobs spread
over live replicas and taken over when one lapses; two engines fed the same posts send each
order once and record each fill once; a close goes first for Hyperliquid's weight budget."""

from __future__ import annotations

import asyncio
import os
import subprocess
import sys
import time
from collections import Counter
from collections.abc import Mapping
from datetime import UTC, datetime, timedelta
from decimal import Decimal

from sqlalchemy import func, select

from bot.telegram_limits import ChatRateLimiter
from engine.classify.rules import RulesClassifier
from engine.coordination.ownership import SHARDS, ShardLeases, shard_of
from engine.coordination.send_budget import SharedSendBudget
from engine.ingest import IncomingPost
from engine.markets import MarketInfo, hyperliquid_markets
from engine.pipeline import Engine
from engine.prices import PriceBook, PriceTick
from engine.replay.runner import _seed
from engine.venues.base import Fill, OrderRequest
from engine.venues.hyperliquid_limits import WeightLimiter
from engine.venues.paper import PaperVenue
from storage.models import LedgerEntry, Order, OutboxMessage, Position
from tests.replay_helpers import agent, scenario

T0 = datetime(2026, 11, 29, 12, tzinfo=UTC)


class Clock:
    def __init__(self) -> None:
        self.now = T0

    def __call__(self) -> datetime:
        return self.now


async def test_shards_spread_over_replicas_and_a_lapsed_one_is_taken_over(sessions) -> None:
    clock = Clock()
    ttl = timedelta(seconds=8)
    a = ShardLeases(sessions, "a", ("poll_x", "outbox"), ttl=ttl, clock=clock)
    b = ShardLeases(sessions, "b", ("poll_x", "outbox"), ttl=ttl, clock=clock)
    await a.round()
    assert len(a.held_shards) == SHARDS and a.runs("poll_x") and a.runs("outbox")
    await b.round()  # b joins: a counts two replicas and hands half back on its next round
    await a.round()
    await b.round()
    assert len(a.held_shards) == len(b.held_shards) == SHARDS // 2
    assert not a.held_shards & b.held_shards
    assert not b.runs("poll_x")  # a singleton stays where it is
    for market in ("ETH", "BTC", "SOL", "XAU"):
        assert a.owns(market) != b.owns(market)  # every market watched by exactly one
    # a dies (stops renewing); after its leases lapse, b's next round takes everything
    clock.now += ttl + timedelta(seconds=1)
    assert not a.owns("ETH") and not a.runs("poll_x")  # a stalled replica stops acting too
    change = await b.round()
    assert len(b.held_shards) == SHARDS and b.runs("poll_x") and b.runs("outbox")
    assert change.gained and not change.lost
    # a comes back: it rejoins and gets its fair part again, never a shard b still holds
    await a.round()
    await b.round()
    await a.round()
    assert not a.held_shards & b.held_shards
    assert len(a.held_shards) + len(b.held_shards) == SHARDS
    assert a.held_shards and b.held_shards


async def test_a_clean_stop_hands_shards_over_at_once(sessions) -> None:
    clock = Clock()
    a = ShardLeases(sessions, "a", ("reconcile",), clock=clock)
    b = ShardLeases(sessions, "b", ("reconcile",), clock=clock)
    await a.round()
    await b.round()
    await a.resign()
    await b.round()  # no lapse to wait for
    assert len(b.held_shards) == SHARDS and b.runs("reconcile")


def test_markets_hash_the_same_in_every_process() -> None:
    # replicas started with different hash seeds must agree on which shard a market is in
    code = "from engine.coordination.ownership import shard_of;print([shard_of(m) for m in "
    code += "['ETH', 'BTC', 'SOL', 'XAU', 'EURUSD']])"
    outputs = {
        subprocess.run(
            [sys.executable, "-c", code],
            env={**os.environ, "PYTHONHASHSEED": seed},
            capture_output=True,
            text=True,
            check=True,
        ).stdout
        for seed in ("1", "2", "3")
    }
    assert len(outputs) == 1
    assert len({shard_of(m) for m in hyperliquid_markets()}) > SHARDS // 2  # markets spread


class CountingVenue:
    """A paper venue shared by two engines that counts every order it receives by client
    order id, without deduplicating: a second send is a second fill."""

    def __init__(self, inner: PaperVenue) -> None:
        self.inner, self.name = inner, inner.name
        self.received: Counter[str] = Counter()

    def markets(self) -> Mapping[str, MarketInfo]:
        return self.inner.markets()

    async def find_order(self, account: str, client_order_id: str) -> Fill | None:
        return await self.inner.find_order(account, client_order_id)

    async def place_order(self, order: OrderRequest) -> Fill:
        self.received[order.client_order_id] += 1
        await asyncio.sleep(0.001)  # a round trip: the other engine runs meanwhile
        return self.inner.fill(order)


async def test_two_engines_fed_the_same_posts_send_and_record_each_order_once(sessions) -> None:
    users = [
        {"name": f"u{i}", "deployments": [{"agent": "Hawk", "collateral_usd": "100",
                                           "leverage": "3"}]}
        for i in range(6)
    ]  # fmt: skip
    await _seed(sessions, scenario(agents=[agent(take_profit_pct="0.05")], users=users))
    # twelve calls in twelve markets: an account holds one position per market, and the
    # agent's position policy (ignore) would skip a second call in a market already held
    markets = ["ETH", "SOL", "BTC", "ATOM", "DYDX", "AVAX", "BNB", "APE", "OP", "LTC", "ARB"]
    markets.append("DOGE")
    prices = PriceBook()
    for m in markets:
        prices.update(PriceTick(T0, m, Decimal(100)))
    venue = CountingVenue(PaperVenue("HYPERLIQUID", hyperliquid_markets(), prices))
    engines = [
        Engine(sessions, {"HYPERLIQUID": venue}, prices, RulesClassifier(), clock=lambda: T0)
        for _ in range(2)
    ]
    for e in engines:
        await e.namespace()
    posts = [
        IncomingPost("x", "@hawk", f"p{i}", f"Long ${m} now #{i}", T0)
        for i, m in enumerate(markets)
    ]
    # both engines ingest every post at once, as two replicas polling one source would
    await asyncio.gather(*(e.ingest(p) for p in posts for e in engines))
    assert len(venue.received) == 12 * 6 and max(venue.received.values()) == 1
    # both see every tick: the opens' recorders added them to both monitors; each closes once
    for m in markets:
        await asyncio.gather(*(e.on_price(PriceTick(T0, m, Decimal(106))) for e in engines))
    assert len(venue.received) == 2 * 12 * 6 and max(venue.received.values()) == 1
    async with sessions() as s:
        positions = (await s.execute(select(Position))).scalars().all()
        ledger = (await s.execute(select(func.count()).select_from(LedgerEntry))).scalar_one()
        kinds = Counter(m.kind for m in (await s.execute(select(OutboxMessage))).scalars())
        pending = (
            await s.execute(
                select(func.count()).select_from(Order).where(Order.status == "pending")
            )
        ).scalar_one()
    assert len(positions) == 72 and {p.status for p in positions} == {"closed"}
    assert {p.close_reason for p in positions} == {"take_profit"}
    assert kinds["position_opened"] == kinds["position_closed"] == 72
    assert pending == 0 and ledger == 0  # paper trades pay no profit share


async def test_a_close_goes_first_when_opens_have_spent_the_budget() -> None:
    limiter = WeightLimiter(budget=100, window=60.0, reserve=10)
    for _ in range(90):  # a fan-out spends all an open may spend
        await limiter.acquire(1)
    blocked_open = asyncio.create_task(limiter.acquire(1))
    await asyncio.sleep(0.05)
    assert not blocked_open.done()  # opens may not touch the reserve
    close = await asyncio.wait_for(limiter.acquire(1, urgent=True), timeout=0.5)
    assert close and limiter.used() == 91
    blocked_open.cancel()


async def test_two_replicas_hold_telegrams_limits_together(sessions) -> None:
    """Each replica's limiter alone allows 30 a second; with the shared budget, the two
    together never put more than 30 messages in one second, nor two in one chat."""
    sent: list[tuple[float, int]] = []

    async def deliver(chat_id: int) -> bool:
        sent.append((time.time(), chat_id))
        return True

    limiters = [ChatRateLimiter(shared=SharedSendBudget(sessions)) for _ in range(2)]

    async def send(limiter: ChatRateLimiter, chat_id: int) -> None:
        await limiter.process_request(
            deliver, (chat_id,), {}, "sendMessage", {"chat_id": chat_id}, None
        )

    # 80 messages to 40 chats (two each), half from each replica, all at once
    await asyncio.gather(*(send(limiters[i % 2], i % 40) for i in range(80)))
    assert len(sent) == 80
    per_second = Counter(int(at) for at, _ in sent)
    per_chat_second = Counter((chat, int(at)) for at, chat in sent)
    assert max(per_second.values()) <= 30, per_second
    assert max(per_chat_second.values()) == 1


class GatedVenue(CountingVenue):
    """Holds every order at the venue until `gate` opens: the sender is mid-flight."""

    def __init__(self, inner: PaperVenue) -> None:
        super().__init__(inner)
        self.gate = asyncio.Event()
        self.arrived = asyncio.Event()

    async def place_order(self, order: OrderRequest) -> Fill:
        self.received[order.client_order_id] += 1
        self.arrived.set()
        await self.gate.wait()
        return self.inner.fill(order)


async def test_orders_written_claimed_are_never_sent_by_another_replica(sessions) -> None:
    """A fan-out's opens are written already claimed (engine/orders.py, InsertClaim): while
    their writer sends them, another replica's sweep finds nothing to claim; each order
    reaches the venue once, sent by its writer, on the first attempt."""
    users = [
        {"name": f"u{i}", "deployments": [{"agent": "Hawk", "collateral_usd": "100",
                                           "leverage": "3"}]}
        for i in range(8)
    ]  # fmt: skip
    await _seed(sessions, scenario(agents=[agent()], users=users))
    prices = PriceBook()
    prices.update(PriceTick(T0, "ETH", Decimal(2000)))
    venue = GatedVenue(PaperVenue("HYPERLIQUID", hyperliquid_markets(), prices))
    writer, sweeper = (
        Engine(sessions, {"HYPERLIQUID": venue}, prices, RulesClassifier(), clock=lambda: T0)
        for _ in range(2)
    )
    sending = asyncio.create_task(writer.ingest(IncomingPost("x", "@hawk", "p", "Long $ETH", T0)))
    await asyncio.wait_for(venue.arrived.wait(), 30)
    async with sessions() as s:
        written = (await s.execute(select(Order).where(Order.purpose == "open"))).scalars().all()
    assert len(written) == 8
    assert {(o.claimed_by, o.send_attempts) for o in written} == {(writer.ownership.replica_id, 1)}
    await sweeper.resume_pending()  # the other replica's sweep, while the writer is mid-send
    venue.gate.set()
    await asyncio.wait_for(sending, 30)
    assert len(venue.received) == 8 and max(venue.received.values()) == 1
    async with sessions() as s:
        statuses = Counter((await s.execute(select(Order.status))).scalars())
        positions = (await s.execute(select(func.count()).select_from(Position))).scalar_one()
    assert statuses == {"filled": 8} and positions == 8
