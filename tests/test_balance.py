"""/balance: a live Hyperliquid account's value, withdrawable and margin used as Hyperliquid
reports them (clearinghouseState through the SDK, on the stand-in), paper equity labelled
[PAPER], and a plain message when the venue does not answer."""

from __future__ import annotations

from datetime import UTC, datetime
from decimal import Decimal

import pytest
from sqlalchemy import select

from engine.venues.base import OrderRequest
from engine.venues.routed import AccountRoutedVenue
from handlers.format import money, signed_money
from storage.models import User
from tests.chat_helpers import make_world, text_of
from tests.live_world import approve_on_page, create_agent, deploy_live, link_wallet, live_world
from tests.ostium_helpers import funded_trader, venue_for
from tests.peers.hyperliquid_api import HyperliquidPeer
from wallets import siwe_link


@pytest.fixture
async def peer():  # type: ignore[no-untyped-def]
    async with HyperliquidPeer(mids={"ETH": "2000", "BTC": "90000", "SOL": "150"}) as p:
        yield p


async def test_live_balance_from_hyperliquid_and_a_clear_line_when_it_is_down(
    sessions, peer
) -> None:  # type: ignore[no-untyped-def]
    async with live_world(sessions, peer) as live:
        await approve_on_page(live, await link_wallet(live))
        before = text_of(await live.ann.say("/balance"))
        assert "[LIVE] Hyperliquid" in before and live.wallet.address in before
        assert "Account value: $5,000.00" in before and "Withdrawable: $5,000.00" in before
        assert "Margin used: $0.00" in before

        await create_agent(live.ann)
        assert "is deployed" in await deploy_live(live.ann)
        await live.world.post("@CryptoHawk", "Long $ETH, breakout", "p1")
        after = text_of(await live.ann.say("/balance"))
        lines = dict(line.split(": ", 1) for line in after.splitlines() if ": " in line)
        assert lines["Margin used"] != "$0.00"  # the open ETH position's margin, from HL
        assert lines["Withdrawable"] != lines["Account value"]

        peer.fail_next("info:clearinghouseState", 502, times=1)
        down = text_of(await live.ann.say("/balance"))
        assert "Hyperliquid is not answering right now" in down
        assert "$0.00" not in down  # never a zero balance for a venue that did not answer


async def test_paper_equity_is_labelled_paper_and_in_the_users_language(sessions) -> None:
    world = await make_world(sessions)
    ann = world.person("Ann", 7, "es")
    assert "/link" in text_of(await ann.say("/balance"))  # nothing yet: the first step
    await create_agent(world.person("Bob", 8))
    r = await ann.say("/deploy Hawk")
    await ann.say("100")
    await ann.say("3")
    assert ann.last is not None
    r = await ann.choose(ann.last.replies[0], "automáticamente")
    r = await ann.choose(r.replies[0], "Desplegar")
    await world.post("@CryptoHawk", "Long $ETH, breakout", "p1")
    await world.price("ETH", "2100")
    text = text_of(await ann.say("/balance"))
    assert "[SIMULADO]" in text and "Hyperliquid" not in text
    assert "+14,85\xa0US$" in text.split("no realizado")[1]  # ETH rose: the long gains, es format


async def test_ostium_balance_from_the_chain_and_the_subgraph(sessions, ostium) -> None:  # type: ignore[no-untyped-def]
    world = await make_world(sessions)
    trader = funded_trader(ostium, usdc="1500")
    venue = venue_for(ostium, sessions, [trader], prices=world.engine.prices)
    await venue.refresh_markets()
    world.engine.venues["OSTIUM"] = AccountRoutedVenue(world.engine.venues["OSTIUM"], venue)
    ann = world.person("Ann", 1)
    await ann.say("/start")
    async with sessions() as s, s.begin():
        user_id = (await s.execute(select(User.id))).scalar_one()
        await siwe_link._link(s, user_id, trader.user.address, 42161, datetime.now(UTC))

    before = text_of(await ann.say("/balance"))
    assert f"[LIVE] Ostium {trader.user.address}" in before
    assert "USDC in the wallet: $1,500.00" in before and "$0.00 collateral" in before

    await venue.place_order(
        OrderRequest(
            "0x" + "e" * 32, trader.user.address, "XAU", "long", Decimal("0.25"), Decimal(5)
        )
    )
    after = text_of(await ann.say("/balance"))
    # 120 USDC left the wallet: 119.76 collateral (0.25 XAU at 2,400 over 5x) and a fee
    assert "USDC in the wallet: $1,380.00" in after
    assert "In open trades: $119.76 collateral" in after
    [held] = await venue.positions(trader.user.address)
    upnl = (Decimal(2400) - held.entry_price) * held.size  # at our XAU price
    assert f"unrealized {signed_money(upnl)}" in after
    assert f"Equity: {money(Decimal(1380) + Decimal('119.76') + upnl)}" in after
