"""Updates of different users handled at once, each user's in the order they were sent: one
slow reply (a venue round trip) no longer holds up everyone else, and a user's two quick
messages are still answered in order (PTB's concurrent_updates with a per-user lock)."""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable
from typing import Any

from telegram import Update
from telegram.ext import BaseUpdateProcessor


def _sender(update: object) -> int | None:
    if isinstance(update, Update) and update.effective_user is not None:
        return update.effective_user.id
    return None


class PerUserOrder(BaseUpdateProcessor):
    def __init__(self, max_concurrent_updates: int = 256) -> None:
        super().__init__(max_concurrent_updates)
        self._locks: dict[int, asyncio.Lock] = {}
        self._waiting: dict[int, int] = {}

    async def do_process_update(self, update: object, coroutine: Awaitable[Any]) -> None:
        user = _sender(update)
        if user is None:
            await coroutine
            return
        lock = self._locks.setdefault(user, asyncio.Lock())
        self._waiting[user] = self._waiting.get(user, 0) + 1
        try:
            async with lock:
                await coroutine
        finally:
            self._waiting[user] -= 1
            if not self._waiting[user]:  # nobody queued behind: forget the lock
                del self._waiting[user]
                self._locks.pop(user, None)

    async def initialize(self) -> None:
        return None

    async def shutdown(self) -> None:
        return None
