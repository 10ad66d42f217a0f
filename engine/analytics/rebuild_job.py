"""The daily rebuild of the roll-up, as a singleton job: each refresh looks back only
LOOKBACK (engine/analytics/daily.py), so a correction of an older close (a fee or funding
settled days later, a PnL fixed by reconciliation) reaches the daily rows here, once a day,
on the one replica that holds the job's lease (engine/coordination)."""

from __future__ import annotations

import logging
from collections.abc import Awaitable, Callable
from datetime import datetime
from typing import Any, Protocol

from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from engine.analytics.daily import rebuild_daily
from engine.coordination.ownership import Ownership

log = logging.getLogger(__name__)
REBUILD_JOB = "rebuild_daily"
# shortly after midnight UTC: yesterday is complete, and the marketplace's 30-day window moves
REBUILD_HOUR, REBUILD_MINUTE = 0, 20


class Scheduler(Protocol):
    """What is used of APScheduler's AsyncIOScheduler."""

    def add_job(self, func: Callable[[], Awaitable[None]], trigger: str, **kwargs: Any) -> Any: ...


async def rebuild_if_ours(
    sessions: async_sessionmaker[AsyncSession],
    ownership: Ownership,
    clock: Callable[[], datetime],
) -> bool:
    """Rebuild every day's rows; False (nothing done) when another replica runs the job."""
    if not ownership.runs(REBUILD_JOB):
        return False
    async with sessions() as s, s.begin():
        await rebuild_daily(s, clock())
    log.info("daily analytics rebuilt")
    return True


def schedule_rebuild(
    scheduler: Scheduler,
    sessions: async_sessionmaker[AsyncSession],
    ownership: Ownership,
    clock: Callable[[], datetime],
) -> None:
    async def job() -> None:
        try:
            await rebuild_if_ours(sessions, ownership, clock)
        except Exception:  # the next day's run (or a refresh) catches up
            log.exception("daily analytics rebuild failed")

    scheduler.add_job(
        job, "cron", hour=REBUILD_HOUR, minute=REBUILD_MINUTE, timezone="UTC", id=REBUILD_JOB,
        coalesce=True, max_instances=1, misfire_grace_time=3600,
    )  # fmt: skip
