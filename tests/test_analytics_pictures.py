"""Pictures: the charts themselves, and the replies and alerts that carry them (/pnl, an
agent's details, a closed trade's alert, the console chat saving them to files)."""

from __future__ import annotations

import asyncio
from datetime import date, timedelta
from decimal import Decimal
from pathlib import Path

import pytest

from bot.chat import Screen
from engine.analytics.charts import CurveLabels, TradeCard, equity_curve, render, trade_card
from engine.analytics.figures import drawdowns, equity_index
from handlers.alerts import alert_with_picture
from handlers.base import Reply
from storage.models import User
from tests.analytics_helpers import Book, at
from tests.chat_helpers import World, make_world, text_of
from tests.png_check import assert_picture

D = Decimal
LABELS = CurveLabels("Hawk · live", "+3.2% · Sharpe 1.40 · trades: 12", "Return", "Drawdown", "-")
CLOSED = {
    "position_id": 7,
    "agent": "Hawk",
    "venue": "HYPERLIQUID",
    "market": "ETH",
    "side": "long",
    "size": "0.25",
    "entry_price": "2000",
    "exit_price": "2100",
    "close_reason": "take_profit",
    "fees": "0.5",
    "realized_pnl": "24.5",
    "leverage": "5",
}


@pytest.fixture
async def world(sessions) -> World:
    return await make_world(sessions)


async def test_charts_are_phone_sized_pngs_drawn_off_the_event_loop() -> None:
    returns = [D("0.01"), D("-0.02"), D("0.015"), D("0.03"), D("-0.01")]
    equity = equity_index(returns)
    days = [date(2026, 11, 1) + timedelta(days=i) for i in range(len(returns))]
    ticks = 0

    async def ticker() -> None:  # the loop keeps running while a picture is drawn
        nonlocal ticks
        while True:
            ticks += 1
            await asyncio.sleep(0.001)

    task = asyncio.create_task(ticker())
    curve = await render(
        equity_curve, days, [e - 1 for e in equity[1:]], drawdowns(equity)[1:], LABELS, False
    )
    task.cancel()
    assert ticks > 1
    assert_picture(curve)
    card = TradeCard("Hawk", "ETH", "LONG", True, D("0.245"), D("24.5"), "Entry", "2000",
                     "Exit", "2100", "take profit · HYPERLIQUID", "5x")  # fmt: skip
    pixels = assert_picture(await render(trade_card, card))
    # a winning card is framed in green, a losing one in red (the frame's left edge)
    left_edge = pixels[540, 56:66]
    assert (left_edge[:, 1] > left_edge[:, 0]).any()
    loss = TradeCard("Hawk", "ETH", "SHORT", False, D("-0.1"), D("-10"), "Entry", "2000",
                     "Exit", "2040", "stop loss", "5x")  # fmt: skip
    red_edge = assert_picture(trade_card(loss))[540, 56:66]
    assert (red_edge[:, 0] > red_edge[:, 1]).any()
    # nothing to draw yet: still a picture, saying so
    assert_picture(equity_curve(days[:1], [D(0)], [D(0)], LABELS, True))


async def test_a_closed_trade_alert_carries_its_card_and_others_do_not() -> None:
    reply = await alert_with_picture("position_closed", CLOSED, "ru")
    assert "ETH" in reply.text
    assert_picture(reply.photo)
    opened = await alert_with_picture(
        "stop_moved", {"market": "ETH", "side": "long", "stop_price": "1900"}, "en"
    )
    assert opened.photo is None
    # an alert written before the leverage was in the payload still gets its card
    old = {k: v for k, v in CLOSED.items() if k != "leverage"}
    assert_picture((await alert_with_picture("position_closed", old, "en")).photo)


async def _ann_with_history(world: World) -> tuple[Book, int, int]:
    """Ann (as she writes to the bot) following Hawk live and Mia on paper, with closes
    over the days before the world's clock (20 November)."""
    ann = world.person("Ann", 1)
    await ann.say("/start")
    book = Book(world.sessions)
    async with world.sessions() as s:
        from sqlalchemy import select

        uid = (await s.execute(select(User.id).where(User.display_name == "Ann"))).scalar_one()
    hawk, mia = await book.agent("Hawk"), await book.agent("Mia")
    live = await book.deployment(uid, hawk, "live")
    paper = await book.deployment(uid, mia, "paper")
    for day, pnl in ((1, "10"), (5, "-4"), (14, "6"), (19, "3"), (20, "2.5")):
        await book.trade(live, hawk, at(day, 8), pnl)
    await book.trade(paper, mia, at(20, 9), "50", margin="200")
    return book, hawk, uid


async def test_pnl_shows_windows_in_money_and_percent_with_the_equity_curve(world: World) -> None:
    await _ann_with_history(world)
    ann = world.people["Ann"]
    r = await ann.say("/pnl")
    text = r.replies[0].text
    live, paper = text.split("Closed trades, live:")[1].split("Closed trades, paper:")
    # today (20 Nov): +2.50 on $100 of margin; 7 days: 14th, 19th, 20th; all: every close
    assert "Today: +$2.50 (+2.50%) · trades: 1" in live
    assert "7 days: +$11.50 (+3.83%) · trades: 3" in live
    assert "30 days: +$17.50 (+3.50%) · trades: 5" in live
    assert "All time: +$17.50 (+3.50%) · trades: 5" in live
    assert "Today: +$50.00 (+25.00%) · trades: 1" in paper
    # all time, live: 4 of 5 won ($10, $6, $3, $2.50), one lost $4 (a 4% fall from the peak)
    assert "Win rate 80.0% · average win +$5.38 / loss -$4.00 · max drawdown 4.0%" in live
    assert "UTC" in text
    # the picture is the live curve (live money comes first), in a reply of its own
    assert len(r.replies) == 2 and r.replies[0].photo is None
    assert "live equity curve" in r.replies[1].text and "+$17.50" in r.replies[1].text
    assert_picture(r.replies[1].photo)
    daily = await ann.choose(r.replies[0], "Day by day")
    days = text_of(daily)
    assert "2026-11-20: +$2.50 (+2.50%) · trades: 1" in days
    assert "2026-11-18: no closed trades" in days and "2026-11-13" not in days
    assert "In all: +$11.50 (+3.83%) · trades: 3" in days
    month = text_of(await ann.say("/daily 30"))
    assert "2026-11-01: +$10.00 (+10.00%) · trades: 1" in month


async def test_pnl_in_spanish_and_nothing_yet(world: World) -> None:
    bob = world.person("Bob", 2, "es")
    r = await bob.say("/pnl")
    assert len(r.replies) == 1 and r.replies[0].photo is None
    await _ann_with_history(world)
    ann = world.people["Ann"]
    ann.language = "es"
    from sqlalchemy import update

    async with world.sessions() as s, s.begin():
        await s.execute(update(User).where(User.display_name == "Ann").values(language="es"))
    text = text_of(await ann.say("/pnl"))
    # amounts in the Spanish way (Babel), as every reply to a Spanish speaker
    assert "Hoy: +2,50\xa0US$ (+2.50%) · operaciones: 1" in text


async def test_agent_details_carry_the_equity_curve(world: World) -> None:
    _, hawk, _ = await _ann_with_history(world)
    bob = world.person("Bob", 2)
    r = await bob.press(f"ad:{hawk}")
    card = r.replies[0]
    assert "Hawk" in card.text and "Live, 30 days:" in card.text
    assert "average win +$5.38 / loss -$4.00" in card.text and "APR +" in card.text
    assert len(card.text) <= 1024  # a photo caption
    assert_picture(card.photo)


def test_the_console_chat_saves_pictures_and_says_where(tmp_path: Path) -> None:
    shown: list[str] = []
    screen = Screen(shown.append, tmp_path / "pictures")
    png = trade_card(TradeCard("Hawk", "ETH", "LONG", True, D("0.1"), D("10"), "Entry", "1",
                               "Exit", "2", "-", "1x"))  # fmt: skip
    screen.show(Reply("Hawk closed LONG ETH", photo=png), "🔔 ")
    assert shown[0] == "🔔 Hawk closed LONG ETH"
    path = Path(shown[1].split("picture saved to ")[1])
    assert path.parent == tmp_path / "pictures" and path.read_bytes() == png
