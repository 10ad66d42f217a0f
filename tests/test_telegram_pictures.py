"""Pictures in Telegram, through python-telegram-bot and the Bot API stand-in: a closed
trade's alert arrives as a photo (sendPhoto) with the alert as its caption, and /pnl sends the
equity curve as a photo after its text."""

from __future__ import annotations

from tests.chat_helpers import step
from tests.png_check import assert_picture
from tests.test_telegram import Stack, create_and_deploy, tg  # noqa: F401 - the fixture


async def test_close_alert_and_pnl_arrive_as_photos(tg: Stack) -> None:  # noqa: F811
    ann = tg.peer.user(1001, "Ann", "en")
    await step(ann, "/start", "Welcome to Maxxit")
    await create_and_deploy(ann)
    await tg.world.post("@CryptoHawk", "Long $ETH, breakout confirmed", "p1")
    await tg.deliver()
    await ann.wait_for("opened LONG ETH")
    assert tg.peer.calls_to("sendPhoto") == []  # an opened position is words only

    await tg.world.price("ETH", "2200")  # through the 8% take profit
    await tg.deliver()
    closed = await ann.wait_for("closed LONG ETH")
    assert closed.photo and "PnL +$" in closed.text  # the alert is the photo's caption
    [upload] = [c.params["photo"] for c in tg.peer.calls_to("sendPhoto")]
    assert upload["mime_type"] == "image/png"
    assert_picture(tg.peer.uploads[-1])

    after = ann.sent
    await ann.send("/pnl")
    text = await ann.wait_for("Closed trades, paper:", after=after)
    assert not text.photo and "Today: +$" in text.text
    curve = await ann.wait_for("equity curve", after=after)
    assert curve.photo and curve.message_id > text.message_id
    assert len(tg.peer.calls_to("sendPhoto")) == 2
    assert_picture(tg.peer.uploads[-1])
