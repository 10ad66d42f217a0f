"""Protection wired into the engine, with the unmodified SDK against the Hyperliquid stand-in:
a live position opened through the engine has its stop resting on the venue; the process can
die and the venue still closes it, and the restarted engine books that close at the venue's
fill, once; a trailing stop that moved is moved on the venue at the checkpoint; the monitor's
own stop close that arrives after the venue's trigger ends in one close at the venue's fill;
a close the engine makes itself leaves nothing resting."""

from __future__ import annotations

from datetime import timedelta
from decimal import Decimal
from typing import Any

import pytest
from hyperliquid.info import Info
from sqlalchemy import func, select

from engine.ingest import IncomingPost
from engine.markets import default_markets
from engine.pipeline import Engine
from engine.protection import protection_cloid
from engine.protection_hooks import Protection
from engine.venues.hyperliquid_protection import HyperliquidProtection
from engine.venues.paper import PaperVenue
from engine.venues.routed import AccountRoutedVenue
from storage.enums import CloseReason
from storage.models import Agent, Deployment, Order, OutboxMessage, Position, ProtectiveOrder
from tests.hl_helpers import Trader, funded_trader
from tests.test_hyperliquid_peer import call
from tests.test_hyperliquid_pipeline import NOW, _tick, live_engine, seed


@pytest.fixture
async def info(peer):
    client = await call(Info, peer.base_url, True)
    yield client
    client.session.close()


async def protected_engine(
    sessions, peer, traders: list[Trader], eth: str, grouping: str = "positionTpsl"
) -> Engine:
    """What bot/service.attach_hyperliquid builds: the live venue, protection attached."""
    engine, venue, _ = await live_engine(sessions, peer, traders, eth=eth)
    engine.protection = Protection(
        sessions, HyperliquidProtection(venue, grouping), clock=engine.clock
    )
    return engine


async def open_long(
    sessions, peer, take_profit: str | None = None, grouping: str = "positionTpsl"
) -> tuple[Trader, Engine, Position]:
    """A live ETH long opened through the engine at 2000 (stop 3% under: 1940)."""
    trader = await funded_trader(peer)
    await seed(sessions, [trader])
    if take_profit is not None:
        async with sessions() as s, s.begin():
            (await s.execute(select(Agent))).scalar_one().take_profit_pct = Decimal(take_profit)
    engine = await protected_engine(sessions, peer, [trader], "2000", grouping)
    await engine.start()
    await engine.ingest(IncomingPost("x", "@hawk", "1", "Long $ETH now", NOW))
    async with sessions() as s:
        pos = (await s.execute(select(Position))).scalar_one()
    assert (pos.status, pos.stop_price) == ("open", Decimal(1940))
    return trader, engine, pos


async def triggers(info: Info, trader: Trader) -> list[dict[str, Any]]:
    rows = await call(info.frontend_open_orders, trader.user.address)
    return [r for r in rows if r["isTrigger"]]


async def rows(sessions) -> dict[str, ProtectiveOrder]:
    async with sessions() as s:
        return {r.kind: r for r in (await s.execute(select(ProtectiveOrder))).scalars()}


async def books(sessions, position_id: int) -> tuple[Position, list[Order], list[str]]:
    async with sessions() as s:
        pos = await s.get_one(Position, position_id)
        closes = list(
            (await s.execute(select(Order).where(Order.purpose == "close"))).scalars().all()
        )
        kinds = list((await s.execute(select(OutboxMessage.kind))).scalars().all())
    return pos, closes, kinds


async def test_a_live_position_opened_through_the_engine_rests_its_stop(
    sessions, peer, info
) -> None:
    trader, engine, pos = await open_long(sessions, peer, take_profit="0.05")
    ns = await engine.namespace()
    by_type = {r["orderType"]: r for r in await triggers(info, trader)}
    stop, take = by_type["Stop Market"], by_type["Take Profit Market"]
    assert (stop["triggerPx"], stop["sz"], stop["cloid"]) == (
        "1940.0", "0.15", protection_cloid(pos.id, "sl", 1, ns),
    )  # fmt: skip
    assert stop["reduceOnly"] and stop["isPositionTpsl"]
    assert (take["triggerPx"], take["cloid"]) == ("2100.0", protection_cloid(pos.id, "tp", 1, ns))
    recorded = await rows(sessions)
    assert {k: r.status for k, r in recorded.items()} == {"sl": "resting", "tp": "resting"}


async def test_a_refused_placement_leaves_the_open_recorded_and_reconcile_places_it(
    sessions, peer, info
) -> None:
    trader = await funded_trader(peer)
    await seed(sessions, [trader])
    engine = await protected_engine(sessions, peer, [trader], "2000")
    # the open goes through; the trigger placement right after it meets an outage
    sent: list[str] = []
    original = engine.protection.venue.place_triggers  # type: ignore[union-attr]

    async def down(*args: Any, **kw: Any) -> Any:
        sent.append("tried")
        raise ConnectionError("venue unreachable")

    engine.protection.venue.place_triggers = down  # type: ignore[union-attr,method-assign]
    await engine.ingest(IncomingPost("x", "@hawk", "1", "Long $ETH now", NOW))
    async with sessions() as s:
        pos = (await s.execute(select(Position))).scalar_one()
    assert sent == ["tried"]
    assert pos.status == "open" and peer.positions(trader.user.address)["ETH"].szi == pos.size
    assert (await rows(sessions))["sl"].status == "failed"
    assert await triggers(info, trader) == []

    engine.protection.venue.place_triggers = original  # type: ignore[union-attr,method-assign]
    assert await engine.reconcile("HYPERLIQUID") == 0  # nothing closed; the stop placed
    [stop] = await triggers(info, trader)
    assert stop["triggerPx"] == "1940.0"
    assert (await rows(sessions))["sl"].status == "resting"


async def test_killed_with_an_open_position_the_venue_stop_closes_it_and_restart_books_it_once(
    sessions, peer, info
) -> None:
    trader, engine, pos = await open_long(sessions, peer)
    del engine  # the process is killed: no shutdown, no checkpoint, nothing more from it
    peer.set_mid("ETH", "1930")  # the mark falls through the stop while nothing of ours runs
    assert peer.positions(trader.user.address) == {}
    fill = peer.fills(trader.user.address)[-1]
    assert fill.cloid == protection_cloid(pos.id, "sl", 1, await _namespace(sessions))

    restarted = await protected_engine(sessions, peer, [trader], "1930")
    await restarted.start()
    assert await restarted.reconcile("HYPERLIQUID") == 1
    done, closes, kinds = await books(sessions, pos.id)
    assert (done.status, done.close_reason) == ("closed", CloseReason.STOP_LOSS)
    assert (done.exit_price, done.close_fee) == (fill.px, fill.fee)
    assert done.realized_pnl == (fill.px - done.entry_price) * done.size - done.open_fee - fill.fee
    assert [(c.status, c.fill_price, c.venue_order_id) for c in closes] == [
        ("filled", fill.px, str(fill.oid))
    ]
    assert kinds.count("position_closed") == 1 and "order_failed" not in kinds
    assert pos.id not in restarted.index  # no longer watched
    assert (await rows(sessions))["sl"].status == "filled"

    requests = len(peer.fills(trader.user.address))
    assert await restarted.reconcile("HYPERLIQUID") == 0  # a second run changes nothing
    again, closes_again, kinds_again = await books(sessions, pos.id)
    assert (again.status, again.exit_price, again.realized_pnl) == (
        "closed", done.exit_price, done.realized_pnl,
    )  # fmt: skip
    assert len(closes_again) == 1 and kinds_again == kinds
    assert len(peer.fills(trader.user.address)) == requests  # nothing sent to the venue


async def _namespace(sessions) -> str:
    from engine.client_ids import cloid_namespace

    async with sessions() as s, s.begin():
        return await cloid_namespace(s)


async def test_a_trailing_stop_that_moved_is_moved_on_the_venue_at_checkpoint(
    sessions, peer, info
) -> None:
    trader, engine, pos = await open_long(sessions, peer)
    ns = await engine.namespace()
    peer.set_mid("ETH", "2050")
    await engine.on_price(_tick("ETH", "2050"))  # +2.5%: the trail starts, its stop at 2029.5
    [before] = await triggers(info, trader)
    assert before["triggerPx"] == "1940.0"  # between checkpoints the venue keeps the old stop
    [moved] = await engine.checkpoint()
    assert moved.stop_price == Decimal("2029.5")
    [after] = await triggers(info, trader)
    assert (after["triggerPx"], after["cloid"]) == ("2029.5", protection_cloid(pos.id, "sl", 2, ns))
    sent = len(peer.requests)
    assert await engine.checkpoint() == []  # nothing moved since: the venue is not asked
    assert len(peer.requests) == sent

    # the process dies; the venue's moved stop closes the position, as a trailing stop
    del engine
    peer.set_mid("ETH", "2020")
    fill = peer.fills(trader.user.address)[-1]
    restarted = await protected_engine(sessions, peer, [trader], "2020")
    await restarted.start()
    assert await restarted.reconcile("HYPERLIQUID") == 1
    done, closes, _ = await books(sessions, pos.id)
    assert (done.close_reason, done.exit_price, len(closes)) == (
        CloseReason.TRAILING_STOP, fill.px, 1,
    )  # fmt: skip


async def test_a_move_refused_as_too_soon_is_made_by_a_later_checkpoint(
    sessions, peer, info
) -> None:
    trader, engine, _ = await open_long(sessions, peer)
    now = [NOW]
    assert engine.protection is not None
    engine.protection.clock = lambda: now[0]
    peer.set_mid("ETH", "2050")
    await engine.on_price(_tick("ETH", "2050"))
    await engine.checkpoint()  # moved at NOW to 2029.5
    peer.set_mid("ETH", "2100")
    await engine.on_price(_tick("ETH", "2100"))  # the trail's stop at 2079
    now[0] = NOW + timedelta(seconds=10)
    await engine.checkpoint()  # too soon: the venue keeps 2029.5
    [stop] = await triggers(info, trader)
    assert stop["triggerPx"] == "2029.5"
    now[0] = NOW + timedelta(seconds=40)
    assert await engine.checkpoint() == []  # the trail has not moved since, yet the stop follows
    [stop] = await triggers(info, trader)
    assert stop["triggerPx"] == "2079.0"


async def test_the_monitors_stop_close_after_the_venues_trigger_ends_in_one_close(
    sessions, peer, info
) -> None:
    trader, engine, pos = await open_long(sessions, peer, take_profit="0.05")
    peer.set_mid("ETH", "1935")  # the venue's trigger fires first
    fill = peer.fills(trader.user.address)[-1]
    assert fill.cloid == protection_cloid(pos.id, "sl", 1, await engine.namespace())
    # then our tick arrives: the monitor's own stop close is refused, the venue being flat
    assert await engine.on_price(_tick("ETH", "1935")) == 1
    await engine.settle_races()
    done, closes, kinds = await books(sessions, pos.id)
    assert (done.status, done.close_reason) == ("closed", CloseReason.STOP_LOSS)
    assert (done.exit_price, done.close_fee) == (fill.px, fill.fee)
    assert [(c.status, c.fill_price) for c in closes] == [("filled", fill.px)]
    assert kinds.count("position_closed") == 1 and "order_failed" not in kinds
    assert len(engine.close_retries) == 0 and pos.id not in engine.index
    closing = [f for f in peer.fills(trader.user.address) if f.dir.startswith("Close")]
    assert len(closing) == 1  # only the trigger traded
    assert {k: r.status for k, r in (await rows(sessions)).items()} == {
        "sl": "filled", "tp": "canceled",
    }  # fmt: skip
    assert await triggers(info, trader) == []


@pytest.mark.parametrize("grouping", ["positionTpsl", "na"])
async def test_the_engine_closing_a_position_itself_leaves_no_trigger_resting(
    sessions, peer, info, grouping
) -> None:
    trader, engine, pos = await open_long(sessions, peer, take_profit="0.05", grouping=grouping)
    assert len(await triggers(info, trader)) == 2
    await engine.close_positions({pos.id: CloseReason.MANUAL})
    done, _, _ = await books(sessions, pos.id)
    assert done.status == "closed" and peer.positions(trader.user.address) == {}
    # "na" triggers outlive the position on the venue: only our cancel takes them off
    assert await triggers(info, trader) == []
    assert {k: r.status for k, r in (await rows(sessions)).items()} == {
        "sl": "canceled", "tp": "canceled",
    }  # fmt: skip


async def test_paper_positions_on_the_same_venue_get_no_protection(sessions, peer) -> None:
    trader = await funded_trader(peer)
    await seed(sessions, [trader])
    async with sessions() as s, s.begin():
        (await s.execute(select(Deployment))).scalar_one().account = "paper:1:1"
    engine = await protected_engine(sessions, peer, [trader], "2000")
    live = engine.venues["HYPERLIQUID"]
    paper = PaperVenue("HYPERLIQUID", default_markets()["HYPERLIQUID"], engine.prices)
    engine.venues["HYPERLIQUID"] = AccountRoutedVenue(paper, live)
    await engine.ingest(IncomingPost("x", "@hawk", "1", "Long $ETH now", NOW))
    async with sessions() as s:
        pos = (await s.execute(select(Position))).scalar_one()
        protective = (await s.execute(select(func.count()).select_from(ProtectiveOrder))).scalar()
    assert (pos.account, pos.status) == ("paper:1:1", "open")
    assert protective == 0 and peer.positions(trader.user.address) == {}
    sent = len(peer.requests)
    await engine.close_positions({pos.id: CloseReason.MANUAL})
    assert len(peer.requests) == sent  # nothing asked of the live venue for a paper position


async def test_the_service_attaches_protection_with_the_configured_budget(sessions, peer) -> None:
    import base64
    import os

    from bot.service import attach_hyperliquid, build_engine
    from bot.settings import Settings
    from engine.prices import PriceBook
    from wallets.vault import MasterKey, Vault

    settings = Settings(
        _env_file=None,
        hyperliquid_api_url=peer.base_url,
        protection_move_seconds=45,
        protection_min_step_pct=Decimal("0.002"),
    )
    prices = PriceBook()
    engine = build_engine(settings, sessions, prices)
    assert engine.protection is None  # paper only: nothing rests anywhere
    vault = Vault(MasterKey.parse(base64.b64encode(os.urandom(32)).decode()))
    venue = await attach_hyperliquid(settings, sessions, engine, prices, vault)
    assert venue is not None and engine.protection is not None
    assert engine.protection.name == "HYPERLIQUID"
    assert engine.protection.covers("HYPERLIQUID", "0xabc")
    assert not engine.protection.covers("HYPERLIQUID", "paper:1:1")
    assert engine.protection.settings.min_interval == timedelta(seconds=45)
    assert engine.protection.settings.min_step_pct == Decimal("0.002")
