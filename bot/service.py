"""Composition root of the long-running process (`maxxit run`): database, venues, engine,
chat (Telegram when a token is set), web server, alert delivery."""

from __future__ import annotations

import asyncio
import contextlib
import logging
import signal
from collections.abc import Mapping
from datetime import timedelta
from typing import Any

from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from bot import abuse, email_confirm, live_trading, replicas, startup, stripe_webhook, web_wallet
from bot.channels_setup import build_channels, build_subscriptions
from bot.classifiers import build_classifier
from bot.console import ConsoleTransport
from bot.discord_delivery import FirstReachable
from bot.discord_runtime import start_discord
from bot.ingestion import schedule_ingestion
from bot.price_status import PriceWatch
from bot.settings import Settings
from bot.stalled_fanouts import StalledFanOuts
from bot.telegram import TelegramBot, TelegramTransport
from bot.telegram_limits import ChatRateLimiter
from bot.telegram_monitor import TelegramMonitor
from bot.web import make_app, server
from engine.analytics.rebuild_job import schedule_rebuild
from engine.channels.dispatch import ChannelFanout
from engine.classify.catalog import MarketCatalog
from engine.classify.rules import RulesClassifier
from engine.coordination.ownership import Ownership
from engine.coordination.send_budget import SharedSendBudget
from engine.markets import MarketInfo, default_markets, markets_from_names
from engine.net.safe_http import SafeFetcher
from engine.notify import Dispatcher, Transport
from engine.pipeline import Engine, EngineConfig
from engine.prices import PriceBook
from engine.protection import MoveSettings
from engine.protection_hooks import Protection
from engine.venues.hyperliquid import HyperliquidConfig, HyperliquidVenue
from engine.venues.hyperliquid_feed import HyperliquidPriceFeed
from engine.venues.hyperliquid_protection import HyperliquidProtection
from engine.venues.hyperliquid_rules import MAINNET_URL
from engine.venues.paper import FeeConfig, PaperVenue
from engine.venues.routed import AccountRoutedVenue
from handlers.base import Services
from handlers.router import Bot
from storage.db import create_engine, resolve_url, session_factory
from storage.migrate import upgrade
from storage.statistics import refresh_statistics
from wallets.vault import Vault

log = logging.getLogger(__name__)
# how often planner statistics are refreshed as the book grows (storage/statistics.py)
STATISTICS_SECONDS = 600.0


def paper_markets(
    settings: Settings, catalog: MarketCatalog | None = None
) -> dict[str, Mapping[str, MarketInfo]]:
    """What paper trades on each venue: the names configured for it, else the catalog's live
    view of the venue's listing (the classifier's own list: recorded meta offline, the live
    venue's once read), else the defaults."""
    defaults = default_markets()
    configured = {
        "HYPERLIQUID": settings.paper_markets_hyperliquid,
        "OSTIUM": settings.paper_markets_ostium,
    }
    markets: dict[str, Mapping[str, MarketInfo]] = {}
    for venue, names in configured.items():
        listed = catalog.listing(venue) if catalog is not None else defaults[venue]
        wanted = [n.strip() for n in names.split(",") if n.strip()]
        markets[venue] = markets_from_names(wanted, listed) if wanted else listed
    return markets


def build_engine(
    settings: Settings,
    sessions: async_sessionmaker[AsyncSession],
    prices: PriceBook,
    ownership: Ownership | None = None,
) -> Engine:
    fees = FeeConfig(settings.paper_taker_bps, settings.paper_slippage_bps)
    # the venues' listings (recorded defaults until a live venue plugs in its own), read by
    # the classifier and traded by paper alike
    catalog = MarketCatalog()
    markets = paper_markets(settings, catalog)
    venues = {n: PaperVenue(n, m, prices, fees) for n, m in markets.items()}
    config = EngineConfig(
        settings.order_concurrency,
        timedelta(seconds=settings.approval_ttl_seconds),
        timedelta(seconds=settings.pending_open_ttl_seconds),
        timedelta(seconds=settings.order_lease_seconds),
    )
    classifier = build_classifier(settings, RulesClassifier(markets=catalog))
    return Engine(sessions, venues, prices, classifier, config, ownership=ownership)


async def attach_hyperliquid(
    settings: Settings,
    sessions: async_sessionmaker[AsyncSession],
    engine: Engine,
    prices: PriceBook,
    vault: Vault | None,
) -> HyperliquidVenue | None:
    """Live Hyperliquid next to paper under the same venue name (live accounts trade for
    real, paper accounts stay simulated), when the vault can open agent keys."""
    if vault is None:
        return None
    venue = live_trading.build_hyperliquid(settings, sessions, prices, vault)
    try:
        await venue.refresh_markets()
    except Exception as exc:  # unreachable now: the scheduled refresh tries again
        log.warning("Hyperliquid markets unavailable at start: %r", exc)
    engine.venues["HYPERLIQUID"] = AccountRoutedVenue(engine.venues["HYPERLIQUID"], venue)
    catalog = getattr(engine.classifier, "catalog", None)
    if isinstance(catalog, MarketCatalog):
        catalog.plug("HYPERLIQUID", venue)  # its live meta universe, as it refreshes
    # live positions' stop loss and take profit rest on Hyperliquid too (issue 19, item 6)
    engine.protection = Protection(
        sessions,
        HyperliquidProtection(venue),
        MoveSettings(
            timedelta(seconds=settings.protection_move_seconds), settings.protection_min_step_pct
        ),
        engine.clock,
    )
    return venue


def start_price_feed(
    settings: Settings, engine: Engine, venue: HyperliquidVenue | None
) -> asyncio.Task[None] | None:
    """PRICE_FEED=hyperliquid (the default): every allMids update reaches the monitor (paper
    included). Without live trading the prices are Hyperliquid mainnet's public ones (no key
    needed): paper trades at real prices, not at the testnet's."""
    if settings.price_feed != "hyperliquid":
        return None
    if venue is None:  # prices only: a venue that can read but never sign
        url = settings.hyperliquid_api_url or MAINNET_URL
        reader = HyperliquidVenue(HyperliquidConfig(base_url=url), _no_signer)
        feed = HyperliquidPriceFeed(url, lambda: reader.info("allMids", {}))
    else:
        feed = live_trading.price_feed(settings, venue)

    async def pump() -> None:
        async for tick in feed.ticks():
            try:
                await engine.on_price(tick)
            except Exception:
                log.exception("price tick %s failed", tick)

    return asyncio.create_task(pump())


async def _no_signer(account: str) -> None:
    return None


async def housekeeping(engine: Engine, dispatcher: Dispatcher) -> None:
    """What runs every second: expired approvals are skipped and limit entries cancelled (and
    the users told), then due alerts are delivered (by one replica at a time: the chat send
    budget is global)."""
    if engine.ownership.runs("approvals"):
        await engine.expire_approvals()
        await engine.settle_limit_entries()  # limit entries past expiry or their call's stop
    if engine.ownership.runs("outbox"):
        await dispatcher.deliver_pending()


async def run(settings: Settings, stop: asyncio.Event | None = None) -> None:
    # here, not at the top: what only builds an engine (replicas in tests, tools) skips the
    # Ostium SDK's import (gql, aiohttp)
    from bot import ostium_trading

    stop = stop or asyncio.Event()
    startup.check_port(settings.host, settings.port)  # one clear line, before anything starts
    url = resolve_url(settings.database_url, settings.data_dir)
    await upgrade(url)
    db = create_engine(url)
    await refresh_statistics(db)  # the planner's view of the data (storage/statistics.py)
    sessions = session_factory(db)
    prices = PriceBook()
    leases = replicas.shard_leases(settings, url, sessions)
    engine = build_engine(settings, sessions, prices, leases)
    vault = live_trading.vault_or_none(settings)
    hyperliquid = await attach_hyperliquid(settings, sessions, engine, prices, vault)
    ostium = await ostium_trading.attach_ostium(settings, sessions, engine, prices, vault)
    catalog = getattr(engine.classifier, "catalog", None)
    if ostium is not None and isinstance(catalog, MarketCatalog):
        catalog.plug("OSTIUM", ostium)  # its live pairs from the subgraph, as they refresh
    background: list[asyncio.Task[None]] = []
    if leases is not None:
        await leases.round()  # our share of the markets and jobs before anything runs
        background.append(asyncio.create_task(replicas.coordinate(leases, engine, stop)))
        background.append(asyncio.create_task(replicas.sweep(engine, stop, settings.sweep_seconds)))
    await engine.start()
    pump = start_price_feed(settings, engine, hyperliquid)
    ostium_pump = ostium_trading.start_price_feed(settings, engine, ostium)
    scheduler = live_trading.schedule(settings, engine, hyperliquid)
    ostium_trading.schedule(settings, scheduler, engine, ostium)
    pollers = schedule_ingestion(scheduler, settings, sessions, engine)
    abuse.schedule_purge(scheduler, settings, sessions, engine)
    schedule_rebuild(scheduler, sessions, engine.ownership, engine.clock)
    scheduler.start()
    limit_storage = abuse.limit_storage(settings)
    services = Services(
        sessions,
        engine,
        public_url=settings.public_base(),
        siwe_chain_ids=settings.chain_ids(),
        vault=vault,  # live trading also needs its venue (handlers check both); webhooks
        hyperliquid_url=live_trading.hyperliquid_url(settings) if hyperliquid else None,
        safes=live_trading.safe_gateway(settings),
        ostium=ostium_trading.delegation_reader(settings) if ostium else None,
        limits=abuse.chat_limits(settings, limit_storage),
    )
    # paid agents (Stripe) and alert channels besides chat (email, webhooks): issue 14
    services.safe_http = SafeFetcher()
    services.subscriptions = build_subscriptions(settings, sessions)
    handlers = Bot(services)

    telegram: TelegramBot | None = None
    transport: Transport = ConsoleTransport()
    secret = settings.webhook_secret()
    token = settings.bot_token()
    link = startup.TelegramLink()
    if token:
        # replicas hold Telegram's limits together (the database counts every send)
        shared = SharedSendBudget(sessions) if leases is not None else None
        telegram = TelegramBot(
            token,
            handlers,
            settings.telegram_api_url,
            limiter=ChatRateLimiter(shared=shared),
            webhook=bool(settings.public_url),
        )
    else:
        log.warning(startup.NO_TOKEN)
    # Discord beside Telegram: one account gets each alert once, in the first app that reaches it
    discord = await start_discord(settings, handlers, services, sessions)

    async def health() -> dict[str, Any]:
        held: dict[str, Any] = leases.describe() if leases is not None else {"replica": "single"}
        return {
            "open_positions": len(engine.index),  # watched by this replica
            "telegram": link.state,
            # 200 all the same: the process serves what it can (startup.TelegramLink)
            **({"status": "degraded", "down": ["telegram"]} if link.degraded else {}),
            "discord": discord.mode if discord is not None else False,
            **held,
        }

    async def feed(payload: dict[str, Any]) -> None:
        assert telegram is not None
        await telegram.feed(payload)

    web = server(
        make_app(
            feed if telegram and settings.public_url else None,
            secret,
            health,
            web_wallet.routes(services, token, abuse.web_limits(settings, limit_storage))
            + email_confirm.routes(services)
            + (stripe_webhook.routes(services.subscriptions) if services.subscriptions else [])
            + (discord.routes if discord is not None else []),
        ),
        settings.host,
        settings.port,
    )
    web_task = asyncio.create_task(web.serve())  # /healthz answers whatever Telegram does
    connecting: asyncio.Task[None] | None = None
    monitors: TelegramMonitor | None = None  # the pinned /monitor messages
    if telegram is not None:
        # alerts wait in the outbox until the Bot API answers (retried with backoff)
        transport = telegram_out = TelegramTransport(telegram.bot, sessions, ready=False)

        def ready(bot: Any = telegram.bot) -> None:  # its name in links; alerts may go out
            services.bot_username = bot.username
            telegram_out.ready = True

        monitors = TelegramMonitor(
            telegram.bot,
            services,
            engine.ownership.replica_id,
            timedelta(seconds=settings.monitor_edit_seconds),
        )
        connecting = asyncio.create_task(
            startup.connect_telegram(
                telegram, settings.public_url, secret, link,
                settings.telegram_retry_seconds, settings.telegram_retry_max_seconds, ready,
            )
        )  # fmt: skip
    if discord is not None and discord.transport is not None:
        chats = [transport] if telegram is not None else []
        transport = FirstReachable([*chats, discord.transport])
    transport = ChannelFanout(transport, sessions)
    channel_dispatcher = build_channels(settings, sessions, services.safe_http, vault)
    dispatcher = Dispatcher(sessions, transport)

    loop = asyncio.get_running_loop()
    for sig in (signal.SIGINT, signal.SIGTERM):
        with contextlib.suppress(NotImplementedError, RuntimeError):
            loop.add_signal_handler(sig, stop.set)
    log.info(
        "maxxit running on %s; %d open positions monitored; telegram %s; web on :%d",
        url.split("@")[-1],
        len(engine.index),
        ("webhook" if settings.public_url else "polling") if telegram else link.state,
        settings.port,
    )
    price_watch = PriceWatch(settings, prices, loop.time())
    stalled = StalledFanOuts(engine)
    last_checkpoint = last_statistics = loop.time()
    try:
        while not stop.is_set():
            if connecting is not None and connecting.done():
                connecting.result()  # a rejected token: said once, after all is stopped
                connecting = None
            if web_task.done():  # the port was taken, say: no silent half-running service
                web_task.result()
                raise RuntimeError("web server stopped")
            if loop.time() - last_checkpoint >= settings.checkpoint_seconds:
                await engine.checkpoint()  # persists trailing stops, alerts moved ones
                if leases is None:  # replicas sweep in their own loop, more often
                    await engine.resume_pending()  # orders a venue error or a crash left open
                stalled.check()  # fan-outs a failed part or a dead replica left half way
                last_checkpoint = loop.time()
            if loop.time() - last_statistics >= STATISTICS_SECONDS:
                with contextlib.suppress(Exception):  # stale statistics are no reason to stop
                    await refresh_statistics(db)
                last_statistics = loop.time()
            price_watch.check(loop.time())
            try:
                await housekeeping(engine, dispatcher)
                if engine.ownership.runs("outbox"):
                    await channel_dispatcher.deliver_pending()
                if monitors is not None and link.state == "on":
                    await monitors.round()
            except Exception:  # one bad round must not stop the service; the next retries
                log.exception("housekeeping failed")
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(stop.wait(), timeout=1.0)
    finally:
        stop.set()
        await stalled.stop()
        for task in background:
            with contextlib.suppress(Exception):
                await task
        scheduler.shutdown(wait=False)
        await pollers.aclose()
        await services.safe_http.aclose()
        if pump is not None:
            pump.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await pump
        await ostium_trading.stop(ostium_pump)
        web.should_exit = True
        with contextlib.suppress(Exception):
            await web_task
        if connecting is not None:
            connecting.cancel()
            with contextlib.suppress(asyncio.CancelledError, Exception):
                await connecting
        if telegram is not None:
            await telegram.stop()
        if discord is not None:
            await discord.stop()
        await engine.checkpoint()  # trailing peaks survive the restart
        if leases is not None:  # hand our shards and jobs over now, not after a lapse
            with contextlib.suppress(Exception):
                await leases.resign()
        await db.dispose()
        log.info("maxxit stopped")
