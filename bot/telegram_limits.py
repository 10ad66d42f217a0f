"""Telegram's flood limits as a PTB rate limiter: at most 30 messages a second overall and
one a second per chat, and a 429 pauses every request for the `retry_after` Telegram asks.

PTB's AIORateLimiter allows bursts (a leaky bucket of 30) and limits only group chats; we
space requests instead, so no one-second window ever holds more than the limit.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections.abc import Callable, Coroutine
from typing import Any

from aiolimiter import AsyncLimiter
from telegram.error import RetryAfter
from telegram.ext import BaseRateLimiter

log = logging.getLogger(__name__)
JSON = bool | dict[str, Any] | list[dict[str, Any]]


def retry_seconds(exc: RetryAfter) -> float:
    # the private timedelta: the public property warns while PTB moves from int to timedelta
    value = getattr(exc, "_retry_after", None)
    return value.total_seconds() if value is not None else 1.0


class ChatRateLimiter(BaseRateLimiter[int]):
    def __init__(
        self, overall_per_second: float = 30, per_chat_seconds: float = 1.0, max_retries: int = 2
    ) -> None:
        # capacity 1: requests are spaced evenly rather than allowed in bursts
        self._overall = AsyncLimiter(1, 1 / overall_per_second)
        self._per_chat_seconds = per_chat_seconds
        self._chats: dict[int | str, AsyncLimiter] = {}
        self._max_retries = max_retries
        self._resume_at = 0.0  # loop time before which nobody may call Telegram (after a 429)

    async def initialize(self) -> None:
        pass

    async def shutdown(self) -> None:
        pass

    def _chat(self, chat_id: int | str) -> AsyncLimiter:
        if len(self._chats) > 4096:  # forget idle chats
            for key, limiter in list(self._chats.items()):
                if limiter.has_capacity():
                    del self._chats[key]
        limiter = self._chats.get(chat_id)
        if limiter is None:
            limiter = self._chats[chat_id] = AsyncLimiter(1, self._per_chat_seconds)
        return limiter

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
            chat_limit = self._chat(chat_id) if counted else contextlib.nullcontext()
            try:
                async with chat_limit:
                    if counted:
                        async with self._overall:
                            await self._pause_if_asked()
                            return await callback(*args, **kwargs)
                    return await callback(*args, **kwargs)
            except RetryAfter as exc:
                seconds = retry_seconds(exc)
                loop = asyncio.get_running_loop()
                self._resume_at = max(self._resume_at, loop.time() + seconds + 0.1)
                log.warning("Telegram asked to wait %ss (attempt %d)", seconds, attempt + 1)
                if attempt == retries:
                    raise
        raise AssertionError("unreachable")
