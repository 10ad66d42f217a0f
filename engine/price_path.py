"""Writes on the price path go first.

A tick's closes (and its trailing starts) and the periodic checkpoint both write; on SQLite
there is one writer at a time, and a close waiting for the lock sleeps in SQLite's busy
handler while the checkpoint's next chunk takes the lock straight back: a stop's close
arriving during a checkpoint of 10,000 moved stops waited for most of it (bench/checkpoint.py).
So background writers of this process wait, between two of their short transactions, until
no price-path write is in flight. The checkpoint is not urgent (a restart loses at most the
stops moved since the last one); a close is. On PostgreSQL row locks already keep the two
apart; waiting there costs the checkpoint nothing that matters.
"""

from __future__ import annotations

import asyncio
from collections.abc import Iterator
from contextlib import contextmanager


class PricePathFirst:
    def __init__(self) -> None:
        self._writing = 0
        self._idle = asyncio.Event()
        self._idle.set()

    @contextmanager
    def writing(self) -> Iterator[None]:
        """Around a price-path write (a tick's closes, its trailing starts)."""
        self._writing += 1
        self._idle.clear()
        try:
            yield
        finally:
            self._writing -= 1
            if not self._writing:
                self._idle.set()

    async def wait_turn(self) -> None:
        """A background writer's turn: when no price-path write is in flight."""
        await self._idle.wait()
