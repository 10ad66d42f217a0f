"""Composition of Ostium live trading: the venue with agent keys from the vault (the delegation
itself is checked on chain at every order), its protection and price feed next to
Hyperliquid's, and the market list refreshed. Without MAXXIT_MASTER_KEY or OSTIUM_RPC_URL,
Ostium stays paper only."""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections.abc import Awaitable, Callable
from datetime import UTC, datetime

from apscheduler.schedulers.asyncio import AsyncIOScheduler
from eth_account.signers.local import LocalAccount
from ostium_python_sdk.config import NetworkConfig
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from bot.live_trading import reconciled
from bot.settings import Settings
from bot.venue_jobs import owned_job, user_of_wallet
from engine.pipeline import Engine
from engine.prices import PriceBook
from engine.venues.ostium import OstiumConfig, OstiumVenue
from engine.venues.ostium_accrual import accrue_rollover
from engine.venues.ostium_feed import OstiumPriceFeed
from engine.venues.ostium_protection import OstiumProtection, ProtectionSet
from engine.venues.ostium_requests import RequestJournal
from engine.venues.routed import AccountRoutedVenue
from handlers import ostium_rotation
from storage.types import utcnow
from wallets.ostium_delegation import Contracts, DelegationReader
from wallets.vault import Vault, load_agent

log = logging.getLogger(__name__)
VENUE = "OSTIUM"


def ostium_config(settings: Settings) -> OstiumConfig | None:
    if not settings.ostium_rpc_url:
        return None
    network = (
        NetworkConfig.testnet() if settings.ostium_network == "testnet" else NetworkConfig.mainnet()
    )
    contracts = dict(network.contracts)
    for pair in (settings.ostium_contracts or "").split(","):
        if "=" in pair:
            name, address = pair.split("=", 1)
            contracts[name.strip()] = address.strip()
    return OstiumConfig(
        rpc_url=settings.ostium_rpc_url,
        submit_rpc_url=settings.ostium_submit_rpc_url or settings.ostium_rpc_url,
        graph_url=settings.ostium_graph_url or network.graph_url,
        price_url=settings.ostium_price_url,
        contracts=contracts,
        testnet=settings.ostium_network == "testnet",
        fill_wait=settings.ostium_fill_wait_seconds,
    )


def signer_lookup(
    sessions: async_sessionmaker[AsyncSession],
    vault: Vault,
    delegate_of: ostium_rotation.DelegateOf | None = None,
) -> Callable[[str], Awaitable[LocalAccount | None]]:
    """Maxxit's Ostium key for the user whose linked wallet this account is. With
    `delegate_of` (the trading contract's delegate of a trader), a key rotation the chain
    already switched is finished first, so nothing is signed with the key it replaced."""

    async def signer_for(account: str) -> LocalAccount | None:
        async with sessions() as s:
            user_id = await user_of_wallet(s, account)
            if user_id is None:
                return None
        if delegate_of is not None:
            await ostium_rotation.switch_if_delegated(
                sessions, utcnow, user_id, account, delegate_of, "chain"
            )
        async with sessions() as s:
            return await load_agent(s, vault, user_id, VENUE)

    return signer_for


async def attach_ostium(
    settings: Settings,
    sessions: async_sessionmaker[AsyncSession],
    engine: Engine,
    prices: PriceBook,
    vault: Vault | None,
) -> OstiumVenue | None:
    """Live Ostium next to paper under the same venue name; its levels on the trades join
    the engine's protection."""
    config = ostium_config(settings)
    if vault is None or config is None:
        return None

    async def delegate_of(trader: str) -> str | None:
        return await venue.delegate_of(trader)

    signer_for = signer_lookup(sessions, vault, delegate_of)
    venue = OstiumVenue(config, signer_for, RequestJournal(sessions), prices)
    try:
        await venue.refresh_markets()
    except Exception as exc:  # unreachable now: the scheduled refresh tries again
        log.warning("Ostium markets unavailable at start: %r", exc)
    engine.venues[VENUE] = AccountRoutedVenue(engine.venues[VENUE], venue)
    protection = OstiumProtection(sessions, venue)
    members = [engine.protection] if engine.protection is not None else []
    engine.protection = ProtectionSet([*members, protection])  # type: ignore[assignment]
    return venue


def delegation_reader(settings: Settings) -> DelegationReader | None:
    """/wallet's view of the delegation, and the transactions the connect page builds."""
    config = ostium_config(settings)
    if config is None:
        return None
    c = config.contracts
    return DelegationReader(config.rpc_url, Contracts(c["trading"], c["tradingStorage"], c["usdc"]))


def start_price_feed(
    settings: Settings, engine: Engine, venue: OstiumVenue | None
) -> asyncio.Task[None] | None:
    if venue is None or not settings.ostium_price_feed:
        return None
    feed = OstiumPriceFeed(venue.quotes)

    async def pump() -> None:
        async for tick in feed.ticks():
            try:
                await engine.on_price(tick)
            except Exception:
                log.exception("price tick %s failed", tick)

    return asyncio.create_task(pump())


def schedule(
    settings: Settings, scheduler: AsyncIOScheduler, engine: Engine, venue: OstiumVenue | None
) -> None:
    """The pair list refreshed; reconciliation (trades Ostium's automation closed: stop loss,
    take profit, liquidation) and the rollover accrued to open trades
    (engine/venues/ostium_accrual.py), at start and every RECONCILE_SECONDS."""
    if venue is None:
        return
    reconcile = owned_job(engine, "Ostium reconciliation", lambda: reconciled(engine, VENUE))
    rollover = owned_job(
        engine,
        "accruing Ostium rollover",
        lambda: accrue_rollover(engine.sessions, venue, clock=engine.clock),
    )

    async def refresh() -> None:
        try:
            await venue.refresh_markets()
        except Exception:
            log.exception("refreshing Ostium pairs failed; keeping the old list")

    async def rotations() -> None:
        """Key rotations the chain switched without anyone looking (a Safe transaction
        signed later in the Safe app): finished, and the user told."""
        if not engine.ownership.runs("reconcile"):
            return
        try:
            await ostium_rotation.switch_all(engine.sessions, utcnow, venue.delegate_of)
        except Exception:
            log.exception("checking Ostium key rotations failed; next run retries")

    once = {"max_instances": 1, "coalesce": True}
    scheduler.add_job(rotations, "interval", seconds=settings.reconcile_seconds, **once)
    scheduler.add_job(refresh, "interval", seconds=settings.markets_refresh_seconds, **once)
    for job in (reconcile, rollover):
        scheduler.add_job(
            job,
            "interval",
            seconds=settings.reconcile_seconds,
            next_run_time=datetime.now(UTC),
            **once,
        )


async def stop(task: asyncio.Task[None] | None) -> None:
    if task is not None:
        task.cancel()
        with contextlib.suppress(asyncio.CancelledError):
            await task
