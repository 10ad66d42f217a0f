"""Research feeds (RSS and Atom, read with feedparser) as signal sources: a desk's notes or a
newsletter become posts like any other. The source's handle is the feed URL; its cursor
keeps the HTTP ETag and the newest entry seen, so unchanged feeds cost one 304 and a restart
repeats nothing. A feed polled for the first time starts from now.

Feed URLs come from users (/create), so they are fetched through the SSRF-safe fetcher:
HTTPS to public addresses only, checked at connect time and after redirects, size-capped."""

from __future__ import annotations

import html
import json
import logging
import re
from calendar import timegm
from datetime import UTC, datetime
from typing import Any

import feedparser
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from engine.ingest import IncomingPost
from engine.net.safe_http import SafeFetcher
from engine.sources.poll import Ingest, PollReport, followed, record_failure, record_success

log = logging.getLogger(__name__)
_TAGS = re.compile(r"<[^>]+>")
MAX_FEED_BYTES = 4 << 20


def _plain(text: str) -> str:
    return " ".join(html.unescape(_TAGS.sub(" ", text or "")).split())


def _when(entry: Any) -> datetime:
    parsed = entry.get("published_parsed") or entry.get("updated_parsed")
    return datetime.fromtimestamp(timegm(parsed), UTC) if parsed else datetime.now(UTC)


class FeedPoller:
    def __init__(
        self,
        sessions: async_sessionmaker[AsyncSession],
        ingest: Ingest,
        timeout: float = 15.0,
        fetcher: SafeFetcher | None = None,
    ) -> None:
        self.sessions = sessions
        self.ingest = ingest
        self.http = fetcher or SafeFetcher(timeout=timeout, max_bytes=MAX_FEED_BYTES)

    async def aclose(self) -> None:
        await self.http.aclose()

    async def poll(self, now: datetime | None = None) -> PollReport:
        now = now or datetime.now(UTC)
        report = PollReport()
        async with self.sessions() as s:
            sources = await followed(s, "rss")
        for src in sources:
            try:
                new = await self._one(src)
            except Exception as exc:  # this feed only
                log.warning("feed %s failed: %r", src.handle, exc)
                report.failed.append(src.handle)
                await record_failure(self.sessions, src, f"{type(exc).__name__}: {exc}", now)
                continue
            report.polled += 1
            report.new_posts += new
        return report

    async def _one(self, src: Any) -> int:
        cursor = json.loads(src.cursor) if src.cursor else None
        headers = {"If-None-Match": cursor["etag"]} if cursor and cursor.get("etag") else {}
        response = await self.http.request("GET", src.handle, headers=headers)
        if response.status == 304:
            await record_success(self.sessions, src, src.cursor)
            return 0
        if response.status >= 400:
            raise ValueError(f"HTTP {response.status}")
        feed = feedparser.parse(response.body)
        if feed.bozo and not feed.entries:
            raise ValueError(f"not a feed: {feed.bozo_exception}")
        entries = sorted(feed.entries, key=_when)
        last = cursor.get("last") if cursor else None
        new = 0
        if cursor is not None:
            for entry in entries:
                when = _when(entry)
                if last is not None and when.isoformat() <= last:
                    continue
                text = _plain(entry.get("title", ""))
                summary = _plain(entry.get("summary", ""))
                if summary:
                    text = f"{text}\n{summary}"
                external = entry.get("id") or entry.get("link") or f"{when.isoformat()}:{text[:40]}"
                await self.ingest(IncomingPost("rss", src.handle, str(external)[:200], text, when))
                new += 1
        newest = _when(entries[-1]).isoformat() if entries else last
        etag = response.headers.get("etag")
        state = {"etag": etag[:120] if etag else None, "last": newest}  # fits the column
        await record_success(self.sessions, src, json.dumps(state))
        return new
