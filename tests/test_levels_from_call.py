"""A call that states its levels ("Long ETH here, sl 1950, tp 2200") opens with those levels,
within the agent's risk limit, which wins; the alert says which levels came from the call."""

from __future__ import annotations

from decimal import Decimal

from sqlalchemy import select

from bot.console import ConsoleTransport
from engine.notify import Dispatcher
from storage.models import Position
from tests.test_pipeline import _engine, post

D = Decimal


async def _open(sessions, text: str) -> tuple[Position, list[str]]:
    engine = await _engine(sessions, [{"collateral_usd": "100", "leverage": "2"}])
    await engine.ingest(post(text))
    async with sessions() as s:
        position = (await s.execute(select(Position))).scalar_one()
    lines: list[str] = []
    await Dispatcher(sessions, ConsoleTransport(lines.append)).deliver_pending()
    return position, lines


async def test_stated_stop_and_take_profit_are_used_and_named_in_the_alert(sessions) -> None:
    position, lines = await _open(sessions, "Long $ETH here, sl 1950, tp 2200")
    assert position.stop_price == D(1950)  # the agent's 5% would be about 1900
    assert position.take_profit_price == D(2200)  # the agent's 10% would be about 2200.2
    opened = next(line for line in lines if "opened" in line)
    assert "From the call: stop 1950, take profit 2200" in opened


async def test_a_stop_beyond_the_agents_limit_is_refused_and_the_alert_says_so(sessions) -> None:
    position, lines = await _open(sessions, "Long $ETH at 2000, stop 1500, target 2300")
    fill = position.entry_price
    assert position.stop_price == (fill * D("0.95")).quantize(position.stop_price)  # agent's
    assert position.take_profit_price == D(2300)
    opened = next(line for line in lines if "opened" in line)
    assert "From the call: entry 2000, take profit 2300" in opened
    assert "Not taken from the call: stop" in opened


async def test_a_call_without_levels_opens_with_the_agents_percentages(sessions) -> None:
    position, lines = await _open(sessions, "Long $ETH now")
    fill = position.entry_price
    assert position.stop_price == (fill * D("0.95")).quantize(position.stop_price)
    assert not any("from the call" in line.lower() for line in lines)


async def test_a_take_profit_on_the_wrong_side_of_the_price_is_refused(sessions) -> None:
    position, lines = await _open(sessions, "Long $ETH here, tp 1800")
    fill = position.entry_price
    assert position.take_profit_price == (fill * D("1.10")).quantize(position.take_profit_price)
    assert any("Not taken from the call: take profit" in line for line in lines)


async def test_an_entry_range_is_shown_whole_in_the_alert(sessions) -> None:
    # the market (2000) is inside the range: it opens now, and the alert names both ends
    position, lines = await _open(sessions, "Long $ETH 1990-2010, tp 2300")
    assert position.take_profit_price == D(2300)
    opened = next(line for line in lines if "opened" in line)
    assert "From the call: entry 1990–2010, take profit 2300" in opened
