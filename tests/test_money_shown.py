"""Money shown is money traded: the leverage orders will use, said before Deploy and in
/deployments with the reason it is lower than chosen; paper or live on every line about a
position (alerts, /positions, /history, /pnl); why live is not offered; the profit share."""

from __future__ import annotations

import pytest

from engine.notify import Dispatcher
from handlers.alerts import alert_reply
from tests.chat_helpers import Person, World, make_world, text_of
from tests.test_chat_features import Capture, make_agent


@pytest.fixture
async def world(sessions) -> World:
    return await make_world(sessions)


async def set_personal_leverage_cap(who: Person, cap: str) -> None:
    view = await who.say("/settings")
    await who.choose(view.replies[0], "Max leverage")
    confirm = await who.say(cap)
    await who.choose(confirm.replies[0], "Save")


async def test_the_leverage_used_is_shown_before_deploy_and_in_deployments(world: World) -> None:
    ann = world.person("Ann", 1)
    await make_agent(ann, "Hawk")  # a 5x agent
    await set_personal_leverage_cap(ann, "3")
    await ann.say("/deploy Hawk")
    ask = await ann.say("100")
    assert "up to 5x, the agent's maximum" in text_of(ask)
    # suggestions in ascending order, none above what the agent allows
    labels = [b.label for b in ask.replies[0].buttons[0]]
    assert labels == ["1x", "2x", "3x"] and [b.label for b in ask.replies[0].buttons[1]] == ["5x"]
    refused = await ann.say("10")
    assert "Hawk trades at most 5x: at 10x your trades would still open at 5x" in text_of(refused)
    await ann.say("5")
    summary = text_of(await ann.say("Trade automatically"))
    used = "Leverage used: 3x (you chose 5x; capped by your personal limit in /settings)"
    assert used in summary
    # the cap is said before the question, not after it
    assert summary.index(used) < summary.index("Confirm?") and summary.endswith("Confirm?")
    assert "Live is not offered: this server has no key vault for live trading" in summary
    assert "Profit share: 10% to the creator and 10% to the source of the call" in summary
    await ann.choose(ann.last.replies[0], "Deploy")  # type: ignore[union-attr]
    listed = text_of(await ann.say("/deployments"))
    assert "3x (you chose 5x; capped by your personal limit in /settings)" in listed


async def test_paper_is_said_on_every_line_about_a_position(world: World) -> None:
    ann = world.person("Ann", 1)
    await make_agent(ann, "Hawk")
    await ann.say("/deploy Hawk")
    await ann.say("100")
    await ann.say("2")
    r = await ann.say("Trade automatically")
    await ann.choose(r.replies[0], "Deploy")
    await world.post("@CryptoHawk", "Long $ETH", "p1")
    positions = await ann.say("/positions")
    assert "#1 [PAPER] Hawk: LONG ETH" in text_of(positions)
    await world.price("ETH", "1900")  # through the stop: closed, with an alert
    assert "[PAPER] Hawk: LONG ETH" in text_of(await ann.say("/history"))
    assert "[PAPER] Hawk (active)" in text_of(await ann.say("/pnl"))
    capture = Capture()
    await Dispatcher(world.sessions, capture).deliver_pending()
    texts = [alert_reply(m.kind, m.payload, m.language).text for m in capture.got]
    assert any(x.startswith("[PAPER] Hawk opened LONG ETH") for x in texts), texts
    assert any(x.startswith("[PAPER] Hawk closed LONG ETH") for x in texts), texts


async def test_spanish_and_russian_say_simulated_money(world: World) -> None:
    eva = world.person("Eva", 1, "es")
    await make_agent(world.person("Ann", 2), "Hawk")
    await eva.say("/deploy Hawk")
    await eva.say("100")
    await eva.say("2")
    r = await eva.say("Operar automáticamente")
    assert "simulado (dinero ficticio)" in text_of(r)
    await eva.choose(r.replies[0], "Desplegar")
    await world.post("@CryptoHawk", "Long $ETH", "p1")
    assert "[SIMULADO] Hawk" in text_of(await eva.say("/positions"))


async def test_an_approval_prompt_shows_price_size_stop_take_profit_and_expiry(
    world: World,
) -> None:
    ann = world.person("Ann", 1)
    await make_agent(ann, "Hawk", tp="8")
    await ann.say("/deploy Hawk")
    await ann.say("100")
    r = await ann.say("2")
    r = await ann.choose(r.replies[0], "Ask me first")
    await ann.choose(r.replies[0], "Deploy")
    await world.post("@CryptoHawk", "Long $ETH", "p1")
    capture = Capture()
    await Dispatcher(world.sessions, capture).deliver_pending()
    (asked,) = [m for m in capture.got if m.kind == "approval_requested"]
    text = alert_reply(asked.kind, asked.payload, asked.language).text
    assert text.startswith("[PAPER] Hawk wants to LONG ETH 2x with $100.00")
    # ETH at 2000: a 3% stop at 1940, an 8% take profit at 2160, 0.1 ETH for $200 at 2x
    assert "Price 2000 · size 0.1 · stop 1940 · take profit 2160" in text
    assert "Expires at 2026-11-20 10:05 UTC" in text


async def answer(who: Person, *texts: str) -> str:
    for text in texts:
        r = await who.say(text)
    return text_of(r)


async def test_create_refuses_contradicting_risk_settings_and_warns_on_extremes(
    world: World,
) -> None:
    ann = world.person("Ann", 1)
    await ann.say("/create")
    ask = await answer(ann, "Hawk", "@CryptoHawk", "HYPERLIQUID", "100", "20")
    assert "in % of the entry price (not of the margin: at 20x a 1% price move is 20%" in ask
    await ann.say("2.6")
    ask = await answer(ann, "2")
    assert "smaller than the 2% gain that starts it" in ask
    refused = await answer(ann, "3")
    assert "A trailing distance of 3% is not smaller than the 2% gain that starts it" in refused
    await ann.say("1")
    refused = await answer(ann, "1.5")
    assert "A take profit at 1.5% would close the trade before trailing starts at 2%" in refused
    await ann.say("8")
    await ann.say("ignore")
    summary = await answer(ann, "0")
    assert "Creator share: 0% of followers' live profits" in summary
    assert "⚠️ 20x is very high leverage" in summary
    assert "⚠️ A 2.6% stop at 20x loses about 52% of the margin" in summary
    assert summary.endswith("Create it?")
