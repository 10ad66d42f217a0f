"""Replicas of `maxxit run` on one PostgreSQL database: this process's share of the market
shards and singleton jobs (engine/coordination), renewed in a loop, and the pending-order
sweep through which replicas share a fan-out and take over a dead replica's orders.

SQLite is the embedded single-process default and needs none of this: one process owns
everything (engine.coordination.ownership.WholeBook)."""

from __future__ import annotations

import asyncio
import contextlib
import logging
import os
import socket
from datetime import timedelta

from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from bot import stalled_fanouts
from bot.settings import Settings
from engine.analytics.rebuild_job import REBUILD_JOB
from engine.coordination.ownership import ShardLeases
from engine.pipeline import Engine

log = logging.getLogger(__name__)

# jobs that must run on exactly one replica at a time: the pollers (one poll, not N), the
# reconciliation, the approval expiry, and alert delivery (so Telegram's 30 messages a second
# overall and one a second per chat hold across all replicas together), the daily
# analytics rebuild (engine/analytics/rebuild_job.py), and resuming stalled fan-outs
# (bot/stalled_fanouts.py)
SINGLETON_JOBS = (
    "poll_x", "poll_feeds", "reconcile", "approvals", "outbox", "purge", REBUILD_JOB,
    stalled_fanouts.JOB,
)  # fmt: skip


def shard_leases(
    settings: Settings, url: str, sessions: async_sessionmaker[AsyncSession]
) -> ShardLeases | None:
    if not url.startswith("postgresql"):
        return None
    replica = settings.replica_id or f"{socket.gethostname()[:32]}-{os.getpid()}"
    return ShardLeases(
        sessions, replica, SINGLETON_JOBS, ttl=timedelta(seconds=settings.lease_seconds)
    )


async def _pause(stop: asyncio.Event, seconds: float) -> None:
    with contextlib.suppress(TimeoutError):
        await asyncio.wait_for(stop.wait(), timeout=seconds)


async def coordinate(leases: ShardLeases, engine: Engine, stop: asyncio.Event) -> None:
    """Renew and rebalance about four times per lease, and keep the monitor on our markets."""
    interval = leases.ttl.total_seconds() / 4
    while not stop.is_set():
        try:
            change = await leases.round()
            if change.gained or change.lost:
                log.info(
                    "replica %s: shards +%s -%s, now %d of %d; jobs %s",
                    leases.replica_id,
                    sorted(change.gained),
                    sorted(change.lost),
                    len(leases.held_shards),
                    leases.shards,
                    sorted(leases.held_jobs),
                )
            if not stop.is_set():  # stopping: a sync would only delay the shutdown
                await engine.sync_watch()
        except Exception:  # the database is away: leases lapse, and we stop acting on them
            log.exception("coordination round failed; retrying")
        await _pause(stop, interval)


async def sweep(engine: Engine, stop: asyncio.Event, seconds: float) -> None:
    """Claim and send pending orders nobody holds: another replica's fan-out shared out, a
    dead replica's orders once their lease lapses (looked up at the venue first)."""
    while not stop.is_set():
        try:
            await engine.resume_pending()
        except Exception:
            log.exception("pending-order sweep failed; retrying")
        await _pause(stop, seconds)
