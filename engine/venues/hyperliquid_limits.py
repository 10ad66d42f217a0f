"""One shared limiter for Hyperliquid's per-IP budget: 1200 weight per rolling minute, with
the weights Hyperliquid documents per request type. A burst of signals waits its turn here
instead of collecting 429s; a 429 that happens anyway pauses every request for a while."""

from __future__ import annotations

import asyncio
import collections
import time
from collections.abc import Callable

BUDGET = 1200
WINDOW = 60.0
LIGHT_INFO = {"l2Book", "allMids", "clearinghouseState", "orderStatus",
              "spotClearinghouseState", "exchangeStatus"}  # fmt: skip
HEAVY_INFO = {"userRole": 60}


def info_weight(kind: str) -> int:
    if kind in LIGHT_INFO:
        return 2
    return HEAVY_INFO.get(kind, 20)


def exchange_weight(batch_length: int = 1) -> int:
    return 1 + batch_length // 40


class WeightLimiter:
    def __init__(
        self,
        budget: int = BUDGET,
        window: float = WINDOW,
        clock: Callable[[], float] = time.monotonic,
        reserve: int = 60,
    ) -> None:
        self.budget = budget
        # weight only urgent requests (closes, cancels of protective orders) may spend: a
        # fan-out of opens that saturates the budget still leaves a close room at once
        self.reserve = min(reserve, budget // 2)
        self._urgent_waiting = 0
        self.window = window
        self.clock = clock
        # [when, weight]: `when` is first the send time, then moved to the answer's time, so
        # a request counts for a full window after Hyperliquid could have seen it
        self._spent: collections.deque[list[float]] = collections.deque()
        self._used = 0
        self._lock = asyncio.Lock()
        self._paused_until = 0.0

    def used(self) -> int:
        self._expire(self.clock())
        return self._used

    def _expire(self, now: float) -> None:
        while self._spent and self._spent[0][0] <= now - self.window:
            self._used -= int(self._spent.popleft()[1])

    async def acquire(self, weight: int, urgent: bool = False) -> list[float]:
        """Wait until `weight` fits in the rolling budget, then spend it. Urgent requests go
        first: they skip the queue, may spend the reserve, and hold ordinary ones back while
        they wait. Ordinary ones are FIFO: the lock keeps a steady stream of light requests
        from starving a heavy one."""
        weight = min(weight, self.budget)
        if urgent:
            self._urgent_waiting += 1
            try:
                return await self._wait_for(weight, self.budget, urgent=True)
            finally:
                self._urgent_waiting -= 1
        async with self._lock:
            return await self._wait_for(weight, self.budget - self.reserve, urgent=False)

    async def _wait_for(self, weight: int, ceiling: int, urgent: bool) -> list[float]:
        weight = min(weight, ceiling)
        while True:
            now = self.clock()
            if now < self._paused_until:
                await asyncio.sleep(self._paused_until - now)
                continue
            self._expire(now)
            if not urgent and self._urgent_waiting:
                await asyncio.sleep(0.005)  # a close is waiting for budget: it goes first
                continue
            if self._used + weight <= ceiling:
                entry = [now, float(weight)]
                self._spent.append(entry)
                self._used += weight
                return entry
            oldest = self._spent[0][0] if self._spent else now
            await asyncio.sleep(max(0.01, oldest + self.window - now))

    def settle(self, entry: list[float]) -> None:
        """The answer came back: the request's window runs from now."""
        entry[0] = max(entry[0], self.clock())

    def backoff(self, seconds: float) -> None:
        """Hyperliquid answered 429 anyway (another process on this IP): everyone waits."""
        self._paused_until = max(self._paused_until, self.clock() + seconds)
