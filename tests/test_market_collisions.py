"""A name that is a different asset per venue: Hyperliquid's SPX is the SPX6900 token, Ostium's
the S&P 500. The post's words decide, then the agent's venue; a MULTI agent with no context
trades nothing and is told why."""

from __future__ import annotations

from datetime import UTC, datetime
from decimal import Decimal

import pytest
from sqlalchemy import select

from engine.classify.catalog import (
    MarketCatalog,
    recorded_hyperliquid_names,
    recorded_ostium_names,
)
from engine.classify.collisions import COLLISIONS, SAME_ASSET, resolve
from engine.classify.rules import RulesClassifier
from engine.ingest import IncomingPost
from engine.pipeline import Engine
from engine.prices import PriceBook, PriceTick
from engine.replay.runner import _seed
from engine.venues.paper import PaperVenue
from storage.models import OutboxMessage, Position, RoutingDecision
from tests.replay_helpers import agent, scenario

NOW = datetime(2026, 11, 20, 10, tzinfo=UTC)
AMBIGUOUS = "SPX is ambiguous: the S&P 500 index or the SPX6900 token"


def test_every_name_both_venues_list_is_known_as_the_same_asset_or_a_collision() -> None:
    shared = set(recorded_hyperliquid_names()) & set(recorded_ostium_names())
    assert shared <= SAME_ASSET | set(COLLISIONS)
    assert "SPX" in shared and COLLISIONS["SPX"].ambiguity() == AMBIGUOUS


@pytest.mark.parametrize(
    ("text", "meant"),
    [
        ("Short the S&P 500 here", "OSTIUM"),
        ("Longing SPX, stocks rip into CPI", "OSTIUM"),
        ("long spx, the index holds 5800", "OSTIUM"),
        ("Long $SPX6900, memecoin season", "HYPERLIQUID"),
        ("long $SPX, best meme token on the chain", "HYPERLIQUID"),
        ("Long $SPX here", None),
    ],
)
def test_the_posts_words_say_which_spx(text: str, meant: str | None) -> None:
    c = RulesClassifier().classify_sync(text)
    assert c.is_signal and c.market == "SPX"
    assert c.details.get("market_venue") == meant


@pytest.mark.parametrize(
    ("said", "venue", "venues", "ambiguous"),
    [
        (None, "HYPERLIQUID", {"HYPERLIQUID"}, None),  # the agent's venue's asset: SPX6900
        (None, "OSTIUM", {"OSTIUM"}, None),  # the S&P 500
        (None, "MULTI", set(), AMBIGUOUS),  # no guess
        ("OSTIUM", "HYPERLIQUID", {"OSTIUM"}, None),  # the index: never the token instead
        ("OSTIUM", "MULTI", {"OSTIUM"}, None),
        ("HYPERLIQUID", "MULTI", {"HYPERLIQUID"}, None),
    ],
)
def test_which_venues_may_trade_an_spx_call(
    said: str | None, venue: str, venues: set[str], ambiguous: str | None
) -> None:
    details = {"market_venue": said} if said else {}
    r = resolve("SPX", details, venue)
    assert (set(r.venues or ()), r.ambiguous) == (venues, ambiguous)
    assert resolve("BTC", {}, venue).venues is None  # any venue


async def _engine(sessions, venue: str) -> Engine:
    await _seed(
        sessions,
        scenario(
            agents=[agent(venue=venue)],
            users=[
                {
                    "name": "u",
                    "deployments": [{"agent": "Hawk", "collateral_usd": "100", "leverage": "2"}],
                }
            ],
        ),
    )
    prices = PriceBook()
    prices.update(PriceTick(NOW, "SPX", Decimal("5800")))
    catalog = MarketCatalog()  # the recorded listings: Hyperliquid's includes its SPX
    venues = {n: PaperVenue(n, catalog.listing(n), prices) for n in ("HYPERLIQUID", "OSTIUM")}
    return Engine(sessions, venues, prices, RulesClassifier(markets=catalog), clock=lambda: NOW)


async def test_a_multi_agent_does_not_guess_which_spx_and_says_why(sessions) -> None:
    engine = await _engine(sessions, "MULTI")
    out = await engine.ingest(IncomingPost("x", "@hawk", "1", "Long $SPX here", NOW))
    assert [(s.venue, s.reason) for s in out.signals] == [(None, "ambiguous_market")]
    async with sessions() as s:
        decision = (await s.execute(select(RoutingDecision))).scalar_one()
        assert decision.candidates == [{"market": "SPX", "why": AMBIGUOUS}]
        assert (await s.execute(select(Position))).first() is None
        told = (await s.execute(select(OutboxMessage))).scalar_one()
    assert told.payload["reason"] == "ambiguous_market"


async def test_a_multi_agent_trades_the_s_and_p_on_ostium_when_the_post_says_index(
    sessions,
) -> None:
    engine = await _engine(sessions, "MULTI")
    text = "Long the S&P 500 here, equities break out"
    out = await engine.ingest(IncomingPost("x", "@hawk", "1", text, NOW))
    assert [(s.market, s.venue) for s in out.signals] == [("SPX", "OSTIUM")]


async def test_a_hyperliquid_agent_never_buys_spx6900_for_a_call_on_the_index(sessions) -> None:
    engine = await _engine(sessions, "HYPERLIQUID")
    text = "Short the S&P 500 into CPI"
    out = await engine.ingest(IncomingPost("x", "@hawk", "1", text, NOW))
    assert [(s.venue, s.reason) for s in out.signals] == [(None, "not_listed")]
    async with sessions() as s:
        assert (await s.execute(select(Position))).first() is None


async def test_a_hyperliquid_agents_bare_spx_is_the_token(sessions) -> None:
    engine = await _engine(sessions, "HYPERLIQUID")
    out = await engine.ingest(IncomingPost("x", "@hawk", "1", "Long $SPX here", NOW))
    assert [(s.market, s.venue) for s in out.signals] == [("SPX", "HYPERLIQUID")]
