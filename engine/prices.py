"""Prices: the latest price per market, and the feeds that move it."""

from __future__ import annotations

from collections.abc import AsyncIterator
from dataclasses import dataclass
from datetime import datetime
from decimal import Decimal
from typing import Protocol


@dataclass(frozen=True, slots=True)
class PriceTick:
    ts: datetime
    market: str
    price: Decimal


class PriceBook:
    """Latest known price of each market; venues fill and the monitor marks from it."""

    def __init__(self) -> None:
        self._last: dict[str, PriceTick] = {}

    def update(self, tick: PriceTick) -> None:
        self._last[tick.market] = tick

    def price(self, market: str) -> Decimal | None:
        tick = self._last.get(market)
        return tick.price if tick else None

    def tick(self, market: str) -> PriceTick | None:
        return self._last.get(market)

    def markets(self) -> list[str]:
        return list(self._last)


class PriceFeed(Protocol):
    """A source of price updates (a replay file now; live venue feeds later)."""

    def ticks(self) -> AsyncIterator[PriceTick]: ...


class ReplayPriceFeed:
    """The recorded price path of a replay, in time order (file order at equal times)."""

    def __init__(self, ticks: list[PriceTick]) -> None:
        self._ticks = sorted(ticks, key=lambda t: t.ts)  # stable: equal times keep file order

    async def ticks(self) -> AsyncIterator[PriceTick]:
        for tick in self._ticks:
            yield tick
