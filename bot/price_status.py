"""Saying clearly when no prices reach this process: without them every signal is skipped
(no_price) and no stop can fire. Said once at start (PRICE_FEED=none), and once when the
feed has delivered nothing for a while, and again when prices come back."""

from __future__ import annotations

import logging

from bot.settings import Settings
from engine.prices import PriceBook

log = logging.getLogger("maxxit.prices")

GRACE_SECONDS = 20.0  # a websocket and a first allMids take a few seconds


class PriceWatch:
    def __init__(self, settings: Settings, prices: PriceBook, now: float) -> None:
        self.prices = prices
        self.started = now
        self.feed = settings.price_feed
        self.warned = False
        if self.feed == "none":
            log.warning(
                "PRICE_FEED=none: no price feed, so signals are skipped (no price) and stops "
                "cannot fire; set PRICE_FEED=hyperliquid for Hyperliquid's public prices"
            )
            self.warned = True
        else:
            log.info("prices: Hyperliquid allMids (public, no key needed)")

    def check(self, now: float) -> None:
        if self.feed == "none":
            return
        have = bool(self.prices.markets())
        if not have and not self.warned and now - self.started >= GRACE_SECONDS:
            self.warned = True
            log.warning(
                "no price has reached us from Hyperliquid in %ds: is it reachable from here? "
                "Until prices arrive, signals are skipped and stops cannot fire",
                int(now - self.started),
            )
        elif have and self.warned:
            self.warned = False
            log.warning("prices are arriving again")
