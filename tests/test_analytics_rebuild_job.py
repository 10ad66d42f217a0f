"""The daily rebuild is scheduled (APScheduler, once a day) and runs on the one replica that
holds its lease: it brings a correction of a close older than the refresh's look-back into the
daily rows, which a refresh alone never sees."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import timedelta
from decimal import Decimal

from apscheduler.schedulers.asyncio import AsyncIOScheduler
from apscheduler.triggers.cron import CronTrigger
from sqlalchemy import update

from engine.analytics.daily import refresh_daily
from engine.analytics.rebuild_job import REBUILD_JOB, rebuild_if_ours, schedule_rebuild
from engine.analytics.records import agent_records
from engine.coordination.ownership import WholeBook
from storage.models import Position
from tests.analytics_helpers import Book, at


@dataclass
class OtherReplicaRunsIt:
    replica_id: str = "b"

    def owns(self, market: str) -> bool:
        return True

    def runs(self, job: str) -> bool:
        return job != REBUILD_JOB


async def hawk_live_pnl(sessions, hawk: int) -> Decimal:  # type: ignore[no-untyped-def]
    async with sessions() as s:
        records = await agent_records(s, [hawk], None, at(9).date())
    return records[(hawk, "live")].figures.realized_pnl


async def test_the_scheduled_rebuild_brings_in_a_late_correction(sessions) -> None:  # type: ignore[no-untyped-def]
    book = Book(sessions)
    ann = await book.user("Ann")
    hawk = await book.agent("Hawk", creator=ann)
    dep = await book.deployment(ann, hawk, "live")
    first = await book.trade(dep, hawk, at(1, 10), "10")
    await book.trade(dep, hawk, at(2, 10), "-4")
    now = at(9, 12)
    async with sessions() as s, s.begin():
        await refresh_daily(s, now)
    assert await hawk_live_pnl(sessions, hawk) == Decimal(6)

    # days later the venue's settlement corrects the first close (fees, funding)
    async with sessions() as s, s.begin():
        await s.execute(
            update(Position).where(Position.id == first).values(realized_pnl=Decimal("9.25"))
        )
    async with sessions() as s, s.begin():
        assert await refresh_daily(s, now + timedelta(minutes=5)) is False  # not seen
    assert await hawk_live_pnl(sessions, hawk) == Decimal(6)

    # a replica that does not hold the job's lease leaves it alone
    assert await rebuild_if_ours(sessions, OtherReplicaRunsIt(), lambda: now) is False
    assert await hawk_live_pnl(sessions, hawk) == Decimal(6)

    scheduler = AsyncIOScheduler()
    schedule_rebuild(scheduler, sessions, WholeBook(), lambda: now + timedelta(hours=12))
    job = scheduler.get_job(REBUILD_JOB)
    assert isinstance(job.trigger, CronTrigger)
    fields = {f.name: str(f) for f in job.trigger.fields}
    assert (fields["hour"], fields["minute"]) == ("0", "20")  # once a day, after midnight UTC
    await job.func()  # what the scheduler runs
    assert await hawk_live_pnl(sessions, hawk) == Decimal("5.25")
