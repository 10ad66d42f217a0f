"""One replica for tests/test_replica_processes.py: the start-up sequence of `maxxit run` on a
PostgreSQL DATABASE_URL (shard leases, the coordination and sweep loops, engine.start) with
live Hyperliquid trading against the stand-in through the unmodified SDK. Posts and price
ticks come, in order, from the test's event feed, the same for every replica.

Agent keys come from a file (the vault's job in production: not what this test is about).
Run as `python -m tests.replicas.node` with DATABASE_URL, REPLICA_ID, HL_URL, EVENTS_URL,
KEYS_FILE set."""

from __future__ import annotations

import asyncio
import json
import logging
import os
import signal
import sys
import time
from datetime import datetime
from decimal import Decimal
from pathlib import Path

import httpx
from eth_account import Account
from eth_account.signers.local import LocalAccount

from bot import replicas
from bot.service import build_engine
from bot.settings import Settings
from engine.ingest import IncomingPost
from engine.prices import PriceBook, PriceTick
from engine.venues.hyperliquid import HyperliquidConfig, HyperliquidVenue
from engine.venues.hyperliquid_limits import WeightLimiter
from engine.venues.routed import AccountRoutedVenue
from storage.db import create_engine, resolve_url, session_factory


async def follow(engine, events_url: str, stop: asyncio.Event) -> None:  # type: ignore[no-untyped-def]
    seen = 0
    async with httpx.AsyncClient(timeout=10) as client:
        while not stop.is_set():
            batch = (await client.get(events_url, params={"after": seen})).json()
            for e in batch:
                try:
                    await apply(engine, e)
                except Exception:  # the test fails on this line in our stderr
                    logging.exception("ENGINE EXCEPTION on event %s", e["seq"])
                seen = e["seq"]
                print(f"event {seen}", flush=True)
            if not batch:
                await asyncio.sleep(0.05)


async def apply(engine, e: dict) -> None:  # type: ignore[no-untyped-def]
    if e["kind"] == "post":
        await engine.ingest(
                        IncomingPost(
                            "x", e["source"], e["id"], e["text"],
                            datetime.fromisoformat(e["at"]),
                        )
                    )  # fmt: skip
    else:
        tick = PriceTick(datetime.fromisoformat(e["at"]), e["market"], Decimal(e["px"]))
        await engine.on_price(tick)


class SendLog:
    """Prints every order this replica sends, for the test's post-mortem."""

    def __init__(self, inner: AccountRoutedVenue) -> None:
        self.inner, self.name = inner, inner.name

    async def place_order(self, order):  # type: ignore[no-untyped-def]
        print(f"send {order.client_order_id} {time.time():.3f}", flush=True)
        return await self.inner.place_order(order)

    def __getattr__(self, name: str):  # type: ignore[no-untyped-def]
        return getattr(self.inner, name)


async def main(keys: dict[str, LocalAccount]) -> None:
    logging.basicConfig(level=logging.WARNING, stream=sys.stderr)
    settings = Settings()
    url = resolve_url(settings.database_url, settings.data_dir)
    db = create_engine(url)
    sessions = session_factory(db)
    prices = PriceBook()
    leases = replicas.shard_leases(settings, url, sessions)
    assert leases is not None, "replicas run on PostgreSQL"
    engine = build_engine(settings, sessions, prices, leases)

    async def signer_for(account: str):  # type: ignore[no-untyped-def]
        return keys.get(account.lower())

    live = HyperliquidVenue(
        HyperliquidConfig(base_url=os.environ["HL_URL"], timeout=10),
        signer_for,
        WeightLimiter(budget=100_000),  # the stand-in's per-IP budget is raised to match
        prices,
    )
    await live.refresh_markets()
    engine.venues["HYPERLIQUID"] = SendLog(AccountRoutedVenue(engine.venues["HYPERLIQUID"], live))
    stop = asyncio.Event()
    asyncio.get_running_loop().add_signal_handler(signal.SIGTERM, stop.set)
    await leases.round()
    loops = [
        asyncio.create_task(replicas.coordinate(leases, engine, stop)),
        asyncio.create_task(replicas.sweep(engine, stop, settings.sweep_seconds)),
    ]
    await engine.start()
    print("ready", flush=True)
    feed = asyncio.create_task(follow(engine, os.environ["EVENTS_URL"], stop))
    await stop.wait()
    feed.cancel()
    for task in loops:
        await task
    await leases.resign()
    await db.dispose()
    print("stopped", flush=True)


if __name__ == "__main__":
    stored = json.loads(Path(os.environ["KEYS_FILE"]).read_text())
    asyncio.run(main({a.lower(): Account.from_key(k) for a, k in stored.items()}))
