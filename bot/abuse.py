"""Composition of the abuse defences: the chat and /call limits and the web limits from the
settings (memory counters, or Redis shared by replicas), and the scheduled purge of expired
sign-in nonces and link tokens (a singleton job: one replica purges)."""

from __future__ import annotations

import logging

from apscheduler.schedulers.asyncio import AsyncIOScheduler
from limits.aio.storage import Storage
from limits.storage import storage_from_string
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from bot.settings import Settings
from bot.web_limits import WebLimits
from engine.pipeline import Engine
from handlers.limits import ChatLimits, LimitConfig, storage_uri
from wallets.siwe_link import purge_expired

log = logging.getLogger(__name__)
PURGE_JOB = "purge"


def limit_storage(settings: Settings) -> Storage:
    redis = settings.redis_url.get_secret_value() if settings.redis_url else None
    return storage_from_string(storage_uri(redis))  # type: ignore[return-value]


def chat_limits(settings: Settings, storage: Storage) -> ChatLimits:
    config = LimitConfig(
        settings.limit_per_user, settings.limit_per_chat, settings.limit_quiet, settings.call_rate
    )
    return ChatLimits(config, storage)


def web_limits(settings: Settings, storage: Storage) -> WebLimits:
    return WebLimits(settings.web_limit_per_ip, settings.web_limit_per_token, storage)


async def purge(sessions: async_sessionmaker[AsyncSession], engine: Engine) -> int:
    """Delete what expired; nothing when another replica holds the job."""
    if not engine.ownership.runs(PURGE_JOB):
        return 0
    async with sessions() as s, s.begin():
        gone = await purge_expired(s, engine.clock())
    if gone:
        log.info("purged %d expired sign-in nonce(s) and link token(s)", gone)
    return gone


def schedule_purge(
    scheduler: AsyncIOScheduler,
    settings: Settings,
    sessions: async_sessionmaker[AsyncSession],
    engine: Engine,
) -> None:
    async def job() -> None:
        try:
            await purge(sessions, engine)
        except Exception:
            log.exception("purging expired sign-in rows failed; next run retries")

    scheduler.add_job(job, "interval", seconds=settings.purge_seconds, id=PURGE_JOB)
