"""The classifier's markets come from the venues: Hyperliquid's `meta` universe (recorded offline,
the live venue's own listing once it has read it), Ostium's pairs, and the names people use."""

from __future__ import annotations

import pytest

from engine.classify.catalog import (
    MarketCatalog,
    NamesSource,
    recorded_hyperliquid_meta,
    recorded_hyperliquid_names,
)
from engine.classify.rules import RulesClassifier
from tests.hl_helpers import venue_for
from tests.peers.hyperliquid_api import HyperliquidPeer

OLD_SNAPSHOT = {"BTC", "ETH", "SOL", "HYPE", "WIF", "TIA", "SEI", "kPEPE", "LINK", "DOGE"}


def test_the_recorded_meta_is_the_venues_universe_without_delisted_perps() -> None:
    universe = recorded_hyperliquid_meta()["universe"]
    names = set(recorded_hyperliquid_names())
    assert len(universe) >= 200 and len(names) >= 180
    assert {"AAVE", "ENA", "KAITO", "FARTCOIN", "kBONK", "ZEC", "ASTER"} <= names
    assert {"MATIC", "RNDR", "FTM"}.isdisjoint(names)  # delisted: not tradable any more
    assert names >= OLD_SNAPSHOT


@pytest.mark.parametrize(
    ("post", "market", "side"),
    [
        ("Opening a $KAITO long, 3x", "KAITO", "long"),
        ("short $ZEC from 410", "ZEC", "short"),
        ("long AAVE here", "AAVE", "long"),
        ("aave long, defi summer", "AAVE", "long"),
        ("Long $1000BONK", "kBONK", "long"),
        ("longing $BONK", "kBONK", "long"),
        ("Long 1000PEPE", "kPEPE", "long"),
        ("long $RNDR", "RENDER", "long"),  # renamed on the venue
        ("Long crude oil into the OPEC meeting", "CL", "long"),
        ("short WTI here", "CL", "short"),
        ("Long silver", "XAG", "long"),
        ("Short the S&P 500", "SPX", "short"),
        ("long ether", "ETH", "long"),
        ("Long $MOVE", "MOVE", "long"),
    ],
)
def test_markets_the_venues_list_and_the_names_people_use(post: str, market: str, side: str):
    c = RulesClassifier().classify_sync(post)
    assert (c.is_signal, c.market, c.side) == (True, market, side), c.reason


@pytest.mark.parametrize(
    "post",
    ["Not gonna pump this, long $BTC", "long BTC, move fast", "me? long BTC. PUMP IT"],
)
def test_tickers_that_are_common_words_need_a_cashtag(post: str) -> None:
    c = RulesClassifier().classify_sync(post)
    assert (c.market, c.side) == ("BTC", "long"), c.reason


async def test_names_from_an_async_reader_are_cached_and_kept_when_it_fails() -> None:
    calls: list[int] = []
    pairs = [["EURUSD", "XAU", "NVDA"]]

    async def read_pairs() -> list[str]:
        calls.append(1)
        if pairs[0] is None:
            raise ConnectionError("subgraph down")
        return pairs[0]

    now = [0.0]
    catalog = MarketCatalog(ttl_seconds=60, clock=lambda: now[0])
    catalog.plug("OSTIUM", NamesSource([], read_pairs))  # nothing read yet: the defaults
    assert "NDX" in catalog.names()
    clf = RulesClassifier(markets=catalog)
    assert clf.classify_sync("long $NVDA").reason == "unknown ticker NVDA"
    assert await catalog.refresh() is True
    assert clf.classify_sync("long $NVDA").market == "NVDA"
    assert "NDX" not in catalog.names()  # the live pairs replace the default list
    assert await catalog.refresh() is False and len(calls) == 1  # cached within the TTL
    pairs[0] = None  # type: ignore[assignment]
    now[0] = 61.0
    assert await catalog.refresh() is False and len(calls) == 2
    assert clf.classify_sync("long $NVDA").market == "NVDA"  # the last listing stays


async def test_the_live_hyperliquid_venue_plugs_its_meta_universe_in() -> None:
    meta = {
        "universe": [
            {"name": "BTC", "szDecimals": 5, "maxLeverage": 40},
            {"name": "ETH", "szDecimals": 4, "maxLeverage": 25},
            {"name": "NEWCOIN", "szDecimals": 0, "maxLeverage": 3},
            {"name": "OLDCOIN", "szDecimals": 0, "maxLeverage": 3, "isDelisted": True},
        ]
    }
    async with HyperliquidPeer(mids={"ETH": "2000", "BTC": "90000"}, meta=meta) as peer:
        catalog = MarketCatalog()
        clf = RulesClassifier(markets=catalog)
        assert clf.classify_sync("Long $NEWCOIN here").reason == "unknown ticker NEWCOIN"
        assert clf.classify_sync("Long $KAITO here").market == "KAITO"  # recorded meta
        catalog.plug("HYPERLIQUID", venue_for(peer, []))
        assert await catalog.refresh(force=True) is True  # the venue read /info meta
        assert clf.classify_sync("Long $NEWCOIN here").market == "NEWCOIN"
        assert clf.classify_sync("Long $OLDCOIN here").reason == "unknown ticker OLDCOIN"
        assert clf.classify_sync("Long $KAITO here").reason == "unknown ticker KAITO"
        assert clf.classify_sync("Long gold").market == "XAU"  # Ostium's pairs still count
        peer.fail_next("info", status=500, times=5)
        assert await catalog.refresh(force=True) is False
        assert clf.classify_sync("Long $NEWCOIN here").market == "NEWCOIN"
