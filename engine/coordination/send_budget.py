"""Telegram's flood limits held by all replicas together: before a message goes out, the
sender takes a slot in the current one-second window, overall (30) and for its chat (1), in
the database. A window that is full makes the sender wait for the next second. One short
transaction per message, none across the chat API call."""

from __future__ import annotations

import asyncio
import time
from collections.abc import Callable
from datetime import UTC, datetime, timedelta

from sqlalchemy import delete
from sqlalchemy.dialects import postgresql, sqlite
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from storage.models import SendBudgetSlot


class SharedSendBudget:
    def __init__(
        self,
        sessions: async_sessionmaker[AsyncSession],
        overall_per_second: int = 30,
        per_chat_per_second: int = 1,
        clock: Callable[[], float] = time.time,
    ) -> None:
        self.sessions = sessions
        self.overall = overall_per_second
        self.per_chat = per_chat_per_second
        self.clock = clock
        self._taken = 0

    async def take(self, chat_id: int | str) -> None:
        """Wait until this replica may send one message to `chat_id` without any one-second
        window holding more than the limits, across every replica."""
        while True:
            second = int(self.clock())
            overall, chat = await self._reserve(second, chat_id)
            if overall <= self.overall and chat <= self.per_chat:
                if int(self.clock()) == second:
                    return
                # the second ended while we counted: the message would land in the next one,
                # uncounted there; take a slot in that one (this one stays counted: safe side)
                continue
            # full: the slot stays counted (a little under the limit is safe, over is not)
            await asyncio.sleep(max(0.0, second + 1 - self.clock()))

    async def _reserve(self, second: int, chat_id: int | str) -> tuple[int, int]:
        expires = datetime.fromtimestamp(second + 2, UTC)
        async with self.sessions() as s, s.begin():
            counts = []
            for key in (f"all:{second}", f"chat:{chat_id}:{second}"):
                stmt = _insert(s).values(key=key, taken=1, expires_at=expires)
                stmt = stmt.on_conflict_do_update(
                    index_elements=["key"], set_={"taken": SendBudgetSlot.taken + 1}
                ).returning(SendBudgetSlot.taken)
                counts.append((await s.execute(stmt)).scalar_one())
            self._taken += 1
            if self._taken % 500 == 0:  # old windows are of no use: drop them now and then
                now = datetime.fromtimestamp(self.clock(), UTC) - timedelta(seconds=5)
                await s.execute(delete(SendBudgetSlot).where(SendBudgetSlot.expires_at < now))
        return counts[0], counts[1]


def _insert(session: AsyncSession):  # type: ignore[no-untyped-def]
    name = session.bind.dialect.name if session.bind else "sqlite"
    return (postgresql if name == "postgresql" else sqlite).insert(SendBudgetSlot)
