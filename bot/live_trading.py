"""Composition of live trading: the Hyperliquid venue with agent keys from the vault, its
price feed, and the scheduled reconciliation. Without MAXXIT_MASTER_KEY there is no live
trading (paper only), said once at start."""

from __future__ import annotations

import logging
from collections.abc import Awaitable, Callable
from datetime import UTC, datetime

from apscheduler.schedulers.asyncio import AsyncIOScheduler
from eth_account.signers.local import LocalAccount
from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker
from web3 import AsyncHTTPProvider, AsyncWeb3

from bot.settings import Settings
from bot.venue_jobs import owned_job, user_of_wallet
from engine.money.fees import settle_fees
from engine.money.funding import accrue_funding
from engine.pipeline import Engine
from engine.prices import PriceBook
from engine.venues.hyperliquid import HyperliquidConfig, HyperliquidVenue
from engine.venues.hyperliquid_feed import HyperliquidPriceFeed
from engine.venues.hyperliquid_rules import MAINNET_URL, TESTNET_URL
from storage.models import AgentKey
from wallets.safe import TransactionServiceIndex
from wallets.safe_gateway import SafeGateway
from wallets.vault import Vault, VaultError, load_agent

log = logging.getLogger(__name__)
VENUE = "HYPERLIQUID"
FEE_SETTLE_SECONDS = 60  # one or two /info reads per account with fills to settle


def hyperliquid_url(settings: Settings) -> str:
    if settings.hyperliquid_api_url:
        return settings.hyperliquid_api_url.rstrip("/")
    return MAINNET_URL if settings.hyperliquid_network == "mainnet" else TESTNET_URL


def vault_or_none(settings: Settings) -> Vault | None:
    try:
        return Vault.from_env(settings.vault_env())
    except VaultError as exc:
        log.warning("live trading off: %s", exc)
        return None


def signer_lookup(
    sessions: async_sessionmaker[AsyncSession], vault: Vault
) -> Callable[[str], Awaitable[LocalAccount | None]]:
    """The approved agent key that trades for this account (the user's linked wallet)."""

    async def signer_for(account: str) -> LocalAccount | None:
        async with sessions() as s:
            user_id = await user_of_wallet(s, account)
            if user_id is None:
                return None
            approved = (
                await s.execute(
                    select(AgentKey.approved_at).where(
                        AgentKey.user_id == user_id, AgentKey.venue == VENUE
                    )
                )
            ).scalar()
            if approved is None:
                return None
            return await load_agent(s, vault, user_id, VENUE)

    return signer_for


def build_hyperliquid(
    settings: Settings, sessions: async_sessionmaker[AsyncSession], prices: PriceBook, vault: Vault
) -> HyperliquidVenue:
    config = HyperliquidConfig(base_url=hyperliquid_url(settings))
    return HyperliquidVenue(config, signer_lookup(sessions, vault), prices=prices)


def price_feed(settings: Settings, venue: HyperliquidVenue) -> HyperliquidPriceFeed:
    return HyperliquidPriceFeed(hyperliquid_url(settings), lambda: venue.info("allMids", {}))


def schedule(
    settings: Settings, engine: Engine, venue: HyperliquidVenue | None
) -> AsyncIOScheduler:
    """Reconciliation at start and every RECONCILE_SECONDS; the market list refreshed; fees
    settled from the venue's fills every minute; funding accrued hourly (engine/money/)."""
    scheduler = AsyncIOScheduler()
    if venue is not None:
        reconcile = owned_job(engine, "reconciliation", lambda: reconciled(engine, VENUE))
        # real fees: estimated fees of recent live fills replaced by the venue's own
        settle = owned_job(
            engine, "settling fees", lambda: settle_fees(engine.sessions, venue, clock=engine.clock)
        )
        # Hyperliquid pays funding on the hour: accrue it to our live positions, once each
        funding = owned_job(
            engine,
            "accruing funding",
            lambda: accrue_funding(engine.sessions, venue, clock=engine.clock),
        )

        async def refresh() -> None:
            try:
                await venue.refresh_markets()
            except Exception:
                log.exception("refreshing Hyperliquid markets failed; keeping the old list")

        # at start too: whatever happened while we were down is settled first
        once = {"max_instances": 1, "coalesce": True}
        scheduler.add_job(
            reconcile,
            "interval",
            seconds=settings.reconcile_seconds,
            next_run_time=datetime.now(UTC),
            **once,
        )
        scheduler.add_job(refresh, "interval", seconds=settings.markets_refresh_seconds, **once)
        scheduler.add_job(settle, "interval", seconds=FEE_SETTLE_SECONDS, **once)
        # five minutes past each hour, and at start (payments made while we were down)
        scheduler.add_job(funding, "cron", minute=5, next_run_time=datetime.now(UTC), **once)
    return scheduler


async def reconciled(engine: Engine, venue: str) -> None:
    closed = await engine.reconcile(venue)
    if closed:
        log.info("reconciliation closed %d %s position(s) the venue closed", closed, venue)


def safe_gateway(settings: Settings) -> SafeGateway | None:
    """The Safes of a wallet and their module state, when an Arbitrum node is configured."""
    if not settings.arbitrum_rpc_url:
        return None
    w3 = AsyncWeb3(AsyncHTTPProvider(settings.arbitrum_rpc_url))
    key = settings.safe_api_key.get_secret_value() if settings.safe_api_key else None
    return SafeGateway(w3, TransactionServiceIndex(api_key=key))
