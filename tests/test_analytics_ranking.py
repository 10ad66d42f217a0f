"""The marketplace as a user reads it: ranked by live results, risk-adjusted, after enough
live trades of the agent's own; paper shown apart and never ranked; followers' manual closes
are not the agent's trades."""

from __future__ import annotations

import pytest

from tests.analytics_helpers import Book, at
from tests.chat_helpers import World, make_world, text_of


@pytest.fixture
async def world(sessions) -> World:
    return await make_world(sessions)


def card_of(text: str, name: str) -> str:
    return text.split(f" {name} - ")[1].split("\n\n")[0]


def place_of(text: str, name: str) -> str:
    """What precedes the agent's name on its card: "1.", "2." or "•" (not ranked)."""
    line = next(line for line in text.splitlines() if f" {name} - " in line)
    return line.split(" ")[0]


async def test_live_risk_adjusted_ranking_with_paper_and_manual_closes_apart(
    world: World,
) -> None:
    book = Book(world.sessions)
    fan, rex = await book.user("Fan"), await book.user("Rex")
    names = ("PaperStar", "Steady", "Wild", "Few", "Handsy")
    agents = {n: await book.agent(n) for n in names}
    dep = {n: await book.deployment(fan, a, "live") for n, a in agents.items()}
    # one paper trade of +118.82%: the kind of record that must not top the marketplace
    paper = await book.deployment(rex, agents["PaperStar"], "paper")
    await book.trade(paper, agents["PaperStar"], at(19), "118.82")
    # twelve live days each: Steady earns a little, steadily; Wild earns more, wildly
    steady = ["1", "1.2", "0.8", "-0.2", "1", "1.1", "0.9", "1", "1.3", "0.7", "1", "0.9"]
    wild = ["20", "-15", "25", "-10", "18", "-12", "22", "-8", "15", "-14", "20", "-9"]
    for i, (s, w) in enumerate(zip(steady, wild, strict=True)):
        await book.trade(dep["Steady"], agents["Steady"], at(8 + i), s)
        await book.trade(dep["Wild"], agents["Wild"], at(8 + i), w)
    # three big live wins: not enough trades to be ranked yet
    for day in (17, 18, 19):
        await book.trade(dep["Few"], agents["Few"], at(day), "40")
    # twelve live wins, all closed by the follower's own hand: none is Handsy's trade
    for day in range(8, 20):
        await book.trade(dep["Handsy"], agents["Handsy"], at(day), "30", reason="manual")

    ann = world.person("Ann", 1)
    text = text_of(await ann.say("/agents"))
    assert "ranked after 10 live trades" in text
    # Wild made more money, with far more risk: Steady ranks first
    assert place_of(text, "Steady") == "1." and place_of(text, "Wild") == "2."
    assert text.index("Steady") < text.index("Wild") < text.index("Few")
    wild_card = card_of(text, "Wild")
    assert "trades: 12" in wild_card and "Not ranked" not in wild_card
    steady_card = card_of(text, "Steady")
    assert "Live, 30 days: +11." in steady_card and "Sharpe " in steady_card
    assert "max drawdown 0.2%" in steady_card and "win rate 91.7%" in steady_card
    # the paper star is shown, apart, and not ranked
    star = card_of(text, "PaperStar")
    assert place_of(text, "PaperStar") == "•"
    assert "Live, 30 days: no trades yet" in star
    assert "Paper (not ranked): +118.82% · win rate 100.0% · trades: 1" in star
    assert "Not ranked yet: live trades 0 of 10" in star
    assert "Not ranked yet: live trades 3 of 10" in card_of(text, "Few")
    # the follower's manual closes left Handsy without a single trade of its own
    handsy = card_of(text, "Handsy")
    assert "Live, 30 days: no trades yet" in handsy and "0 of 10" in handsy

    # once Few has ten live trades of its own, it is ranked too, by the same rule
    for day in range(10, 17):
        await book.trade(dep["Few"], agents["Few"], at(day), "-2")
    text = text_of(await ann.say("/agents"))
    assert place_of(text, "Few") in ("1.", "2.", "3.")
    assert "Not ranked" not in card_of(text, "Few")


async def test_ranking_in_russian(world: World) -> None:
    book = Book(world.sessions)
    fan = await book.user("Fan")
    hawk = await book.agent("Hawk")
    dep = await book.deployment(fan, hawk, "paper")
    await book.trade(dep, hawk, at(19), "5")
    ivan = world.person("Ivan", 7, "ru")
    text = text_of(await ivan.say("/agents"))
    assert "На бумаге (не в рейтинге): +5.00%" in text
    assert "Пока не в рейтинге: реальных сделок 0 из 10" in text
