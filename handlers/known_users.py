"""Who is writing, kept in memory: a known chat account's identity, user, language, settings
and whether its chat has a half-finished wizard, so that an update from it costs no statement
before its handler (it was one session and one statement on every update).

Correct with several replicas on one database, and whatever code makes the change:
- a change made by this process (the settings, a wizard, an identity update, any statement
  through this database engine that updates or deletes users or identities) forgets at once:
  the user sees it on their very next message;
- a change made anywhere else (another replica, a script) is written to `chat_changes` by
  database triggers in the changing transaction (migration 0020), and every replica reads
  that table at most POLL_SECONDS before it serves an update from memory: it is seen within
  POLL_SECONDS. A version checked on each update would cost the very statement this saves;
  a time-to-live alone would either serve stale data for as long or keep nothing warm.
A free-text message or a wizard's button still reads its wizard from the database (the next
step of a wizard started on another replica is never missed); only a command's "is there a
wizard to leave behind" is answered from memory.
"""

from __future__ import annotations

import asyncio
import logging
import time
import weakref
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import Any

from sqlalchemy import delete, event, func, select
from sqlalchemy.ext.asyncio import AsyncEngine, AsyncSession, async_sessionmaker

from storage.models import ChatChange

log = logging.getLogger(__name__)

POLL_SECONDS = 1.0  # how late another replica's change may be seen
# a change's stamp is its transaction's start (PostgreSQL) in the database's whole seconds: one
# committing up to this much after its stamp is still read by the next poll
MARGIN_SECONDS = 30
KEEP_SECONDS = 3600  # changes older than this are deleted (every PRUNE_SECONDS)
PRUNE_SECONDS = 600
MAX_ENTRIES = 200_000  # ~0.3 KB each; the oldest go first
# writes that change what is kept: any update or delete of these tables (inserts add new users
# or identities, which nothing kept describes; conversations are forgotten by handlers/wizard)
WATCHED = frozenset({"users", "identities"})

Key = tuple[str, str]  # (platform, the chat app's id of the person)


@dataclass(frozen=True, slots=True)
class Known:
    identity_id: int
    user_id: int
    chat_id: str | None
    language: str
    settings: Mapping[str, Any]
    wizard_open: bool


class KnownUsers:
    """One process's known chat accounts on one database."""

    def __init__(
        self,
        sessions: async_sessionmaker[AsyncSession],
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self.sessions = sessions
        self.clock = clock
        self._entries: dict[Key, Known] = {}
        self._keys_of: dict[int, set[Key]] = {}
        # bumped by every forgetting: a read that began before one must not be kept after it
        self.epoch = 0
        self._polled: float | None = None
        self._pruned: float | None = None
        self._newest: int | None = None  # the newest change stamp read
        self._seen: dict[int, int] = {}  # change id -> stamp, of the last MARGIN_SECONDS
        self._lock = asyncio.Lock()
        self._pruning: asyncio.Task[None] | None = None
        bind = sessions.kw.get("bind")
        if isinstance(bind, AsyncEngine):
            _watch(bind, self)

    def get(self, key: Key) -> Known | None:
        return self._entries.get(key)

    def keep(self, key: Key, known: Known, epoch: int) -> None:
        """Remember what a read that began at `epoch` found, unless something was forgotten
        since (it may have been read before that change committed)."""
        if epoch != self.epoch:
            return
        if len(self._entries) >= MAX_ENTRIES and key not in self._entries:
            oldest = next(iter(self._entries))
            self._drop(oldest)
        self._drop(key)
        self._entries[key] = known
        self._keys_of.setdefault(known.user_id, set()).add(key)

    def _drop(self, key: Key) -> None:
        known = self._entries.pop(key, None)
        if known is not None:
            keys = self._keys_of.get(known.user_id)
            if keys is not None:
                keys.discard(key)
                if not keys:
                    del self._keys_of[known.user_id]

    def forget(self, key: Key) -> None:
        self.epoch += 1
        self._drop(key)

    def forget_users(self, user_ids: set[int]) -> None:
        self.epoch += 1
        for user_id in user_ids:
            for key in list(self._keys_of.get(user_id, ())):
                self._drop(key)

    def forget_all(self) -> None:
        self.epoch += 1
        self._entries.clear()
        self._keys_of.clear()

    async def current(self) -> None:
        """Every change committed anywhere more than POLL_SECONDS ago is forgotten."""
        now = self.clock()
        if self._polled is not None and now - self._polled < POLL_SECONDS:
            return
        async with self._lock:
            now = self.clock()
            if self._polled is not None and now - self._polled < POLL_SECONDS:
                return
            await self._poll()
            self._polled = now  # the poll began after `now`: it saw what committed before

    async def _poll(self) -> None:
        c = ChatChange
        if self._newest is None:  # at start nothing is kept: only where to begin reading
            since: Any = select(func.coalesce(func.max(c.at_s), 0)).scalar_subquery()
        else:
            since = self._newest
        async with self.sessions() as s:
            query = select(c.id, c.user_id, c.at_s).where(c.at_s >= since - MARGIN_SECONDS)
            rows = (await s.execute(query)).all()
        changed = {r.user_id for r in rows if r.id not in self._seen}
        if changed and self._newest is not None:
            self.forget_users(changed)
        newest = max((r.at_s for r in rows), default=self._newest or 0)
        self._newest = max(newest, self._newest or 0)
        edge = self._newest - MARGIN_SECONDS
        self._seen = {r.id: r.at_s for r in rows if r.at_s >= edge}
        if self._pruned is None:  # the first prune PRUNE_SECONDS after the start
            self._pruned = self.clock()
        elif self.clock() - self._pruned >= PRUNE_SECONDS:
            self._pruned = self.clock()
            # beside the update, not before it: on SQLite a write waits for the one writer
            self._pruning = asyncio.create_task(self._prune(self._newest - KEEP_SECONDS))

    async def _prune(self, before: int) -> None:
        try:
            async with self.sessions() as s, s.begin():
                await s.execute(delete(ChatChange).where(ChatChange.at_s < before))
        except Exception:  # the next prune tries again; nothing depends on it meanwhile
            log.warning("could not delete old chat changes", exc_info=True)


# one listener per database engine, telling every KnownUsers on it (weakly held)
_ON_ENGINE: weakref.WeakKeyDictionary[Any, weakref.WeakSet[KnownUsers]] = (
    weakref.WeakKeyDictionary()
)


def _watch(engine: AsyncEngine, known: KnownUsers) -> None:
    sync = engine.sync_engine
    caches = _ON_ENGINE.get(sync)
    if caches is None:
        caches = _ON_ENGINE[sync] = weakref.WeakSet()
        event.listen(sync, "after_execute", _after_execute_of(caches))
    caches.add(known)


def _after_execute_of(caches: weakref.WeakSet[KnownUsers]) -> Callable[..., None]:
    def after_execute(_conn: Any, clause: Any, *_: Any) -> None:
        if not getattr(clause, "is_dml", False) or getattr(clause, "is_insert", False):
            return
        table = getattr(clause, "table", None)
        if getattr(table, "name", None) in WATCHED:
            for cache in list(caches):
                cache.forget_all()

    return after_execute
