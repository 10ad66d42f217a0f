"""Ingest: posts from sources into the `posts` table, each stored once per (source, id)."""

from __future__ import annotations

import hashlib
import json
from collections.abc import AsyncIterator
from dataclasses import dataclass
from datetime import datetime
from pathlib import Path

from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncSession

from storage.bulk import insert_ignore
from storage.models import Post, Source


@dataclass(frozen=True, slots=True)
class IncomingPost:
    source_kind: str  # x, rss, agent, replay
    source_handle: str
    external_id: str
    text: str
    posted_at: datetime


def content_hash(text: str) -> str:
    return hashlib.sha256(" ".join(text.split()).lower().encode()).hexdigest()


async def source_id(session: AsyncSession, kind: str, handle: str) -> int:
    await insert_ignore(session, Source, [{"kind": kind, "handle": handle}])
    return (
        await session.execute(select(Source.id).where(Source.kind == kind, Source.handle == handle))
    ).scalar_one()


async def store_post(session: AsyncSession, post: IncomingPost) -> int:
    """The post's id; a post seen before keeps its first row (and its original time)."""
    sid = await source_id(session, post.source_kind, post.source_handle)
    await insert_ignore(
        session,
        Post,
        [
            {
                "source_id": sid,
                "external_id": post.external_id,
                "text": post.text,
                "posted_at": post.posted_at,
                "content_hash": content_hash(post.text),
            }
        ],
    )
    return (
        await session.execute(
            select(Post.id).where(Post.source_id == sid, Post.external_id == post.external_id)
        )
    ).scalar_one()


class JsonlFileSource:
    """Posts from a JSON-lines file: {"id", "source", "text", "posted_at"} per line."""

    def __init__(self, path: Path, kind: str = "x") -> None:
        self.path = path
        self.kind = kind

    async def posts(self) -> AsyncIterator[IncomingPost]:
        with self.path.open(encoding="utf-8") as fh:
            for lineno, line in enumerate(fh, 1):
                if not line.strip():
                    continue
                try:
                    raw = json.loads(line)
                    yield IncomingPost(
                        source_kind=self.kind,
                        source_handle=str(raw["source"]),
                        external_id=str(raw["id"]),
                        text=str(raw["text"]),
                        posted_at=datetime.fromisoformat(str(raw["posted_at"])),
                    )
                except (ValueError, KeyError, TypeError) as exc:
                    raise ValueError(f"{self.path}:{lineno}: bad post line: {exc}") from exc
