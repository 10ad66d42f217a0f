"""Live Hyperliquid prices: the websocket `allMids` channel, reconnecting with backoff, and
REST `allMids` polling while the socket is down, so the monitor never goes blind.

Only changed mids are yielded (allMids repeats every market on every message).
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import logging
import random
from collections.abc import AsyncIterator, Awaitable, Callable
from decimal import Decimal
from typing import Any

import websockets

from engine.prices import PriceTick
from storage.types import utcnow

log = logging.getLogger(__name__)


def ws_url(base_url: str) -> str:
    return base_url.replace("https://", "wss://").replace("http://", "ws://").rstrip("/") + "/ws"


class HyperliquidPriceFeed:
    def __init__(
        self,
        base_url: str,
        poll: Callable[[], Awaitable[dict[str, str]]],
        markets: Callable[[], set[str]] | None = None,
        poll_interval: float = 2.0,
        max_backoff: float = 30.0,
    ) -> None:
        self.url = ws_url(base_url)
        self.poll = poll  # REST allMids (through the venue's weight limiter)
        self.markets = markets
        self.poll_interval = poll_interval
        self.max_backoff = max_backoff
        self.connected = asyncio.Event()
        self.mode = "starting"  # "websocket" or "polling": for health and tests
        self._last: dict[str, Decimal] = {}
        self._queue: asyncio.Queue[PriceTick] = asyncio.Queue(maxsize=100_000)

    def _changed(self, mids: dict[str, Any]) -> None:
        now = utcnow()
        wanted = self.markets() if self.markets else None
        for market, text in mids.items():
            if wanted is not None and market not in wanted:
                continue
            try:
                price = Decimal(str(text))
            except ArithmeticError:
                continue
            if price > 0 and self._last.get(market) != price:
                self._last[market] = price
                self._queue.put_nowait(PriceTick(now, market, price))

    async def _socket(self) -> None:
        async with websockets.connect(self.url, open_timeout=10, ping_interval=20) as ws:
            await ws.send(json.dumps({"method": "subscribe", "subscription": {"type": "allMids"}}))
            self.mode = "websocket"
            self.connected.set()
            async for raw in ws:
                msg = json.loads(raw)
                if msg.get("channel") == "allMids":
                    self._changed(msg["data"]["mids"])

    async def _poll_until_connected(self) -> None:
        while not self.connected.is_set():
            try:
                self._changed(await self.poll())
            except Exception as exc:  # the venue is down too: keep trying, quietly
                log.warning("allMids polling failed: %r", exc)
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(self.connected.wait(), self.poll_interval)

    async def run(self) -> None:
        """Keep prices flowing forever: the socket when it is up, polling whenever not
        (including while a reconnect is being attempted)."""
        backoff = 0.5
        poller: asyncio.Task[None] | None = None
        try:
            while True:
                if poller is None or poller.done():
                    poller = asyncio.create_task(self._poll_until_connected())
                try:
                    await self._socket()
                    backoff = 0.5  # a clean close: reconnect soon
                except asyncio.CancelledError:
                    raise
                except Exception as exc:
                    log.warning("allMids websocket down (%r); polling until it is back", exc)
                self.connected.clear()
                self.mode = "polling"
                if poller.done():
                    poller = asyncio.create_task(self._poll_until_connected())
                await asyncio.sleep(backoff * (1 + random.random() / 4))
                backoff = min(self.max_backoff, backoff * 2)
        finally:
            if poller is not None:
                poller.cancel()
                with contextlib.suppress(asyncio.CancelledError):
                    await poller

    async def ticks(self) -> AsyncIterator[PriceTick]:
        runner = asyncio.create_task(self.run())
        try:
            while True:
                yield await self._queue.get()
        finally:
            runner.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await runner
