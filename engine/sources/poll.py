"""Polling the sources agents follow: X accounts (engine/sources/x_api.py) and RSS/Atom
research feeds (engine/sources/rss.py). Each source keeps its cursor in the database (X's
since_id, a feed's newest entry), so a restart neither repeats nor skips a post. A source
polled for the first time starts from now: old posts are not traded.

One source's failure never stops the others; a source that keeps failing is marked
(`failing_since`) and the creators of the agents following it are told once.
"""

from __future__ import annotations

import logging
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from datetime import UTC, datetime

from sqlalchemy import select, update
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from engine.events import SourceFailing
from engine.ingest import IncomingPost
from engine.notify import write_outbox
from engine.sources.x_api import USER_TWEETS, RateLimited, XClient
from storage.models import Agent, Source, agent_sources

log = logging.getLogger(__name__)
FAILING_AFTER = 3  # consecutive failed polls before a source is marked and its creators told

Ingest = Callable[[IncomingPost], Awaitable[object]]


@dataclass(slots=True)
class PollReport:
    polled: int = 0
    new_posts: int = 0
    rate_limited: bool = False
    failed: list[str] = field(default_factory=list)


async def followed(session: AsyncSession, kind: str) -> list[Source]:
    """Sources of this kind at least one active agent follows."""
    rows = await session.execute(
        select(Source)
        .join(agent_sources, agent_sources.c.source_id == Source.id)
        .join(Agent, Agent.id == agent_sources.c.agent_id)
        .where(Source.kind == kind, Agent.status == "active")
        .distinct()
        .order_by(Source.id)
    )
    return list(rows.scalars().all())


async def record_failure(
    sessions: async_sessionmaker[AsyncSession], source: Source, error: str, now: datetime
) -> None:
    async with sessions() as s, s.begin():
        count = source.failure_count + 1
        await s.execute(
            update(Source)
            .where(Source.id == source.id)
            .values(failure_count=count, failing_since=source.failing_since or now)
        )
        if count == FAILING_AFTER:
            creators = (
                await s.execute(
                    select(Agent.creator_user_id)
                    .join(agent_sources, agent_sources.c.agent_id == Agent.id)
                    .where(
                        agent_sources.c.source_id == source.id, Agent.creator_user_id.is_not(None)
                    )
                    .distinct()
                )
            ).scalars()
            await write_outbox(
                s, [SourceFailing(uid, source.handle, error[:200]) for uid in creators]
            )


async def record_success(
    sessions: async_sessionmaker[AsyncSession], source: Source, cursor: str | None
) -> None:
    async with sessions() as s, s.begin():
        await s.execute(
            update(Source)
            .where(Source.id == source.id)
            .values(cursor=cursor, failure_count=0, failing_since=None)
        )


def _time(text: str) -> datetime:
    try:
        return datetime.fromisoformat(text.replace("Z", "+00:00"))
    except ValueError:
        return datetime.now(UTC)


class XPoller:
    """Round-robin over the followed X accounts, within what the rate limit has left: the
    accounts not reached this round go first next round."""

    def __init__(self, sessions: async_sessionmaker[AsyncSession], client: XClient, ingest: Ingest,
                 include_replies: bool = False) -> None:  # fmt: skip
        self.sessions = sessions
        self.client = client
        self.ingest = ingest
        self.include_replies = include_replies
        self._last_polled: dict[int, float] = {}

    async def _resolve(self, sources: list[Source], report: PollReport, now: datetime) -> None:
        missing = [s for s in sources if not s.external_user_id]
        if not missing:
            return
        ids = await self.client.user_ids([s.handle.lstrip("@") for s in missing])
        async with self.sessions() as s, s.begin():
            for src in missing:
                uid = ids.get(src.handle.lstrip("@").lower())
                if uid is not None:
                    src.external_user_id = uid
                    await s.execute(
                        update(Source).where(Source.id == src.id).values(external_user_id=uid)
                    )
        for src in missing:
            if not src.external_user_id:
                report.failed.append(src.handle)
                await record_failure(self.sessions, src, "no such X account", now)

    async def poll(self, now: datetime | None = None) -> PollReport:
        now = now or datetime.now(UTC)
        report = PollReport()
        async with self.sessions() as s:
            sources = await followed(s, "x")
        try:
            await self._resolve(sources, report, now)
        except RateLimited:
            report.rate_limited = True  # lookups wait; accounts already known are polled

        ready = [s for s in sources if s.external_user_id]
        ready.sort(key=lambda s: self._last_polled.get(s.id, 0.0))
        for src in ready:
            if not self.client.can_call(USER_TWEETS):
                report.rate_limited = True
                break
            try:
                since = None if src.cursor in (None, "0") else src.cursor
                posts = await self.client.posts_since(
                    str(src.external_user_id), since, self.include_replies
                )
            except RateLimited:
                report.rate_limited = True  # its cursor is unchanged: nothing is lost
                break
            except Exception as exc:  # this source only; the others go on
                log.warning("polling %s failed: %r", src.handle, exc)
                report.failed.append(src.handle)
                await record_failure(self.sessions, src, f"{type(exc).__name__}: {exc}", now)
                continue
            self._last_polled[src.id] = now.timestamp()
            report.polled += 1
            if src.cursor is None:
                # first contact: start from now, do not trade the account's history
                await record_success(self.sessions, src, posts[-1].id if posts else "0")
                continue
            for post in posts:
                if post.is_reply and not self.include_replies:
                    continue
                await self.ingest(
                    IncomingPost("x", src.handle, post.id, post.text, _time(post.created_at))
                )
                report.new_posts += 1
            await record_success(self.sessions, src, posts[-1].id if posts else src.cursor)
        return report
