"""Counted phrases through Babel's plural rules (gettext ngettext): correct in English,
Spanish and Russian, never "deployment(s)" or "1 trades"."""

from __future__ import annotations

import re
from pathlib import Path

import pytest

from handlers.i18n import SUPPORTED, tn
from tests.chat_helpers import World, make_world, text_of
from tests.test_chat_features import deploy, make_agent

ROOT = Path(__file__).resolve().parents[1]


@pytest.mark.parametrize(
    ("lang", "expected"),
    [
        ("en", ["1 trade", "2 trades", "5 trades", "21 trades", "1,000 trades"]),
        (
            "es",
            [
                "1 operación",
                "2 operaciones",
                "5 operaciones",
                "21 operaciones",
                "1.000 operaciones",
            ],
        ),
        ("ru", ["1 сделка", "2 сделки", "5 сделок", "21 сделка", "1\xa0000 сделок"]),
    ],
)
def test_trades_counted_in_each_language(lang: str, expected: list[str]) -> None:
    assert [tn(lang, "n.trades", n) for n in (1, 2, 5, 21, 1000)] == expected


def test_no_message_hedges_a_plural_with_s_in_brackets() -> None:
    for lang in SUPPORTED:
        text = (ROOT / "locales" / lang / "messages.po").read_text("utf-8")
        assert not re.search(r"\w\((s|es|as|os|a)\)", text), lang


async def test_pnl_and_the_marketplace_count_in_words(sessions) -> None:
    world: World = await make_world(sessions)
    ann = world.person("Ann", 1)
    await make_agent(ann, "Hawk")
    await deploy(ann, "Hawk")
    await world.post("@CryptoHawk", "Long $ETH", "p1")
    await world.price("ETH", "1900")  # stopped out: one closed trade
    assert "over 1 trade (0 won), unrealized +$0.00 on 0 open positions" in text_of(
        await ann.say("/pnl")
    )
    card = text_of(await ann.say("/agents"))
    assert "trades: 1" in card and "Followers: 1 ·" in card
    ivan = world.person("Ivan", 2, "ru")
    await deploy_ru(ivan)
    card = text_of(await ivan.say("/agents"))
    assert "сделок: 1" in card and "Подписчиков: 2 ·" in card  # labels: no plural to agree


async def deploy_ru(who) -> None:  # type: ignore[no-untyped-def]
    await who.say("/deploy Hawk")
    await who.say("100")
    await who.say("2")
    r = await who.say("Торговать автоматически")
    for row in r.replies[0].buttons:
        for b in row:
            if b.label.startswith("Запустить"):
                await who.press(b.data or "")
                return
    raise AssertionError([b.label for row in r.replies[0].buttons for b in row])
