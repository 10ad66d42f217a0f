"""Profit share that is fair, driven through the engine: only live trades pay, a follower pays
only on PnL above the deployment's previous peak (its high-water mark), a creator's own call
pays no source share to its unclaimed source, and a close recorded twice pays once."""

from __future__ import annotations

import asyncio
import importlib
from datetime import UTC, datetime
from decimal import Decimal

import pytest
from alembic.migration import MigrationContext
from alembic.operations import Operations
from sqlalchemy import delete, select, update

from engine.classify.base import Classification
from engine.classify.rules import RulesClassifier
from engine.ingest import IncomingPost
from engine.markets import hyperliquid_markets
from engine.pipeline import Engine
from engine.prices import PriceBook, PriceTick
from engine.profit_share import ClosedTrade, record_profit_share
from engine.venues.paper import FeeConfig, PaperVenue
from storage.enums import DeploymentMode
from storage.models import (
    Agent,
    Deployment,
    LedgerEntry,
    Position,
    ProfitShareClose,
    Source,
    User,
    agent_sources,
)
from storage.types import quantize
from tests.replay_helpers import PG_URL, expected_trade

D = Decimal
NOW = datetime(2026, 11, 25, 12, tzinfo=UTC)
LIVE_ACCOUNT = "0x" + "ab" * 20
FOLLOWER, CREATOR = 1, 2


class World:
    """A follower deployed on Hawk (creator: user 2; 10% creator share, 5% source share),
    trading on a venue without fees or slippage, so each close's PnL is a round figure."""

    def __init__(self, sessions, engine: Engine, prices: PriceBook) -> None:
        self.sessions = sessions
        self.engine = engine
        self.prices = prices
        self.posts = 0

    async def open_long(self, market: str, price: str, source: tuple[str, str] = ("x", "@hawk")):
        self.prices.update(PriceTick(NOW, market, D(price)))
        self.posts += 1
        call = None
        if source[0] == "agent":  # as /call posts it: the creator says what they mean
            call = Classification(True, market, "long", D(1), "creator", "creator call")
        text = f"Long ${market} #{self.posts}"
        await self.engine.ingest(IncomingPost(*source, str(self.posts), text, NOW, call))
        async with self.sessions() as s:  # the position of the live follower's deployment
            return (
                await s.execute(
                    select(Position.id).where(
                        Position.deployment_id == 1,
                        Position.market == market,
                        Position.status == "open",
                    )
                )
            ).scalar_one()

    async def close(self, exits: dict[str, str]) -> None:
        """Close every open position in these markets in one batch, at these prices."""
        for market, price in exits.items():
            self.prices.update(PriceTick(NOW, market, D(price)))
        async with self.sessions() as s:
            ids = await s.execute(
                select(Position.id).where(Position.market.in_(exits), Position.status == "open")
            )
            await self.engine.close_positions(dict.fromkeys(ids.scalars(), "manual"))

    async def trade(self, entry: str, exit_: str) -> int:
        pid = await self.open_long("ETH", entry)
        await self.close({"ETH": exit_})
        return pid

    async def ledger(self) -> list[tuple]:
        async with self.sessions() as s:
            rows = (await s.execute(select(LedgerEntry).order_by(LedgerEntry.id))).scalars()
            return [
                (
                    e.position_id,
                    e.kind,
                    e.payer_user_id,
                    e.beneficiary_user_id,
                    e.beneficiary_source_id,
                    e.beneficiary,
                    e.amount,
                )
                for e in rows
            ]

    async def mark(self, deployment_id: int = 1) -> tuple[Decimal, Decimal]:
        async with self.sessions() as s:
            d = await s.get_one(Deployment, deployment_id)
            return d.live_realized_pnl, d.live_high_water_mark

    async def pnl(self, pid: int) -> Decimal:
        async with self.sessions() as s:
            return (await s.get_one(Position, pid)).realized_pnl


async def world(
    sessions,
    account: str = LIVE_ACCOUNT,
    own_source_owner: int | None = None,
    paper_follower: bool = False,
) -> World:
    async with sessions() as s, s.begin():
        s.add_all([User(display_name="follower"), User(display_name="creator")])
        await s.flush()
        hawk = Source(kind="x", handle="@hawk")  # unclaimed: paid all the same
        own = Source(kind="agent", handle="Hawk", owner_user_id=own_source_owner)
        s.add_all([hawk, own])
        await s.flush()
        agent = Agent(
            name="Hawk",
            creator_user_id=CREATOR,
            own_source_id=own.id,
            venue="HYPERLIQUID",
            leverage=D(1),
            stop_loss_pct=D("0.9"),  # far away: every close here is a manual one
            min_confidence=D("0.3"),
            creator_share_pct=D("0.10"),
            source_share_pct=D("0.05"),
        )
        s.add(agent)
        await s.flush()
        await s.execute(
            agent_sources.insert(),
            [
                {"agent_id": agent.id, "source_id": hawk.id},
                {"agent_id": agent.id, "source_id": own.id},
            ],
        )
        live = not account.startswith("paper:")
        s.add(
            Deployment(
                user_id=FOLLOWER,
                agent_id=agent.id,
                mode=DeploymentMode.LIVE if live else DeploymentMode.PAPER,
                collateral_usd=D(1000),
                leverage=D(1),
                account=account,
            )
        )
        if paper_follower:  # user 3 follows Hawk on paper: deployment 2
            s.add(User(display_name="paper follower"))
            await s.flush()
            s.add(
                Deployment(
                    user_id=3,
                    agent_id=agent.id,
                    mode=DeploymentMode.PAPER,
                    collateral_usd=D(1000),
                    leverage=D(1),
                    account="paper:3:1",
                )
            )
    prices = PriceBook()
    venue = PaperVenue("HYPERLIQUID", hyperliquid_markets(), prices, FeeConfig(D(0), D(0)))
    engine = Engine(sessions, {"HYPERLIQUID": venue}, prices, RulesClassifier(), clock=lambda: NOW)
    return World(sessions, engine, prices)


def shares(pid: int, on: str, source: bool = True) -> list[tuple]:
    """The creator's 10% and @hawk's (source 1) 5% of `on` USD, for position `pid`."""
    rows = [(pid, "creator_share", FOLLOWER, CREATOR, None, "creator:Hawk", D(on) * D("0.10"))]
    if source:
        rows.append((pid, "source_share", FOLLOWER, None, 1, "source:@hawk", D(on) * D("0.05")))
    return rows


async def test_a_win_that_only_wins_back_losses_pays_nothing(sessions) -> None:
    w = await world(sessions)
    # ETH at 1000, 1 ETH a trade (1000 USD x 1): each close's PnL is exit - 1000
    pnls = ["-100", "150", "30", "-20", "10", "20"]
    pids = [await w.trade("1000", str(1000 + int(p))) for p in pnls]
    assert [await w.pnl(pid) for pid in pids] == [D(p) for p in pnls]
    # -100, then +150 pays on 50 only, +30 on 30, -20 and +10 nothing, +20 on 10 (peak 80->90)
    assert await w.ledger() == shares(pids[1], "50") + shares(pids[2], "30") + shares(pids[5], "10")
    assert await w.ledger() == [
        (2, "creator_share", 1, 2, None, "creator:Hawk", D("5")),
        (2, "source_share", 1, None, 1, "source:@hawk", D("2.5")),
        (3, "creator_share", 1, 2, None, "creator:Hawk", D("3")),
        (3, "source_share", 1, None, 1, "source:@hawk", D("1.5")),
        (6, "creator_share", 1, 2, None, "creator:Hawk", D("1")),
        (6, "source_share", 1, None, 1, "source:@hawk", D("0.5")),
    ]
    assert await w.mark() == (D(90), D(90))
    async with sessions() as s:
        audit = (
            await s.execute(
                select(
                    ProfitShareClose.realized_pnl,
                    ProfitShareClose.cumulative_pnl,
                    ProfitShareClose.high_water_mark,
                    ProfitShareClose.chargeable_pnl,
                ).order_by(ProfitShareClose.position_id)
            )
        ).all()
    assert [tuple(r) for r in audit] == [
        (D(-100), D(-100), D(0), D(0)),
        (D(150), D(50), D(50), D(50)),
        (D(30), D(80), D(80), D(30)),
        (D(-20), D(60), D(80), D(0)),
        (D(10), D(70), D(80), D(0)),
        (D(20), D(90), D(90), D(10)),
    ]


async def test_closes_in_one_batch_count_in_position_order(sessions) -> None:
    w = await world(sessions)
    await w.trade("1000", "900")  # -100: the mark stays at 0
    eth = await w.open_long("ETH", "1000")  # 1 ETH
    btc = await w.open_long("BTC", "50000")  # 0.02 BTC
    # one batch: ETH -50 first (lower id), then BTC +200: the sum goes -150, then 50
    await w.close({"BTC": "60000", "ETH": "950"})
    assert (await w.pnl(eth), await w.pnl(btc)) == (D(-50), D(200))
    assert await w.ledger() == shares(btc, "50")  # not 200, nor 150: only above the peak
    assert await w.mark() == (D(50), D(50))


async def test_paper_trades_pay_no_profit_share(sessions) -> None:
    w = await world(sessions, account="paper:1:1")
    pids = [await w.trade("1000", exit_) for exit_ in ("1150", "1030")]
    assert [await w.pnl(pid) for pid in pids] == [D(150), D(30)]
    assert await w.ledger() == []
    assert await w.mark() == (D(0), D(0))  # paper PnL never moves the live mark
    async with sessions() as s:
        assert (await s.execute(select(ProfitShareClose))).first() is None


async def test_a_paper_follower_of_the_same_trades_pays_nothing(sessions) -> None:
    w = await world(sessions, paper_follower=True)
    pid = await w.trade("1000", "1150")
    async with sessions() as s:
        closed = (await s.execute(select(Position.deployment_id, Position.realized_pnl))).all()
    assert sorted(closed) == [(1, D(150)), (2, D(150))]  # both won the same
    assert await w.ledger() == shares(pid, "150")  # only the live follower (user 1) pays
    assert await w.mark(2) == (D(0), D(0))


async def test_a_creators_own_call_pays_no_source_share_to_its_unclaimed_source(sessions) -> None:
    w = await world(sessions)
    call = await w.open_long("ETH", "1000", source=("agent", "Hawk"))
    await w.close({"ETH": "1100"})
    post = await w.trade("1000", "1040")  # a post of @hawk: its (unclaimed) source is paid
    assert await w.ledger() == shares(call, "100", source=False) + shares(post, "40")


async def test_a_claimed_own_source_is_paid_its_share(sessions) -> None:
    w = await world(sessions, own_source_owner=CREATOR)
    call = await w.open_long("ETH", "1000", source=("agent", "Hawk"))
    await w.close({"ETH": "1100"})
    assert await w.ledger() == [
        (call, "creator_share", FOLLOWER, CREATOR, None, "creator:Hawk", D(10)),
        (call, "source_share", FOLLOWER, CREATOR, 2, "source:Hawk", D(5)),
    ]


async def test_the_same_close_recorded_twice_pays_once(sessions) -> None:
    w = await world(sessions)
    pid = await w.trade("1000", "1150")
    first = await w.ledger()
    assert first == shares(pid, "150")
    again = ClosedTrade(pid, D(150), NOW)
    async with sessions() as s, s.begin():
        assert await record_profit_share(s, [again, again]) == []
    assert await w.ledger() == first
    assert await w.mark() == (D(150), D(150))  # the running sum counted it once
    # the next win still pays on all of itself: the mark was not pushed up by the repeat
    nxt = await w.trade("1000", "1010")
    assert await w.ledger() == first + shares(nxt, "10")


async def test_amounts_keep_every_digit_after_fees_and_slippage(sessions) -> None:
    w = await world(sessions)
    w.engine.venues["HYPERLIQUID"].fees = FeeConfig(D("4.5"), D(5))
    pid = await w.trade("1000", "1100")
    async with sessions() as s:
        size = (await s.get_one(Position, pid)).size
    want = expected_trade("1000", "1100", "long", size, "4.5", "5")["pnl"]
    assert await w.pnl(pid) == quantize(want)
    assert await w.ledger() == shares(pid, str(quantize(want)))
    assert [r[-1] for r in await w.ledger()] == [quantize(want * r) for r in (D("0.1"), D("0.05"))]


@pytest.mark.skipif(not PG_URL, reason="row locks are PostgreSQL's; SQLite has one writer")
async def test_two_processes_recording_one_deployment_wait_for_each_other(sessions) -> None:
    w = await world(sessions)
    eth = await w.open_long("ETH", "1000")
    btc = await w.open_long("BTC", "50000")
    first, second = sessions(), sessions()
    try:
        await first.begin()
        paid = await record_profit_share(first, [ClosedTrade(eth, D(100), NOW)])
        assert [r["amount"] for r in paid] == [D(10), D(5)]

        async def other(closes: list[ClosedTrade]) -> list:
            async with second.begin():
                return await record_profit_share(second, closes)

        # another process closes BTC (+50) and, by mistake, ETH again
        racing = asyncio.create_task(
            other([ClosedTrade(btc, D(50), NOW), ClosedTrade(eth, D(100), NOW)])
        )
        await asyncio.sleep(0.5)
        assert not racing.done()  # held by the first one's lock on the deployment
        await first.commit()
        paid = await racing
    finally:
        await first.close()
        await second.close()
    # it saw the first one's sum (100), so BTC's +50 is above the peak; ETH is not paid again
    assert [(r["position_id"], r["amount"]) for r in paid] == [(btc, D(5)), (btc, D("2.5"))]
    assert await w.mark() == (D(150), D(150))
    assert await w.ledger() == shares(eth, "100") + shares(btc, "50")


async def test_the_migration_starts_live_deployments_from_their_history(sessions) -> None:
    w = await world(sessions, paper_follower=True)
    for exit_ in ("900", "1150", "1030", "980"):  # -100, +150, +30, -20: sum 60, peak 80
        await w.trade("1000", exit_)
    await w.open_long("BTC", "50000")  # still open: not history yet
    async with sessions() as s, s.begin():  # the books as they were before migration 0006
        await s.execute(
            update(Deployment).values(live_realized_pnl=D(0), live_high_water_mark=D(0))
        )
        await s.execute(delete(ProfitShareClose))
    migration = importlib.import_module(
        "storage.migrations.versions.0006_profit_share_high_water_mark"
    )

    def backfill(conn) -> None:
        with Operations.context(MigrationContext.configure(conn)):
            migration._backfill()

    async with sessions() as s, s.begin():
        await (await s.connection()).run_sync(backfill)
    assert await w.mark() == (D(60), D(80))
    assert await w.mark(2) == (D(0), D(0))  # paper history is no live history
    nxt = await w.trade("1000", "1030")  # +30: the sum 90 is 10 above the peak
    assert (await w.ledger())[-2:] == shares(nxt, "10")
