"""Composition root of the long-running process (`maxxit run`): database, venues, engine,
alert delivery. Chat transports and live feeds plug in here as they land."""

from __future__ import annotations

import asyncio
import contextlib
import logging
import signal
from datetime import timedelta

from bot.console import ConsoleTransport
from bot.settings import Settings
from engine.classify.rules import RulesClassifier
from engine.markets import MarketInfo, default_markets, markets_from_names
from engine.notify import Dispatcher
from engine.pipeline import Engine, EngineConfig
from engine.prices import PriceBook
from engine.venues.paper import FeeConfig, PaperVenue
from storage.db import create_engine, resolve_url, session_factory
from storage.migrate import upgrade

log = logging.getLogger(__name__)


def paper_markets(settings: Settings) -> dict[str, dict[str, MarketInfo]]:
    """The venues' default listings, or the names configured for each."""
    markets = default_markets()
    configured = {
        "HYPERLIQUID": settings.paper_markets_hyperliquid,
        "OSTIUM": settings.paper_markets_ostium,
    }
    for venue, names in configured.items():
        wanted = [n.strip() for n in names.split(",") if n.strip()]
        if wanted:
            markets[venue] = markets_from_names(wanted, markets[venue])
    return markets


def build_engine(settings: Settings, sessions, prices: PriceBook) -> Engine:  # type: ignore[no-untyped-def]
    fees = FeeConfig(settings.paper_taker_bps, settings.paper_slippage_bps)
    venues = {n: PaperVenue(n, m, prices, fees) for n, m in paper_markets(settings).items()}
    config = EngineConfig(
        settings.order_concurrency,
        timedelta(seconds=settings.approval_ttl_seconds),
        timedelta(seconds=settings.pending_open_ttl_seconds),
    )
    return Engine(sessions, venues, prices, RulesClassifier(), config)


async def run(settings: Settings, stop: asyncio.Event | None = None) -> None:
    stop = stop or asyncio.Event()
    url = resolve_url(settings.database_url, settings.data_dir)
    await upgrade(url)
    db = create_engine(url)
    sessions = session_factory(db)
    engine = build_engine(settings, sessions, PriceBook())
    await engine.start()
    dispatcher = Dispatcher(sessions, ConsoleTransport())
    loop = asyncio.get_running_loop()
    for sig in (signal.SIGINT, signal.SIGTERM):
        with contextlib.suppress(NotImplementedError, RuntimeError):
            loop.add_signal_handler(sig, stop.set)
    log.info(
        "maxxit running on %s; %d open positions monitored", url.split("@")[-1], len(engine.index)
    )
    last_checkpoint = loop.time()
    try:
        while not stop.is_set():
            if loop.time() - last_checkpoint >= settings.checkpoint_seconds:
                await engine.checkpoint()  # persists trailing stops, alerts moved ones
                await engine.resume_pending()  # orders a venue error or a crash left open
                last_checkpoint = loop.time()
            await dispatcher.deliver_pending()
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(stop.wait(), timeout=1.0)
    finally:
        await engine.checkpoint()  # trailing peaks survive the restart
        await db.dispose()
        log.info("maxxit stopped")
