"""What traders expect: /positions with the price move and ROE, Refresh and Close all
(confirmed); one message for a manual close; /approvals; /link, /wallet, /unlink in /help
and the command menu; /link says it replaces a linked wallet."""

from __future__ import annotations

import pytest
from eth_account import Account
from sqlalchemy import select

from engine.notify import Dispatcher
from handlers.alerts import alert_reply
from handlers.router import MENU
from storage.models import Position
from tests.chat_helpers import World, make_world, sign_text, text_of
from tests.test_chat_features import Capture, deploy, make_agent


@pytest.fixture
async def world(sessions) -> World:
    return await make_world(sessions)


async def test_positions_show_move_and_roe_refresh_and_close_all(world: World) -> None:
    ann, bob = world.person("Ann", 1), world.person("Bob", 2)
    await make_agent(ann, "Hawk")
    await deploy(ann, "Hawk", leverage="5")
    await deploy(bob, "Hawk")
    await world.post("@CryptoHawk", "Long $ETH", "p1")
    await world.post("@CryptoHawk", "Long $SOL", "p2")
    await world.price("ETH", "2040")
    listing = await ann.say("/positions")
    # filled at 2001 (slippage), now 2040: +1.95% of the price, 5x that of the margin
    first = listing.replies[1].text
    assert "Price move +1.95% · ROE +9.75% of the margin" in first and "Liq. ≈" in first
    await world.price("ETH", "2100")
    refreshed = await ann.choose(listing.replies[1], "Refresh")
    assert refreshed.replies[0].edit and "Price move +4.95%" in text_of(refreshed)
    assert (await bob.choose(listing.replies[1], "Refresh")).refused  # not Bob's

    ask = await ann.choose(listing.replies[0], "Close all")
    assert "Close 2 open positions at the market price?" in text_of(ask)
    kept = await ann.choose(ask.replies[0], "Keep")
    assert "Nothing closed" in text_of(kept)
    done = await ann.choose(ask.replies[0], "Yes, close all")
    assert "Closed: 2, realized PnL +$" in text_of(done)
    async with world.sessions() as s:
        statuses = (await s.execute(select(Position.deployment_id, Position.status))).all()
    assert sorted(st for _, st in statuses) == ["closed", "closed", "open", "open"]  # Bob's open
    # the reply was the news: no second "closed" message per position
    capture = Capture()
    await Dispatcher(world.sessions, capture).deliver_pending()
    assert [m.kind for m in capture.got if m.user_id == 1].count("position_closed") == 0


async def test_a_manual_close_is_one_message(world: World) -> None:
    ann = world.person("Ann", 1)
    await make_agent(ann, "Hawk")
    await deploy(ann, "Hawk")
    await world.post("@CryptoHawk", "Long $ETH", "p1")
    capture = Capture()
    dispatcher = Dispatcher(world.sessions, capture)
    await dispatcher.deliver_pending()
    assert [m.kind for m in capture.got] == ["position_opened"]
    listing = await ann.say("/positions")
    ask = await ann.choose(listing.replies[1], "Close")
    closed = await ann.choose(ask.replies[0], "Yes, close")
    assert "closed by you" in text_of(closed)
    await dispatcher.deliver_pending()
    assert [m.kind for m in capture.got] == ["position_opened"]  # nothing more


async def test_pending_approvals_are_listed_with_their_terms(world: World) -> None:
    ann = world.person("Ann", 1)
    assert "No trade is waiting" in text_of(await ann.say("/approvals"))
    await make_agent(ann, "Hawk")
    await ann.say("/deploy Hawk")
    await ann.say("100")
    r = await ann.say("2")
    r = await ann.choose(r.replies[0], "Ask me first")
    await ann.choose(r.replies[0], "Deploy")
    await world.post("@CryptoHawk", "Long $ETH", "p1")
    listing = await ann.say("/approvals")
    text = text_of(listing)
    assert "Waiting for your Confirm (1)" in text
    assert "Hawk wants to LONG ETH 2x" in text and "Price 2000 · size 0.1 · stop 1940" in text
    assert "Expires at 2026-11-20 10:05 UTC" in text
    done = await ann.choose(listing.replies[1], "Confirm")
    assert "filled" in text_of(done)
    assert "No trade is waiting" in text_of(await ann.say("/approvals"))


async def test_help_and_menu_have_link_wallet_unlink_and_link_says_it_replaces(
    world: World,
) -> None:
    ann = world.person("Ann", 1)
    help_text = text_of(await ann.say("/help"))
    for command in ("/link", "/wallet", "/unlink", "/approvals", "/myagents"):
        assert f"\n{command} - " in help_text
    assert {"link", "wallet", "unlink"} <= set(MENU)
    assert "replaces" not in text_of(await ann.say("/link"))
    wallet = Account.create()
    ask = await ann.say(wallet.address)
    message = text_of(ask).split("here:\n\n", 1)[1]
    assert "is linked" in text_of(await ann.say(sign_text(message, wallet)))
    again = text_of(await ann.say("/link"))
    assert f"Your wallet {wallet.address} is linked now: linking another one replaces it." in again


async def test_times_are_in_the_users_time_zone_or_utc_written_out(world: World) -> None:
    ann = world.person("Ann", 1)
    await make_agent(ann, "Hawk")
    await deploy(ann, "Hawk")
    await world.post("@CryptoHawk", "Long $ETH", "p1")
    listing = await ann.say("/positions")
    await ann.choose((await ann.choose(listing.replies[1], "Close")).replies[0], "Yes, close")
    assert "(closed by you, 2026-11-20 10:00 UTC)" in text_of(await ann.say("/history"))
    assert "Mars/Olympus is not a time zone" in text_of(await ann.say("/timezone Mars/Olympus"))
    saved = await ann.say("/timezone Europe/Madrid")
    assert "now shown in Europe/Madrid: it is 2026-11-20 11:00 Europe/Madrid" in text_of(saved)
    assert "2026-11-20 11:00 Europe/Madrid)" in text_of(await ann.say("/history"))
    assert "shown in Europe/Madrid" in text_of(await ann.say("/timezone"))


async def test_a_paused_deployment_says_what_it_skipped_when_asked_to(world: World) -> None:
    ann = world.person("Ann", 1)
    await make_agent(ann, "Hawk")
    await deploy(ann, "Hawk")
    listed = await ann.say("/deployments")
    await ann.choose(listed.replies[1], "Pause")
    capture = Capture()
    dispatcher = Dispatcher(world.sessions, capture)
    await world.post("@CryptoHawk", "Long $ETH", "p1")
    await dispatcher.deliver_pending()
    assert capture.got == []  # off by default
    view = await ann.say("/settings")
    view = await ann.choose(view.replies[0], "▫️ Skipped while paused")
    assert "✅ Skipped while paused" in text_of(view)
    await world.post("@CryptoHawk", "Short $SOL", "p2")
    await dispatcher.deliver_pending()
    (skipped,) = capture.got
    text = alert_reply(skipped.kind, skipped.payload, skipped.language).text
    assert text == (
        "Hawk called SHORT SOL: not traded, your deployment #1 is paused."
        " Resume it in /deployments."
    )


async def test_a_fresh_install_with_no_agents_gives_a_clear_first_step(world: World) -> None:
    ann = world.person("Ann", 1)
    welcome = text_of(await ann.say("/start"))
    assert "No agent is listed here yet. Your first step: /create" in welcome
    assert "Pick an agent in /agents" not in welcome
    await make_agent(ann, "Hawk")
    bob = world.person("Bob", 2)
    assert "Pick an agent in /agents" in text_of(await bob.say("/start"))
