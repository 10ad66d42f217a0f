"""Live Ostium prices for the monitor: Ostium's price API (the SDK's client) polled, each
changed mid yielded once. Ostium has no price websocket; its prices update about once a
second, so polling at that pace misses nothing the keeper would fill at."""

from __future__ import annotations

import asyncio
import logging
from collections.abc import AsyncIterator, Awaitable, Callable
from decimal import Decimal

from engine.prices import PriceTick
from storage.types import utcnow

log = logging.getLogger(__name__)

Quotes = Callable[[], Awaitable[dict[str, tuple[Decimal, Decimal, Decimal]]]]


class OstiumPriceFeed:
    def __init__(self, quotes: Quotes, poll_interval: float = 1.0) -> None:
        self.quotes = quotes  # OstiumVenue.quotes: (bid, mid, ask) per market
        self.poll_interval = poll_interval
        self._last: dict[str, Decimal] = {}

    async def ticks(self) -> AsyncIterator[PriceTick]:
        while True:
            try:
                quotes = await self.quotes()
            except Exception as exc:  # down for a moment: the next poll tries again
                log.warning("Ostium prices unavailable: %r", exc)
                quotes = {}
            now = utcnow()
            for market, (_bid, mid, _ask) in sorted(quotes.items()):
                if self._last.get(market) != mid:
                    self._last[market] = mid
                    yield PriceTick(now, market, mid)
            await asyncio.sleep(self.poll_interval)
