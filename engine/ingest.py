"""Ingest: posts from sources into the `posts` table, each stored once per (source, id)."""

from __future__ import annotations

import hashlib
import json
from collections.abc import AsyncIterator
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import Protocol

from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncSession

from engine.classify.base import Classification
from storage.bulk import insert_ignore
from storage.models import Post, Source


@dataclass(frozen=True, slots=True)
class IncomingPost:
    source_kind: str  # x, rss, agent, replay
    source_handle: str
    external_id: str
    text: str
    posted_at: datetime
    # a creator's explicit call (/call) says what it means: no classifier second-guesses it
    classification: Classification | None = None


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


class PostSource(Protocol):
    """Anything that yields posts: a JSONL file now; X timelines and feeds later."""

    def posts(self) -> AsyncIterator[IncomingPost]: ...


class JsonlFileSource:
    """Posts from a JSON-lines file, one {"id", "source", "text", "posted_at"} per line
    (a time without a zone is UTC). A bad line is an error naming the file and line."""

    def __init__(self, path: Path, kind: str = "x") -> None:
        self.path = path
        self.kind = kind

    def read(self) -> list[IncomingPost]:
        out = []
        with self.path.open(encoding="utf-8") as fh:
            for lineno, line in enumerate(fh, 1):
                if line.strip():
                    out.append(self._parse(line, lineno))
        return out

    def _parse(self, line: str, lineno: int) -> IncomingPost:
        where = f"{self.path}:{lineno}"
        try:
            raw = json.loads(line)
        except json.JSONDecodeError as exc:
            raise ValueError(f"{where}: not valid JSON: {exc.msg}") from None
        if not isinstance(raw, dict):
            raise ValueError(f"{where}: each line must be a JSON object")
        missing = [k for k in ("id", "source", "text", "posted_at") if k not in raw]
        if missing:
            raise ValueError(f"{where}: missing {', '.join(missing)}")
        try:
            posted_at = datetime.fromisoformat(str(raw["posted_at"]).replace("Z", "+00:00"))
        except ValueError:
            raise ValueError(f"{where}: posted_at is not an ISO 8601 time") from None
        if posted_at.tzinfo is None:
            posted_at = posted_at.replace(tzinfo=UTC)
        return IncomingPost(
            self.kind, str(raw["source"]), str(raw["id"]), str(raw["text"]), posted_at
        )

    async def posts(self) -> AsyncIterator[IncomingPost]:
        for post in self.read():
            yield post
