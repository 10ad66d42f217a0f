"""A fresh install paper-trades at real prices: PRICE_FEED defaults to Hyperliquid's public
prices (no key), read here from the Hyperliquid stand-in; when none arrive, or the feed is
off, the operator is told in one clear log line, and users in /positions."""

from __future__ import annotations

import asyncio
import logging
from datetime import UTC, datetime
from decimal import Decimal

from bot.price_status import GRACE_SECONDS, PriceWatch
from bot.service import build_engine, start_price_feed
from bot.settings import Settings
from engine.prices import PriceBook, PriceTick
from tests.chat_helpers import make_world, text_of
from tests.test_chat_features import deploy, make_agent


async def test_the_default_feed_brings_hyperliquids_public_prices_without_a_key(
    sessions, peer
) -> None:
    settings = Settings(_env_file=None, hyperliquid_api_url=peer.base_url)
    assert settings.price_feed == "hyperliquid" and settings.maxxit_master_key is None
    prices = PriceBook()
    engine = build_engine(settings, sessions, prices)
    await engine.start()
    pump = start_price_feed(settings, engine, None)
    assert pump is not None
    try:
        for _ in range(100):
            if prices.price("ETH") is not None:
                break
            await asyncio.sleep(0.05)
        assert prices.price("ETH") == 2000
        peer.set_mid("ETH", "2100")
        for _ in range(100):
            if prices.price("ETH") == 2100:
                break
            await asyncio.sleep(0.05)
        assert prices.price("ETH") == 2100
    finally:
        pump.cancel()


def test_no_prices_is_said_once_and_their_return_too(caplog) -> None:
    caplog.set_level(logging.INFO, "maxxit.prices")
    prices = PriceBook()
    off = PriceWatch(Settings(_env_file=None, price_feed="none"), prices, 0.0)
    assert "PRICE_FEED=none: no price feed, so signals are skipped" in caplog.text
    off.check(1000.0)
    caplog.clear()
    watch = PriceWatch(Settings(_env_file=None), prices, 0.0)
    watch.check(GRACE_SECONDS - 1)
    assert "no price has reached us" not in caplog.text
    watch.check(GRACE_SECONDS + 1)
    watch.check(GRACE_SECONDS + 2)
    assert caplog.text.count("no price has reached us from Hyperliquid") == 1
    prices.update(PriceTick(datetime.now(UTC), "ETH", Decimal(2000)))
    watch.check(GRACE_SECONDS + 3)
    assert "prices are arriving again" in caplog.text


async def test_positions_say_when_no_prices_reach_the_server(sessions) -> None:
    world = await make_world(sessions)
    ann = world.person("Ann", 1)
    await make_agent(ann, "Hawk")
    await deploy(ann, "Hawk")
    await world.post("@CryptoHawk", "Long $ETH", "p1")
    assert "No prices are reaching" not in text_of(await ann.say("/positions"))
    world.engine.prices._last.clear()  # the feed went quiet: nothing known any more
    text = text_of(await ann.say("/positions"))
    assert "No prices are reaching this server" in text
