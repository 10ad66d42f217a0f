"""Engine behaviour a user notices: duplicates ignored, approvals held, refusals explained,
personal limits applied, alerts delivered once."""

from __future__ import annotations

from datetime import UTC, datetime
from decimal import Decimal

from sqlalchemy import func, select, update

from bot.console import ConsoleTransport
from engine.classify.rules import RulesClassifier
from engine.client_ids import client_order_id
from engine.ingest import IncomingPost
from engine.markets import hyperliquid_markets
from engine.notify import Delivery, Dispatcher, OutgoingMessage
from engine.pipeline import Engine
from engine.prices import PriceBook, PriceTick
from engine.replay.runner import _seed
from engine.venues.paper import PaperVenue
from storage.models import Order, OutboxMessage, Position, Post, Signal, User
from tests.replay_helpers import agent, scenario

D = Decimal
NOW = datetime(2026, 11, 20, 10, tzinfo=UTC)


async def _engine(
    sessions,
    deployments: list[dict],
    price: str = "2000",
    venue_cls: type = PaperVenue,
    clock: list | None = None,
) -> Engine:
    sc = scenario(
        agents=[agent()],
        users=[
            {"name": f"u{i}", "deployments": [{"agent": "Hawk", **d}]}
            for i, d in enumerate(deployments)
        ],
    )
    await _seed(sessions, sc)
    prices = PriceBook()
    prices.update(PriceTick(NOW, "ETH", D(price)))
    venue = venue_cls("HYPERLIQUID", hyperliquid_markets(), prices)
    now = clock or [NOW]
    return Engine(sessions, {"HYPERLIQUID": venue}, prices, RulesClassifier(), clock=lambda: now[0])


def post(text: str = "Long $ETH now", pid: str = "1") -> IncomingPost:
    return IncomingPost("x", "@hawk", pid, text, NOW)


async def _count(sessions, model, *where) -> int:
    async with sessions() as s:
        return (await s.execute(select(func.count()).select_from(model).where(*where))).scalar_one()


async def test_the_same_post_twice_makes_one_post_one_signal_one_position(sessions) -> None:
    engine = await _engine(sessions, [{"collateral_usd": "100", "leverage": "2"}])
    first = await engine.ingest(post())
    again = await engine.ingest(post(text="edited text, same id"))
    assert first.post_id == again.post_id
    assert [s.venue for s in first.signals] == ["HYPERLIQUID"]
    assert await _count(sessions, Post) == 1
    assert await _count(sessions, Signal) == 1
    assert await _count(sessions, Position) == 1
    async with sessions() as s:
        o = (await s.execute(select(Order))).scalar_one()
    namespace = await engine.namespace()
    assert o.client_order_id == client_order_id(namespace, o.signal_id, o.deployment_id, "open")
    assert o.client_order_id.startswith("0x") and len(o.client_order_id) == 34


async def test_manual_approval_holds_the_order_and_asks_the_user(sessions) -> None:
    engine = await _engine(
        sessions,
        [
            {"collateral_usd": "100", "leverage": "3", "manual_approval": True},
            {"collateral_usd": "100", "leverage": "3"},
        ],
    )
    await engine.ingest(post())
    async with sessions() as s:
        statuses = (await s.execute(select(Order.status).order_by(Order.deployment_id))).all()
        ask = (
            await s.execute(select(OutboxMessage).where(OutboxMessage.kind == "approval_requested"))
        ).scalar_one()
    assert [st for (st,) in statuses] == ["awaiting_approval", "filled"]
    assert await _count(sessions, Position) == 1
    assert ask.payload["market"] == "ETH" and ask.payload["leverage"] == "3"


async def test_order_below_the_venue_minimum_is_refused_and_explained(sessions) -> None:
    engine = await _engine(sessions, [{"collateral_usd": "2", "leverage": "1"}])
    await engine.ingest(post())
    async with sessions() as s:
        order = (await s.execute(select(Order))).scalar_one()
        alert = (await s.execute(select(OutboxMessage))).scalar_one()
    assert (order.status, order.error) == ("rejected", "below_min_notional")
    assert alert.kind == "order_failed"
    lines: list[str] = []
    await Dispatcher(sessions, ConsoleTransport(lines.append)).deliver_pending()
    assert lines == [
        "[to user 1] Hawk could not open LONG ETH: the order is below the venue's minimum size"
    ]
    assert await _count(sessions, Position) == 0


async def test_personal_limits_cap_leverage_and_collateral(sessions) -> None:
    engine = await _engine(sessions, [{"collateral_usd": "500", "leverage": "5"}])
    async with sessions() as s, s.begin():
        await s.execute(
            update(User).values(settings={"max_leverage": "2", "max_collateral_usd": "100"})
        )
    await engine.ingest(post())
    async with sessions() as s:
        p = (await s.execute(select(Position))).scalar_one()
    assert p.leverage == D(2)
    assert p.size == D("0.1000")  # 100 x 2 / 2000


async def test_rejected_signal_tells_every_deployed_user(sessions) -> None:
    engine = await _engine(sessions, [{"collateral_usd": "100", "leverage": "1"}] * 2)
    out = await engine.ingest(post("Short gold, $XAU breaking down"))
    assert [(s.venue, s.reason) for s in out.signals] == [(None, "not_listed")]
    async with sessions() as s:
        rows = (await s.execute(select(OutboxMessage.user_id, OutboxMessage.kind))).all()
    assert sorted(rows) == [(1, "signal_rejected"), (2, "signal_rejected")]


class FlakyTransport:
    name = "flaky"

    def __init__(self, results: list[Delivery]) -> None:
        self.results = results
        self.seen: list[OutgoingMessage] = []

    async def deliver(self, message: OutgoingMessage) -> Delivery:
        self.seen.append(message)
        return self.results.pop(0)


async def test_outbox_retries_later_and_gives_up_on_unreachable_users(sessions) -> None:
    engine = await _engine(sessions, [{"collateral_usd": "100", "leverage": "1"}] * 2)
    await engine.ingest(post())
    transport = FlakyTransport([Delivery("retry", 30.0, "429"), Delivery("unreachable")])
    dispatcher = Dispatcher(sessions, transport)
    assert await dispatcher.deliver_pending() == 0
    # nothing is due now: the 429 asked for 30 s, the blocked user is not retried at all
    assert await dispatcher.deliver_pending() == 0
    assert len(transport.seen) == 2
    async with sessions() as s:
        rows = (
            await s.execute(
                select(OutboxMessage.status, OutboxMessage.attempts).order_by(OutboxMessage.id)
            )
        ).all()
    assert sorted(rows) == [("dead", 1), ("pending", 1)]


async def test_console_delivers_each_alert_once(sessions) -> None:
    engine = await _engine(sessions, [{"collateral_usd": "100", "leverage": "2"}])
    await engine.ingest(post())
    await engine.on_price(PriceTick(NOW, "ETH", D("1800")))
    lines: list[str] = []
    dispatcher = Dispatcher(sessions, ConsoleTransport(lines.append))
    assert await dispatcher.deliver_pending() == 2
    assert await dispatcher.deliver_pending() == 0
    opened = "[to user 1] [PAPER] Hawk opened LONG ETH on HYPERLIQUID: size 0.1 at"
    assert lines[0].startswith(opened)
    assert "closed LONG ETH at 1799.1 (stop loss): PnL -$" in lines[1]


class SlowTransport:
    name = "slow"

    def __init__(self) -> None:
        self.seen: list[int] = []

    async def deliver(self, message: OutgoingMessage) -> Delivery:
        import asyncio

        await asyncio.sleep(0.01)
        self.seen.append(message.id)
        return Delivery("sent")


async def test_two_dispatchers_never_send_the_same_message_twice(sessions) -> None:
    import asyncio

    engine = await _engine(sessions, [{"collateral_usd": "100", "leverage": "1"}] * 5)
    await engine.ingest(post())
    transport = SlowTransport()
    a, b = Dispatcher(sessions, transport), Dispatcher(sessions, transport)
    sent = await asyncio.gather(a.deliver_pending(), b.deliver_pending())
    assert sum(sent) == 5
    assert sorted(transport.seen) == sorted(set(transport.seen)) and len(transport.seen) == 5


class ExplodingVenue(PaperVenue):
    """Raises an unexpected error for one account; the others fill normally."""

    async def place_order(self, order):  # type: ignore[no-untyped-def]
        if order.account.startswith("paper:u2:"):
            raise RuntimeError("venue client bug")
        return await super().place_order(order)


async def test_an_unexpected_venue_error_loses_nothing_else_and_is_retried(sessions) -> None:
    engine = await _engine(
        sessions, [{"collateral_usd": "100", "leverage": "1"}] * 4, venue_cls=ExplodingVenue
    )
    venue = engine.venues["HYPERLIQUID"]
    prices = engine.prices
    await engine.ingest(post())
    async with sessions() as s:
        rows = (
            await s.execute(select(Order.account, Order.status, Order.error).order_by(Order.id))
        ).all()
    assert [r[1] for r in rows] == ["filled", "filled", "pending", "filled"]
    assert rows[2][2] == "RuntimeError"
    assert await _count(sessions, Position) == 3

    fixed = PaperVenue("HYPERLIQUID", hyperliquid_markets(), prices)
    fixed._fills, fixed.accounts = venue._fills, venue.accounts  # the same venue, bug gone
    engine.venues["HYPERLIQUID"] = fixed
    await engine.resume_pending()
    assert await _count(sessions, Position) == 4
    assert len(fixed._fills) == 4


class RefusesCloseOnce(PaperVenue):
    refused = 0

    async def place_order(self, order):  # type: ignore[no-untyped-def]
        if order.reduce_only and not self.refused:
            self.refused += 1
            from engine.venues.base import VenueRejected

            raise VenueRejected("venue_halted", "trading halted")
        return await super().place_order(order)


async def test_a_refused_close_keeps_the_position_watched_and_retries(sessions) -> None:
    engine = await _engine(
        sessions, [{"collateral_usd": "100", "leverage": "1"}], venue_cls=RefusesCloseOnce
    )
    await engine.ingest(post())
    assert await engine.on_price(PriceTick(NOW, "ETH", D("1890"))) == 1  # through the stop
    async with sessions() as s:
        status = (await s.execute(select(Position.status))).scalar_one()
        alert = (
            await s.execute(
                select(OutboxMessage.payload).where(OutboxMessage.kind == "order_failed")
            )
        ).scalar_one()
    assert status == "open"
    assert (alert["purpose"], alert["reason"]) == ("close", "venue_halted")
    assert list(engine.close_retries.pending) == [1]  # still due to close
    await engine.on_price(PriceTick(NOW, "ETH", D("1880")))  # the next tick retries
    async with sessions() as s:
        pos = (await s.execute(select(Position))).scalar_one()
        closes = (await s.execute(select(Order.status).where(Order.purpose == "close"))).all()
    assert (pos.status, pos.close_reason) == ("closed", "stop_loss")
    assert pos.exit_price == D("1880") * (1 - D("0.0005"))
    assert closes == [("filled",)]  # the same close order, tried again
    assert len(engine.index) == 0 and len(engine.close_retries) == 0


async def test_a_short_after_a_long_is_skipped_by_the_default_policy() -> None:
    """Was hedge mode (both positions open side by side); an account now holds one net
    position per market and the agent's default policy, ignore, skips the short."""
    from engine.replay.runner import run_scenario
    from tests.replay_helpers import PG_URL

    t = "2026-11-20T10:{:02d}:00Z"
    sc = scenario(
        agents=[agent(take_profit_pct=None)],
        users=[
            {
                "name": "u",
                "deployments": [{"agent": "Hawk", "collateral_usd": "100", "leverage": "1"}],
            }
        ],
        posts=[
            {"id": "1", "source": "@hawk", "text": "Long $ETH", "posted_at": t.format(1)},
            {"id": "2", "source": "@hawk", "text": "Short $ETH", "posted_at": t.format(2)},
        ],
        prices=[
            {"ts": t.format(0), "market": "ETH", "price": "2000"},
            {"ts": t.format(3), "market": "ETH", "price": "2010"},
        ],
    )
    out = (await run_scenario(sc, PG_URL)).as_json()
    assert [(p["side"], p["close_reason"]) for p in out["positions"]] == [
        ("long", "end_of_replay"),
    ]


class AlwaysRefusesCloses(PaperVenue):
    close_calls = 0

    async def place_order(self, order):  # type: ignore[no-untyped-def]
        if order.reduce_only:
            self.close_calls += 1
            from engine.venues.base import VenueRejected

            raise VenueRejected("venue_halted", "trading halted")
        return await super().place_order(order)


async def test_a_close_the_venue_keeps_refusing_backs_off(sessions) -> None:
    from datetime import timedelta

    clock = [NOW]
    engine = await _engine(
        sessions,
        [{"collateral_usd": "100", "leverage": "1"}],
        venue_cls=AlwaysRefusesCloses,
        clock=clock,
    )
    venue = engine.venues["HYPERLIQUID"]
    await engine.ingest(post())
    for _ in range(20):  # twenty ticks in the same second
        await engine.on_price(PriceTick(NOW, "ETH", D("1850")))
    assert venue.close_calls == 2  # the trigger, one immediate retry, then it waits
    clock[0] = NOW + timedelta(seconds=3)
    await engine.on_price(PriceTick(NOW, "ETH", D("1850")))
    assert venue.close_calls == 3
    async with sessions() as s:
        alerts = (
            await s.execute(
                select(func.count())
                .select_from(OutboxMessage)
                .where(OutboxMessage.kind == "order_failed")
            )
        ).scalar_one()
        status = (await s.execute(select(Position.status))).scalar_one()
    assert (alerts, status) == (1, "open")  # told once, still open, still due to close
