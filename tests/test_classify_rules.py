"""The rules classifier: concrete crypto-Twitter posts in, (market, side, confidence) out."""

from __future__ import annotations

import asyncio
import inspect
from decimal import Decimal

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from engine.classify.base import Classification
from engine.classify.rules import RulesClassifier
from engine.classify.tickers import ALIASES, DEFAULT_MARKETS, normalize_ticker

CLF = RulesClassifier()


def classify(text: str) -> Classification:
    return CLF.classify_sync(text)


# --- signals -----------------------------------------------------------------------------------

SIGNALS = [
    # (post, market, side)
    ("Long BTC", "BTC", "long"),
    ("Longing $ETH here", "ETH", "long"),
    ("Shorting SOL into resistance", "SOL", "short"),
    ("bought more $DOGE today", "DOGE", "long"),
    ("Accumulating LINK below 15", "LINK", "long"),
    ("fading this ETH pump", "ETH", "short"),
    ("aping in $WIF", "WIF", "long"),
    # sentiment
    ("bitcoin bullish", "BTC", "long"),
    ("ETH looking bearish", "ETH", "short"),
    ("pepe to the moon", "kPEPE", "long"),
    ("$AVAX breakout confirmed", "AVAX", "long"),
    ("S&P 500 going lower", "SPX", "short"),
    ("puts on the nasdaq", "NDX", "short"),
    ("short squeeze incoming on BTC", "BTC", "long"),
    ("sell-off coming for SPX", "SPX", "short"),
    ("Never been more bullish on BTC", "BTC", "long"),
    # emoji
    ("BTC 🚀🚀🚀", "BTC", "long"),
    ("ETH 📉", "ETH", "short"),
    ("SOL 🟢", "SOL", "long"),
    ("XRP 🔴", "XRP", "short"),
    # cashtags, aliases, pair notation
    ("long BTC/USDT", "BTC", "long"),
    ("short ETH-PERP", "ETH", "short"),
    ("BTCUSDT long", "BTC", "long"),
    ("1000PEPE long", "kPEPE", "long"),
    ("$kPEPE long", "kPEPE", "long"),
    ("long xbt", "BTC", "long"),
    ("long gold", "XAU", "long"),
    ("shorting silver", "XAG", "short"),
    ("short crude oil", "CL", "short"),
    ("long s&p", "SPX", "long"),
    ("eur/usd long", "EURUSD", "long"),
    ("cable short", "GBPUSD", "short"),
    ("USDJPY short", "USDJPY", "short"),
    ("buying dogecoin", "DOGE", "long"),
    ("ＬＯＮＧ ＄ＢＴＣ", "BTC", "long"),  # fullwidth, NFKC
    ("𝗟𝗼𝗻𝗴 $𝗕𝗧𝗖", "BTC", "long"),  # mathematical bold
    # ambiguous tickers count in UPPERCASE, as cashtags or in pair notation
    ("OP looking bullish", "OP", "long"),
    ("$op bullish", "OP", "long"),
    ("Long APE", "APE", "long"),
    ("LINK bullish", "LINK", "long"),
    ("Long OP-PERP", "OP", "long"),
    ("op/usdt long", "OP", "long"),
    ("CL short", "CL", "short"),
    # the direction may be in another clause or line than the market
    ("$ETH\nLong\nEntry 2300\nTP 2500\nSL 2200", "ETH", "long"),
    ("ETH: long", "ETH", "long"),
    ("I'm not bearish on BTC anymore, longing", "BTC", "long"),
    ("Not selling BTC, buying more", "BTC", "long"),
    # questions only cover their own sentence / last clause
    ("Long BTC here, who's with me?", "BTC", "long"),
    ("Is it time to long BTC? Yes. Longing here.", "BTC", "long"),
    # not-financial-advice is neutral
    ("NFA long BTC", "BTC", "long"),
    ("not financial advice, but long ETH", "ETH", "long"),
    # Spanish
    ("Compro BTC", "BTC", "long"),
    ("Vendo ETH ahora", "ETH", "short"),
    ("BTC alcista", "BTC", "long"),
    ("ETH bajista", "ETH", "short"),
    ("largo en SOL", "SOL", "long"),
    ("corto en oro", "XAU", "short"),
    # Russian
    ("Покупаю BTC", "BTC", "long"),
    ("шорт ETH", "ETH", "short"),
    ("лонг SOL", "SOL", "long"),
    ("продаю биток", "BTC", "short"),
    ("медвежий настрой по эфиру", "ETH", "short"),
    ("бычий взгляд на золото", "XAU", "long"),
]


@pytest.mark.parametrize(("post", "market", "side"), SIGNALS)
def test_signal(post: str, market: str, side: str) -> None:
    c = classify(post)
    assert c.is_signal, c.reason
    assert (c.market, c.side) == (market, side)
    assert market in c.markets_mentioned
    assert Decimal("0") < c.confidence <= Decimal("1")
    assert c.classifier == "rules"
    assert c.reason.startswith(f"{side} {market}: ")


# --- non-signals -------------------------------------------------------------------------------

NOT_SIGNALS = [
    # (post, reason)
    # noise
    ("", "no market"),
    ("   \n\t ", "no market"),
    ("gm", "no market"),
    ("gm frens, coffee time ☕", "no market"),
    ("bullish!", "no market"),
    ("BTC at 65k", "no direction"),
    ("ETH ETF approved by SEC", "no direction"),
    ("$BTC $ETH $SOL", "no direction"),
    ("as long as BTC holds 60k we're fine", "no direction"),
    ("long-term BTC holder", "no direction"),
    ("long story short, ETH is fine", "no direction"),
    ("BTC pumping", "no direction"),  # price action, not a call (see module docstring)
    # English words that are tickers only when shouted
    ("op is right, bullish", "no market"),
    ("sui generis, bullish", "no market"),
    ("link in bio, bullish", "no market"),
    ("ape into this one, bullish", "no market"),
    # "yen" is not an alias (long yen would be short USDJPY)
    ("long yen", "no market"),
    # unknown tickers
    ("$FOOBAR to the moon", "unknown ticker FOOBAR"),
    ("long $FOOBAR", "unknown ticker FOOBAR"),
    ("$FOOBAR listed on a DEX", "unknown ticker FOOBAR"),
    # negation
    ("not shorting BTC here", "negated"),
    ("I wouldn't long ETH", "negated"),
    ("never buying SOL", "negated"),
    ("no longs on DOGE", "negated"),
    ("don't short BTC", "negated"),
    ("dont short BTC", "negated"),
    ("not bullish on ETH", "negated"),
    ("ETH isn't going lower", "negated"),
    ("avoid shorting SOL", "negated"),
    ("Stay away from BTC longs", "negated"),
    ("stop shorting BTC", "negated"),
    ("No compro SOL", "negated"),
    ("не покупаю SOL", "negated"),
    ("ни шорт BTC", "negated"),
    # questions
    ("Should I long BTC?", "question"),
    ("should I long BTC", "question"),
    ("is ETH going higher?", "question"),
    ("long or short SOL?", "question"),
    ("BTC, long or short?", "question"),
    ("wdyt long ETH", "question"),
    ("¿Compro BTC?", "question"),
    ("Стоит ли покупать BTC?", "question"),
    # conflicting
    ("SOL long or short", "conflicting"),
    ("BTC bullish but might short", "conflicting"),
    ("Bearish on ETH but buying the dip", "conflicting"),
    ("BTC 📈📉", "conflicting"),
]


@pytest.mark.parametrize(("post", "reason"), NOT_SIGNALS)
def test_not_a_signal(post: str, reason: str) -> None:
    c = classify(post)
    assert not c.is_signal
    assert c.reason == reason
    assert c.market is None
    assert c.side is None
    assert c.confidence == Decimal("0")


def test_negation_removes_only_the_negated_direction() -> None:
    c = classify("Not shorting BTC, longing it")
    assert (c.is_signal, c.market, c.side) == (True, "BTC", "long")
    c = classify("not longing ETH, long BTC")
    assert (c.is_signal, c.market, c.side) == (True, "BTC", "long")


def test_negation_does_not_cross_a_clause() -> None:
    assert classify("No doubt, long BTC").side == "long"
    assert classify("I don't care what they say, long BTC").side == "long"
    assert classify("Don't be bearish, long BTC").side == "long"


def test_markets_mentioned_keeps_order_and_unknown_tickers() -> None:
    c = classify("$FOOBAR and bitcoin and $ETH, long ETH, bitcoin again")
    assert c.markets_mentioned == ("FOOBAR", "BTC", "ETH")
    assert (c.market, c.side) == ("ETH", "long")


def test_tradable_call_wins_over_unknown_ticker_call() -> None:
    c = classify("$FOOBAR long, also long BTC")
    assert (c.is_signal, c.market, c.side) == (True, "BTC", "long")
    assert c.markets_mentioned == ("FOOBAR", "BTC")


# --- several tickers ---------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("post", "market", "side"),
    [
        ("Long ETH, short BTC", "ETH", "long"),  # first stated call
        ("Short BTC, long ETH", "BTC", "short"),
        ("long BTC short ETH", "BTC", "long"),
        ("BTC long. ETH short.", "BTC", "long"),
        ("ETH bullish SOL bearish", "ETH", "long"),  # sentiment takes the market before it
        ("Longed BTC at 60k and sold ETH", "BTC", "long"),
        ("BTC ETH SOL on watch. Long SOL here", "SOL", "long"),  # only SOL has a direction
        ("ETH looks weak, short ETH, long BTC", "ETH", "short"),
        ("BTC ETH SOL all pumping, bullish", "SOL", "long"),  # nearest to the direction word
        ("Long BTC and ETH", "BTC", "long"),
    ],
)
def test_several_markets(post: str, market: str, side: str) -> None:
    c = classify(post)
    assert (c.is_signal, c.market, c.side) == (True, market, side)
    assert len(c.markets_mentioned) >= 2
    assert c.confidence < classify(f"{side} {market}").confidence


def test_two_calls_both_listed_and_lower_than_one() -> None:
    two = classify("Long ETH, short BTC")
    one = classify("Long ETH")
    assert two.markets_mentioned == ("ETH", "BTC")
    assert "first of several calls" in two.reason
    assert two.confidence < one.confidence


def test_unattributed_direction_is_a_low_confidence_guess() -> None:
    guess = classify("BTC ETH SOL all pumping, bullish")
    assert "nearest of several markets" in guess.reason
    assert guess.confidence < classify("SOL bullish").confidence
    assert guess.confidence < classify("Long ETH, short BTC").confidence
    assert guess.confidence <= Decimal("0.30")


# --- confidence --------------------------------------------------------------------------------


def test_base_confidences_and_reason_format() -> None:
    call = classify("Long BTC")
    sentiment = classify("BTC bullish")
    assert call.confidence == Decimal("0.60")
    assert call.reason == "long BTC: explicit call"
    assert sentiment.confidence == Decimal("0.45")
    assert sentiment.reason == "long BTC: sentiment"


def test_confidence_is_a_two_decimal_decimal() -> None:
    for post in ("Long BTC", "maybe short ETH 5x tp 2000", "BTC ETH SOL all pumping, bullish"):
        confidence = classify(post).confidence
        assert isinstance(confidence, Decimal)
        assert confidence.as_tuple().exponent == -2


@pytest.mark.parametrize(
    ("stronger", "weaker"),
    [
        ("Long ETH. Entry 2300, TP 2500, SL 2200", "Long ETH"),
        ("Long ETH. Entry 2300, TP 2500, SL 2200", "maybe long ETH"),
        ("Long ETH entry 2300", "Long ETH"),
        ("Long ETH, sl 2200, tp 2500", "Long ETH, sl 2200"),
        ("Long ETH 5x", "Long ETH"),
        ("Buy BTC @ 60000", "Buy BTC"),
        ("high conviction long SOL", "long SOL"),
        ("strongly bullish ETH", "bullish ETH"),
        ("Long ETH", "maybe long ETH"),
        ("maybe long ETH", "maybe long ETH, probably, thinking about it"),
        ("Long BTC", "BTC bullish"),
        ("Long $ETH 🚀", "Long $ETH"),
        ("Long BTC", "Long BTC, ETH and SOL on watch"),
        # "considering a short" is an intent, not a position (tests/data/posts_labeled.jsonl)
        ("short ETH", "probably short ETH here"),
        ("BTC bullish", "BTC bullish, could dip first"),
    ],
)
def test_confidence_is_monotonic(stronger: str, weaker: str) -> None:
    a, b = classify(stronger), classify(weaker)
    assert a.is_signal and b.is_signal
    assert (a.market, a.side) == (b.market, b.side)
    assert a.confidence > b.confidence


def test_confidence_is_clamped_to_one() -> None:
    c = classify(
        "High conviction, strongly long ETH, all in 🚀 buying. Entry 2300, TP 2500, SL 2200, 20x"
    )
    assert (c.market, c.side) == ("ETH", "long")
    assert c.confidence == Decimal("1.00")


def test_heavily_hedged_signal_stays_positive() -> None:
    c = classify("maybe, might, could, probably, perhaps BTC ETH SOL all pumping, bullish")
    assert c.is_signal
    assert Decimal("0") < c.confidence <= Decimal("0.10")


def test_clear_majority_beats_a_single_opposite_word() -> None:
    c = classify("ETH bullish bullish bullish, might short")
    assert (c.is_signal, c.market, c.side) == (True, "ETH", "long")
    assert "outweighs the opposite side" in c.reason
    assert c.confidence < classify("ETH bullish").confidence


# --- constructor and tickers -------------------------------------------------------------------


def test_known_markets_restrict_what_is_tradable() -> None:
    clf = RulesClassifier(known_markets={"BTC", "ETH"})
    assert clf.classify_sync("long SOL").reason == "no market"
    assert clf.classify_sync("long $SOL").reason == "unknown ticker SOL"
    assert clf.classify_sync("long ETH").market == "ETH"
    assert clf.classify_sync("long gold").reason == "no market"  # alias to a market not listed


def test_aliases_replace_the_default_table() -> None:
    clf = RulesClassifier(aliases={"digital gold": "BTC", "gold": "XAU"})
    assert (clf.classify_sync("long digital gold").market) == "BTC"
    assert clf.classify_sync("long gold").market == "XAU"
    assert clf.classify_sync("long bitcoin").reason == "no market"
    assert clf.classify_sync("long BTC").market == "BTC"  # tickers themselves still match


def test_custom_short_tickers_need_uppercase() -> None:
    clf = RulesClassifier(known_markets={"BTC", "GO"})
    assert clf.classify_sync("go long BTC").market == "BTC"
    assert clf.classify_sync("long GO").market == "GO"
    assert clf.classify_sync("go is bullish").reason == "no market"


@pytest.mark.parametrize(
    ("raw", "expected"),
    [
        ("BTC", "BTC"),
        ("$btc", "BTC"),
        ("#BTC", "BTC"),
        ("bitcoin", "BTC"),
        ("XBT", "BTC"),
        ("Ethereum", "ETH"),
        ("ether", "ETH"),
        ("BTC/USDT", "BTC"),
        ("ETH-PERP", "ETH"),
        ("BTCUSDT", "BTC"),
        ("sol-usd", "SOL"),
        ("BTC-USDT-PERP", "BTC"),
        ("1000PEPE", "kPEPE"),
        ("pepe", "kPEPE"),
        ("KPEPE", "kPEPE"),
        ("s&p 500", "SPX"),
        ("S&P", "SPX"),
        ("sp500", "SPX"),
        ("nasdaq", "NDX"),
        ("EUR/USD", "EURUSD"),
        ("euro", "EURUSD"),
        ("cable", "GBPUSD"),
        ("usd/jpy", "USDJPY"),
        ("XAUUSD", "XAU"),
        ("gold", "XAU"),
        ("silver", "XAG"),
        ("WTI", "CL"),
        ("crude", "CL"),
        ("op", "OP"),  # a token; the classifier decides whether bare "op" is one
        ("yen", None),
        ("FOOBAR", None),
        ("usdt", None),
        ("", None),
        ("   ", None),
    ],
)
def test_normalize_ticker(raw: str, expected: str | None) -> None:
    assert normalize_ticker(raw, DEFAULT_MARKETS) == expected


def test_normalize_ticker_respects_known() -> None:
    assert normalize_ticker("bitcoin", {"ETH"}) is None
    assert normalize_ticker("BTC/USDT", {"ETH"}) is None
    assert normalize_ticker("wbtc", {"BTC"}, aliases={"wbtc": "BTC"}) == "BTC"


def test_default_tables_are_consistent() -> None:
    assert set(ALIASES.values()) <= DEFAULT_MARKETS
    assert {"BTC", "ETH", "kPEPE", "EURUSD", "XAU", "CL", "SPX", "NDX", "SEI"} <= DEFAULT_MARKETS
    assert all(key == key.lower() for key in ALIASES)


# --- protocol ----------------------------------------------------------------------------------


def test_protocol_shape() -> None:
    assert RulesClassifier.name == "rules"
    assert inspect.iscoroutinefunction(RulesClassifier.classify)


@pytest.mark.asyncio
async def test_async_classify_matches_sync() -> None:
    c = await CLF.classify("Long ETH. Entry 2300, TP 2500, SL 2200")
    assert c == CLF.classify_sync("Long ETH. Entry 2300, TP 2500, SL 2200")
    assert (c.is_signal, c.market, c.side, c.classifier) == (True, "ETH", "long", "rules")
    assert c.confidence > Decimal("0.80")


# --- robustness --------------------------------------------------------------------------------


@pytest.mark.parametrize(
    "text",
    [
        "$" * 100_000,
        "a" * 100_000,
        "1." * 50_000,
        "-" * 100_000,
        "a/" * 50_000,
        "?" * 100_000,
        "🚀" * 100_000,
        "\ufdfa" * 100_000,  # NFKC expands it 18-fold
        "not long BTC, short ETH? maybe 🚀 $FOO s&p 500 " * 2_500,
        "long BTC " * 11_000,
        "\ud800 \x00 \u200b \u0301" * 25_000,
    ],
)
def test_huge_and_hostile_input_gets_a_valid_reading(text: str) -> None:
    # its speed against the bare reading of the text: bench/classify_hostile.py
    c = classify(text)
    assert Decimal("0") <= c.confidence <= Decimal("1")


def test_huge_post_with_a_call_is_still_read() -> None:
    c = classify("gm " * 5_000 + "long BTC")
    assert (c.is_signal, c.market, c.side) == (True, "BTC", "long")


def test_non_string_input_does_not_raise() -> None:
    assert CLF.classify_sync(None).reason == "no market"  # type: ignore[arg-type]


_VOCAB = [
    "long",
    "short",
    "BTC",
    "$ETH",
    "$FOO",
    "sol",
    "OP",
    "op",
    "not",
    "no",
    "never",
    "maybe",
    "bullish",
    "bearish",
    "🚀",
    "📉",
    "?",
    "¿",
    ",",
    ".",
    "\n",
    "but",
    "entry",
    "tp",
    "sl",
    "5x",
    "s&p",
    "500",
    "eur/usd",
    "BTC/USDT",
    "ETH-PERP",
    "1000PEPE",
    "as",
    "term",
    "стоит",
    "ли",
    "не",
    "покупаю",
    "compro",
    "more",
    "stop",
    "all",
    "in",
    "going",
    "higher",
    "@",
    "2300",
]


def _check_invariants(c: Classification) -> None:
    assert Decimal("0") <= c.confidence <= Decimal("1")
    assert c.confidence.as_tuple().exponent == -2
    assert c.classifier == "rules"
    assert isinstance(c.reason, str) and c.reason
    if c.is_signal:
        assert c.market in DEFAULT_MARKETS
        assert c.market in c.markets_mentioned
        assert c.side in ("long", "short")
        assert c.confidence > 0
    else:
        assert c.market is None and c.side is None and c.confidence == 0


@settings(max_examples=300, deadline=None)
@given(st.text())
def test_arbitrary_text_never_raises(text: str) -> None:
    _check_invariants(classify(text))


@settings(max_examples=300, deadline=None)
@given(st.lists(st.sampled_from(_VOCAB), max_size=30).map(" ".join))
def test_crypto_word_salad_never_raises(text: str) -> None:
    _check_invariants(classify(text))


@settings(max_examples=50, deadline=None)
@given(st.text(max_size=200))
def test_async_path_on_arbitrary_text(text: str) -> None:
    c = asyncio.run(CLF.classify(text))
    assert c == classify(text)


@pytest.mark.parametrize(
    "text",
    [
        "closed my $ETH long, taking profit",
        "stopped out of my $SOL short",
        "TP hit on BTC long 🎯",
        "took profit on half, still long $ETH",
        "exit long ETH now",
        "cerré mi largo en BTC",
        "закрыл лонг по ETH",
        # measured on tests/data/posts_labeled.jsonl: "sold my X" ends a holding, it is
        # not a short call (it was one until the labelled set said otherwise)
        "sold my BTC",
        "sold my $ARB bags. done with L2s",
        "Covered my $INJ short at 23. Nice trade",
        "Got liquidated on my $WIF long lol. rekt",
    ],
)
def test_posts_about_closing_a_trade_are_not_new_calls(text: str) -> None:
    r = RulesClassifier().classify_sync(text)
    assert not r.is_signal
    assert r.reason.startswith("exit")


@pytest.mark.parametrize(
    ("text", "market", "side"),
    [
        ("Closing the week strong. Long $BTC", "BTC", "long"),
        ("Long $BTC, stop 94k", "BTC", "long"),
        ("Shorting $SOL, clean breakdown below 180, sl 184", "SOL", "short"),
    ],
)
def test_exit_words_elsewhere_do_not_hide_a_call(text: str, market: str, side: str) -> None:
    r = RulesClassifier().classify_sync(text)
    assert (r.is_signal, r.market, r.side) == (True, market, side)
