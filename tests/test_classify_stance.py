"""Who holds what, and when: the stance model reads reports of the past, conditions and other
people's positions as no call, and flips, contrary context and "sold" shorts as calls."""

from __future__ import annotations

import pytest

from engine.classify.rules import RulesClassifier

CLF = RulesClassifier()

NOT_CALLS = [
    ("Closed out the $NEAR long this morning, +11%", "exit"),
    ("$ARB short: covered into the flush", "exit"),
    ("Took a third off the $TON long, rest rides", "exit"),
    ("Bought $OP at 1.7 and dumped it at 1.9 an hour later, done", "exit"),
    ("Long $APT liquidated overnight, lesson learned", "exit"),
    ("Scrapping the $SEI long setup, it lost the level", "exit"),
    ("Back in 2022 I shorted $LUNC... wait, $BTC at 48k. Good call", "past"),
    ("My $ETH long call from two weeks ago played out, remember?", "past"),
    ("Would fade $SOL at 260 if funding flips positive", "conditional"),
    ("If $XRP loses 2 I'll go short", "conditional"),
    ("$BTC: long over 105k, short under 95k. Until then, nothing", "both ways"),
    ("Bullish $AVAX long term, no position at the moment", "sentiment without a position"),
    ("The whole timeline is long $SUI here, they'll get wrecked", "someone else"),
    ("Imagine shorting $HYPE at these levels", "sarcasm"),
    ("Sold the $ETH long at 3500, thanks for the ride", "exit"),
]

CALLS = [
    ("Flipped my $SOL long into a short at 242", "SOL", "short"),
    ("Was long $BTC into the FOMC. Flipped short now", "BTC", "short"),
    ("Covered the $LINK short, going long here", "LINK", "long"),
    ("Everyone's bearish $ETH and shorts pay funding. I'm long", "ETH", "long"),
    ("Retail is max long $DOGE. Opened a short", "DOGE", "short"),
    ("Sold $AVAX perps at 41, invalidation 44", "AVAX", "short"),
    ("selling $BNB into the ATH, short from 720", "BNB", "short"),
    ("$SEI longies loaded", "SEI", "long"),
    ("took a small $INJ long at 22", "INJ", "long"),
    ("Sold the rip on $ETH, short from 3500", "ETH", "short"),
]


@pytest.mark.parametrize(("post", "why"), NOT_CALLS)
def test_reports_conditions_and_others_positions_are_not_calls(post: str, why: str) -> None:
    c = CLF.classify_sync(post)
    assert not c.is_signal, f"{post!r} read as {c.side} {c.market} ({why})"


@pytest.mark.parametrize(("post", "market", "side"), CALLS)
def test_flips_contrary_context_and_sold_shorts_are_calls(post: str, market: str, side: str):
    c = CLF.classify_sync(post)
    assert (c.is_signal, c.market, c.side) == (True, market, side), c.reason


def test_levels_stated_in_a_call_come_with_the_classification() -> None:
    c = CLF.classify_sync("Long $BTC here, sl 94000, tp 100000")
    assert c.details["call_levels"] == {"stop_loss": "94000", "take_profit": "100000"}
    c = CLF.classify_sync("$SOL short 242, stop 251, TP1 225 TP2 210, 3x")
    assert c.details["call_levels"] == {"entry": "242", "stop_loss": "251", "take_profit": "225"}
    assert "call_levels" not in CLF.classify_sync("Long $ETH, 5x, stop 10% below").details
