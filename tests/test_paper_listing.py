"""Paper trades what the classifier may name: both read the venues' listings through one
catalog (the recorded Hyperliquid `meta` offline, with its size decimals and max leverage), so
a call on a mid-cap the old 32-coin snapshot lacked opens on paper instead of being refused."""

from __future__ import annotations

from datetime import UTC, datetime
from decimal import Decimal

from sqlalchemy import select

from bot.service import build_engine
from bot.settings import Settings
from engine.classify.catalog import MarketCatalog, NamesSource
from engine.ingest import IncomingPost
from engine.markets import MarketInfo
from engine.prices import PriceBook, PriceTick
from engine.replay.runner import _seed
from storage.models import Order, Position
from tests.replay_helpers import agent, scenario

D = Decimal
NOW = datetime(2026, 11, 20, 10, tzinfo=UTC)


async def test_a_call_on_a_mid_cap_only_the_recorded_meta_lists_opens_on_paper(sessions) -> None:
    await _seed(
        sessions,
        scenario(
            agents=[agent(leverage="20")],
            users=[
                {
                    "name": "u",
                    "deployments": [{"agent": "Hawk", "collateral_usd": "100", "leverage": "20"}],
                }
            ],
        ),
    )
    prices = PriceBook()
    prices.update(PriceTick(NOW, "ENA", D("0.4321")))
    engine = build_engine(Settings(_env_file=None, price_feed="none"), sessions, prices)
    engine.clock = lambda: NOW

    out = await engine.ingest(IncomingPost("x", "@hawk", "1", "Long $ENA here", NOW))

    assert [(s.market, s.venue, s.reason) for s in out.signals] == [
        ("ENA", "HYPERLIQUID", "listed")
    ]
    async with sessions() as s:
        position = (await s.execute(select(Position))).scalar_one()
        order = (await s.execute(select(Order))).scalar_one()
    assert position.market == "ENA" and position.status == "open"
    # the recorded meta's rules: ENA trades whole units, at most 10x
    assert order.size == order.size.to_integral_value()
    assert position.leverage == 10


def test_the_paper_listing_follows_the_live_venue_once_it_answers() -> None:
    catalog = MarketCatalog()
    listing = catalog.listing("HYPERLIQUID")
    assert listing["BTC"].size_decimals == 5 and "NEWCOIN" not in listing
    live = NamesSource({"BTC": MarketInfo("BTC", 5, D(40)), "NEWCOIN": MarketInfo("NEWCOIN", 1)})
    catalog.plug("HYPERLIQUID", live)
    assert "NEWCOIN" in listing and listing["NEWCOIN"].size_decimals == 1
    assert "NEWCOIN" in catalog.names()


def test_paper_the_rules_and_the_llm_read_one_listing(sessions) -> None:
    settings = Settings(_env_file=None, price_feed="none", openai_base_url="http://127.0.0.1:9/v1")
    engine = build_engine(settings, sessions, PriceBook())
    llm = engine.classifier
    assert llm.name == "llm" and llm.catalog is llm.fallback.catalog
    newcoin = {"BTC": MarketInfo("BTC", 5, D(40)), "NEWCOIN": MarketInfo("NEWCOIN", 1, D(5))}
    llm.catalog.plug("HYPERLIQUID", NamesSource(newcoin))  # the live venue's listing
    assert engine.venues["HYPERLIQUID"].markets()["NEWCOIN"].max_leverage == 5
    llm._follow_catalog()
    assert "NEWCOIN" in llm.system
