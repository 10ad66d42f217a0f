"""The Discord bot end to end, as a new user lives it, in both modes: the gateway
(discord.py) and signed HTTP interactions, against the local Discord stand-in."""

from __future__ import annotations

from collections.abc import AsyncIterator

import pytest
from sqlalchemy import select

from storage.models import Order, Position
from tests.discord_helpers import DiscordStack, create_and_deploy, discord_stack, press, run


@pytest.fixture(params=["gateway", "http"])
async def dc(request: pytest.FixtureRequest, sessions) -> AsyncIterator[DiscordStack]:  # type: ignore[no-untyped-def]
    async with discord_stack(sessions, request.param) as stack:
        yield stack


async def test_start_create_deploy_alert_close_and_a_stranger_cannot_close(
    dc: DiscordStack,
) -> None:
    peer = dc.peer
    ann = peer.user(1001, "Ann", "en-US")
    welcome = await run(ann, "start", "Welcome to Maxxit")
    assert "Browse agents" in welcome.button_labels()
    assert not welcome.ephemeral  # in the bot's DMs replies are normal messages
    names = {c["name"] for c in peer.commands[""]}
    assert {"start", "deploy", "positions", "call", "cancel", "answer"} <= names

    await create_and_deploy(ann)
    await dc.world.post("@CryptoHawk", "Long $ETH, breakout confirmed", "p1")
    assert await dc.deliver() == 1
    alert = await ann.wait_for("opened LONG ETH")
    assert alert.channel_id == peer.dm_channel(ann.id).id and alert.embeds
    assert alert.button_labels() == ["Close"]

    eve = peer.user(666, "Eve", "en-US")
    await run(eve, "start", "Welcome")
    custom_id = alert.buttons()[0]["custom_id"]
    for forged in (custom_id, custom_id.replace("pc:", "pcy:")):
        refusal = await eve.answer(await eve.press_id(alert, forged), "not yours")
        assert refusal.ephemeral and refusal.visible_to == eve.id
    async with dc.world.sessions() as s:
        assert (await s.execute(select(Position.status))).scalar_one() == "open"
    assert (alert.edits, alert.button_labels()) == (0, ["Close"])  # untouched

    ask = await press(ann, alert, "Close", "Close this position")
    assert ask.id == alert.id
    closed = await press(ann, ask, "Yes, close", "closed by you")
    assert closed.id == alert.id and closed.button_labels() == []
    async with dc.world.sessions() as s:
        assert (await s.execute(select(Position.status))).scalar_one() == "closed"
    assert "-$0.57" in closed.text  # the result is in the edited message itself
    assert await dc.deliver() == 0  # one message for a manual close: no second alert


async def test_in_a_server_money_replies_are_ephemeral_and_language_follows_the_app(
    dc: DiscordStack,
) -> None:
    _, channel = dc.peer.guild()
    ana = dc.peer.user(2002, "Ana", "es-ES")
    bob = dc.peer.user(2003, "Bob", "en-US")
    welcome = await run(ana, "start", "bienvenida a Maxxit", channel=channel)
    assert "Explorar agentes" in welcome.button_labels()
    assert welcome.ephemeral and welcome not in bob.messages
    pnl = await run(ana, "pnl", "", channel=channel)
    assert pnl.ephemeral and pnl.visible_to == ana.id


async def test_manual_approval_confirm_skip_and_expiry(dc: DiscordStack) -> None:
    ann = dc.peer.user(7, "Ann", "en-US")
    await create_and_deploy(ann, approval="Ask me first")
    await dc.world.post("@CryptoHawk", "Long $ETH", "p1")
    await dc.deliver()
    ask = await ann.wait_for("wants to LONG ETH")
    assert ask.button_labels() == ["Confirm", "Skip"]
    await press(ann, ask, "Confirm", "order is filled")

    await dc.world.post("@MacroMia", "Short $BTC", "p2")
    await dc.deliver()
    ask = await ann.wait_for("wants to SHORT BTC")
    await press(ann, ask, "Skip", "Skipped")

    await dc.world.post("@MacroMia", "Long $SOL", "p3")
    await dc.deliver()
    ask = await ann.wait_for("wants to LONG SOL")
    dc.world.advance(301)
    assert len(await dc.world.engine.expire_approvals()) == 1
    await dc.deliver()
    await ann.wait_for("expired without your answer")
    late = await press(ann, ask, "Confirm", "has expired")
    assert late.id == ask.id
    async with dc.world.sessions() as s:
        statuses = sorted((await s.execute(select(Order.status))).scalars().all())
        positions = (await s.execute(select(Position.market))).scalars().all()
    assert statuses == ["filled", "skipped", "skipped"]
    assert positions == ["ETH"]


async def test_deploy_autocompletes_agent_names(dc: DiscordStack) -> None:
    ann = dc.peer.user(8, "Ann", "en-US")
    await create_and_deploy(ann)
    choices = await ann.autocomplete("deploy", "agent", "haw")
    assert choices == [{"name": "Hawk", "value": "Hawk"}]
    assert await ann.autocomplete("deploy", "agent", "zzz") == []
    bob = dc.peer.user(9, "Bob", "en-US")
    await run(bob, "deploy", "Deploying Hawk", agent="Hawk")


async def test_the_gateway_resumes_after_discord_asks_for_a_reconnect(sessions) -> None:  # type: ignore[no-untyped-def]
    async with discord_stack(sessions, "gateway") as dc:
        ann = dc.peer.user(10, "Ann", "en-US")
        await run(ann, "start", "Welcome to Maxxit")
        await dc.peer.gateway.reconnect()
        # sent while the client reconnects: RESUME replays it, nothing is lost
        await run(ann, "help", "")
        await ann.until(lambda: dc.peer.gateway.resumes == 1, "a RESUME")
        assert dc.peer.gateway.identifies == 1
        await dc.peer.gateway.drop()  # the connection breaks without a word
        await run(ann, "agents", "")
        await ann.until(lambda: dc.peer.gateway.resumes == 2, "a second RESUME")
