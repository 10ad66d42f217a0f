"""Scheduled ingestion in `maxxit run`: X accounts when X_BEARER_TOKEN is set, research feeds
always (they need no key). Each poll runs alone (max_instances=1): a slow round is never
overlapped by the next."""

from __future__ import annotations

import logging
from dataclasses import dataclass

from apscheduler.schedulers.asyncio import AsyncIOScheduler
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from bot.settings import Settings
from engine.pipeline import Engine
from engine.sources.poll import XPoller
from engine.sources.rss import FeedPoller
from engine.sources.x_api import XClient

log = logging.getLogger(__name__)


@dataclass
class Pollers:
    x: XPoller | None
    feeds: FeedPoller

    async def aclose(self) -> None:
        if self.x is not None:
            await self.x.client.aclose()
        await self.feeds.aclose()


def schedule_ingestion(
    scheduler: AsyncIOScheduler,
    settings: Settings,
    sessions: async_sessionmaker[AsyncSession],
    engine: Engine,
) -> Pollers:
    x = None
    if settings.x_bearer_token:
        client = XClient(settings.x_api_url, settings.x_bearer_token.get_secret_value())
        x = XPoller(sessions, client, engine.ingest, settings.x_include_replies)
    feeds = FeedPoller(sessions, engine.ingest)
    pollers = Pollers(x, feeds)
    once = {"max_instances": 1, "coalesce": True}

    async def poll_x() -> None:
        assert pollers.x is not None
        if not engine.ownership.runs("poll_x"):
            return  # another replica polls X
        try:
            report = await pollers.x.poll()
            if report.new_posts or report.failed or report.rate_limited:
                log.info("X poll: %s", report)
        except Exception:
            log.exception("X poll failed; the next one retries")

    async def poll_feeds() -> None:
        if not engine.ownership.runs("poll_feeds"):
            return  # another replica polls the feeds
        try:
            report = await pollers.feeds.poll()
            if report.new_posts or report.failed:
                log.info("feed poll: %s", report)
        except Exception:
            log.exception("feed poll failed; the next one retries")

    if x is not None:
        scheduler.add_job(poll_x, "interval", seconds=settings.x_poll_seconds, **once)
    scheduler.add_job(poll_feeds, "interval", seconds=settings.feed_poll_seconds, **once)
    return pollers
