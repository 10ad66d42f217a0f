"""Telegram's flood limits as a PTB rate limiter: at most 30 messages a second overall and
one a second per chat, and a 429 pauses every request for the `retry_after` Telegram asks.

PTB's AIORateLimiter allows bursts (a leaky bucket of 30) and limits only group chats; we
space requests instead, so no one-second window ever holds more than the limit.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Callable, Coroutine
from typing import Any

from aiolimiter import AsyncLimiter
from telegram.error import RetryAfter
from telegram.ext import BaseRateLimiter

from engine.coordination.send_budget import SharedSendBudget

log = logging.getLogger(__name__)
JSON = bool | dict[str, Any] | list[dict[str, Any]]


def retry_seconds(exc: RetryAfter) -> float:
    # the private timedelta: the public property warns while PTB moves from int to timedelta
    value = getattr(exc, "_retry_after", None)
    return value.total_seconds() if value is not None else 1.0


class ChatRateLimiter(BaseRateLimiter[int]):
    def __init__(
        self,
        overall_per_second: float = 30,
        per_chat_seconds: float = 1.0,
        max_retries: int = 2,
        shared: SharedSendBudget | None = None,
    ) -> None:
        # replicas: the same limits held by all of them together, in the database
        self._shared = shared
        # capacity 1: requests are spaced evenly rather than allowed in bursts
        self._overall = AsyncLimiter(1, 1 / overall_per_second)
        self._per_chat_seconds = per_chat_seconds
        # per chat: a lock (one request at a time) and when the last one went out; spacing is
        # measured from the actual send, after any wait for the overall limit
        self._chats: dict[int | str, tuple[asyncio.Lock, list[float]]] = {}
        self._max_retries = max_retries
        self._resume_at = 0.0  # loop time before which nobody may call Telegram (after a 429)

    async def initialize(self) -> None:
        pass

    async def shutdown(self) -> None:
        pass

    def _chat(self, chat_id: int | str) -> tuple[asyncio.Lock, list[float]]:
        if len(self._chats) > 4096:  # forget idle chats
            now = asyncio.get_running_loop().time()
            for key, (lock, last) in list(self._chats.items()):
                if not lock.locked() and now - last[0] > self._per_chat_seconds:
                    del self._chats[key]
        entry = self._chats.get(chat_id)
        if entry is None:
            entry = self._chats[chat_id] = (asyncio.Lock(), [float("-inf")])
        return entry

    async def _send(
        self, chat_id: int | str, callback: Callable[..., Coroutine[Any, Any, JSON]], args: Any,
        kwargs: dict[str, Any],
    ) -> JSON:  # fmt: skip
        loop = asyncio.get_running_loop()
        lock, last = self._chat(chat_id)
        async with lock:
            wait = last[0] + self._per_chat_seconds - loop.time()
            if wait > 0:
                await asyncio.sleep(wait)
            async with self._overall:
                if self._shared is not None:
                    await self._shared.take(chat_id)
                await self._pause_if_asked()
                last[0] = loop.time()
                return await callback(*args, **kwargs)

    async def _pause_if_asked(self) -> None:
        loop = asyncio.get_running_loop()
        # a later 429 may push the deadline further while we sleep: re-check after each nap
        while (wait := self._resume_at - loop.time()) > 0:  # noqa: ASYNC110
            await asyncio.sleep(wait)

    async def process_request(
        self,
        callback: Callable[..., Coroutine[Any, Any, JSON]],
        args: Any,
        kwargs: dict[str, Any],
        endpoint: str,
        data: dict[str, Any],
        rate_limit_args: int | None,
    ) -> JSON:
        chat_id = data.get("chat_id")
        # answers to button presses and getUpdates are not messages: only the 429 pause applies
        counted = chat_id is not None and endpoint != "answerCallbackQuery"
        retries = self._max_retries if rate_limit_args is None else rate_limit_args
        for attempt in range(retries + 1):
            await self._pause_if_asked()
            try:
                if counted:
                    return await self._send(chat_id, callback, args, kwargs)
                return await callback(*args, **kwargs)
            except RetryAfter as exc:
                seconds = retry_seconds(exc)
                loop = asyncio.get_running_loop()
                self._resume_at = max(self._resume_at, loop.time() + seconds + 0.1)
                log.warning("Telegram asked to wait %ss (attempt %d)", seconds, attempt + 1)
                if attempt == retries:
                    raise
        raise AssertionError("unreachable")
