"""Per-user and per-chat limits in front of every handler, whatever the chat app.

The router asks `ChatLimits.admit` before it touches the database, so a flood costs a counter
look-up per update and nothing else. A user (or a chat) over its rate is told once, politely,
and then ignored for a quiet period; everyone else is unaffected: each counter is keyed by
platform and id. Counters are `limits` moving windows (a burst of N, then N per window, as a
token bucket of capacity N behaves to the person sending), in memory for one process, or in
Redis when replicas share the work (`storage_uri` from REDIS_URL).

The same limiter throttles `/call` per agent: a creator's call trades for every follower.
"""

from __future__ import annotations

import enum
import time
from dataclasses import dataclass

from limits import RateLimitItem, parse
from limits.aio.storage import Storage
from limits.aio.strategies import MovingWindowRateLimiter
from limits.storage import storage_from_string

from handlers.base import Reply, Request, Response
from handlers.i18n import pick_language, t


class Admission(enum.Enum):
    OK = "ok"
    TOLD = "told"  # over the rate: this one gets the "slow down" reply
    IGNORED = "ignored"  # over the rate and already told: no reply at all


@dataclass(frozen=True, slots=True)
class LimitConfig:
    per_user: str = "20 per 10 seconds"
    per_chat: str = "40 per 10 seconds"
    quiet: str = "1 per 60 seconds"  # once told, ignored this long
    calls_per_agent: str = "6 per hour"


def storage_uri(redis_url: str | None) -> str:
    """Memory for one process; the replicas' shared Redis when there is one."""
    if not redis_url:
        return "async+memory://"
    scheme, _, rest = redis_url.partition("://")
    return f"async+{scheme}://{rest}"


@dataclass(frozen=True, slots=True)
class CallRate:
    """An agent's /call budget after this call: `used` of `allowed` per `window`."""

    allowed: bool
    used: int
    limit: int
    window: str  # "hour", "10 minutes": the limit's own (English) words
    per: int = 1  # the window as a count of units: 10 (minutes)
    unit: str = "hour"  # second, minute, hour, day, month, year
    retry_after: int = 0


class ChatLimits:
    def __init__(self, config: LimitConfig | None = None, storage: Storage | None = None) -> None:
        self.config = config or LimitConfig()
        self.storage = storage or storage_from_string("async+memory://")
        self.limiter = MovingWindowRateLimiter(self.storage)
        self.per_user: RateLimitItem = parse(self.config.per_user)
        self.per_chat: RateLimitItem = parse(self.config.per_chat)
        self.quiet: RateLimitItem = parse(self.config.quiet)
        self.per_agent: RateLimitItem = parse(self.config.calls_per_agent)

    async def _quiet(self, *key: str) -> bool:
        """Is this user or chat in its quiet period (told already)?"""
        return not await self.limiter.test(self.quiet, "chat-quiet", *key)

    async def admit(self, platform: str, user_id: str, chat_id: str) -> Admission:
        user_key, chat_key = (platform, "user", user_id), (platform, "chat", chat_id)
        if await self._quiet(*user_key) or await self._quiet(*chat_key):
            return Admission.IGNORED
        if not await self.limiter.hit(self.per_user, "chat-rate", *user_key):
            over = user_key
        elif not await self.limiter.hit(self.per_chat, "chat-rate", *chat_key):
            over = chat_key
        else:
            return Admission.OK
        # one hit of the quiet item decides who tells: concurrent updates of one flood race
        # here, and only the first of them wins the single slot
        told = await self.limiter.hit(self.quiet, "chat-quiet", *over)
        return Admission.TOLD if told else Admission.IGNORED

    async def call(self, agent_id: int) -> CallRate:
        """Count one /call for this agent, if its rate allows it."""
        key = ("call", str(agent_id))
        allowed = await self.limiter.hit(self.per_agent, *key)
        stats = await self.limiter.get_window_stats(self.per_agent, *key)
        limit = self.per_agent.amount
        retry = max(0, int(stats.reset_time - time.time()) + 1) if not allowed else 0
        window = self.per_agent.GRANULARITY.name
        if self.per_agent.multiples != 1:
            window = f"{self.per_agent.multiples} {window}s"
        per, unit = self.per_agent.multiples, self.per_agent.GRANULARITY.name
        return CallRate(allowed, limit - stats.remaining, limit, window, per, unit, retry)


def slow_down(req: Request, admission: Admission) -> Response:
    """The one polite answer to a flood; nothing at all after it."""
    if admission is not Admission.TOLD:
        return Response()
    text = t(pick_language(req.language_code), "limits.slow_down")
    if req.button is not None:
        return Response(notice=text, refused=True)
    return Response([Reply(text)])
