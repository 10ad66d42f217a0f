"""Pictures on Discord, in both modes (gateway and HTTP interactions), against the stand-in
that reads uploads as Discord does (multipart/form-data: `payload_json` and `files[0]`): a
closed trade's DM alert shows its card, /pnl its equity curve after the text, and an agent's
details its curve, each the embed's image (`attachment://`) with the words beside it."""

from __future__ import annotations

from collections.abc import AsyncIterator

import pytest

from tests.discord_helpers import DiscordStack, create_and_deploy, discord_stack, press, run
from tests.peers.discord_models import Message
from tests.peers.discord_uploads import PNG_SIGNATURE
from tests.png_check import assert_picture


@pytest.fixture(params=["gateway", "http"])
async def dc(request: pytest.FixtureRequest, sessions) -> AsyncIterator[DiscordStack]:  # type: ignore[no-untyped-def]
    async with discord_stack(sessions, request.param) as stack:
        yield stack


def assert_png_attached(message: Message) -> None:
    """The embed shows the uploaded PNG: as Discord stored it (size, dimensions) and as sent."""
    png = message.picture
    assert png is not None and png[:8] == PNG_SIGNATURE
    [attachment] = message.to_json()["attachments"]
    assert attachment["filename"].endswith(".png") and attachment["content_type"] == "image/png"
    assert attachment["size"] == len(png)
    assert (attachment["width"], attachment["height"]) == (1080, 1080)
    assert_picture(png)


async def test_close_card_pnl_curve_and_agent_card_arrive_as_pictures(dc: DiscordStack) -> None:
    peer = dc.peer
    ann = peer.user(1001, "Ann", "en-US")
    await run(ann, "start", "Welcome to Maxxit")
    await create_and_deploy(ann)
    await dc.world.post("@CryptoHawk", "Long $ETH, breakout confirmed", "p1")
    await dc.deliver()
    opened = await ann.wait_for("opened LONG ETH")
    assert opened.picture is None and opened.attachments == []  # an opening is words only

    await dc.world.price("ETH", "2200")  # through the 8% take profit
    await dc.deliver()
    closed = await ann.wait_for("closed LONG ETH")
    assert closed.channel_id == peer.dm_channel(ann.id).id
    assert "PnL +$" in closed.text  # the alert's words, with its card as the picture
    assert_png_attached(closed)
    [upload] = [c for c in peer.calls_to("/channels/{channel}/messages", "POST")
                if c.body and c.body.get("attachments")]  # fmt: skip
    assert upload.body["embeds"][0]["image"]["url"] == "attachment://maxxit.png"

    pnl = await ann.command("pnl")
    text = await ann.answer(pnl, "Closed trades, paper:")
    assert "Today: +$" in text.text and text.picture is None
    curve = await ann.answer(pnl, "equity curve")
    assert int(curve.id) > int(text.id)
    assert_png_attached(curve)

    market = await run(ann, "agents", "Hawk")
    details = await ann.press(market, "Details")
    card = await ann.answer(details, "Hawk")
    for _ in range(2):  # the card is the follow-up with the picture
        if card.picture is not None:
            break
        card = await ann.answer(details, "Deploy")
    assert "Hawk" in card.text
    assert_png_attached(card)
    assert await press(ann, card, "Deploy", "Hawk")  # its buttons still act
