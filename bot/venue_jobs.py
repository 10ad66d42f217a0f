"""What live venues' compositions share (bot/live_trading.py for Hyperliquid,
bot/ostium_trading.py for Ostium): the user whose linked wallet an account is, and scheduled
jobs that run on the replica owning reconciliation and log a failure for the next run."""

from __future__ import annotations

import logging
from collections.abc import Awaitable, Callable

from sqlalchemy import func, select
from sqlalchemy.ext.asyncio import AsyncSession

from engine.pipeline import Engine
from storage.models import Wallet

log = logging.getLogger(__name__)


async def user_of_wallet(s: AsyncSession, account: str) -> int | None:
    """The user whose linked (not unlinked) wallet this account is."""
    found = await s.execute(
        select(Wallet.user_id).where(
            func.lower(Wallet.address) == account.lower(), Wallet.unlinked_at.is_(None)
        )
    )
    return found.scalar()


def owned_job(
    engine: Engine, what: str, work: Callable[[], Awaitable[object]]
) -> Callable[[], Awaitable[None]]:
    """A scheduled job run by the replica that owns reconciliation (the others skip it); a
    failure is logged and the next run retries."""

    async def job() -> None:
        if not engine.ownership.runs("reconcile"):
            return
        try:
            await work()
        except Exception:
            log.exception("%s failed; next run retries", what)

    return job
