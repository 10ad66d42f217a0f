"""Rate limits on the web endpoints anyone can reach: per client IP and per link token,
answered with 429 and Retry-After. Counters are `limits` moving windows, in memory for one
process or in Redis shared by replicas (the same storage as the chat limits)."""

from __future__ import annotations

import math
import time

from limits import RateLimitItem, parse
from limits.aio.storage import Storage
from limits.aio.strategies import MovingWindowRateLimiter
from limits.storage import storage_from_string
from starlette.requests import Request
from starlette.responses import JSONResponse


class WebLimits:
    def __init__(
        self,
        per_ip: str = "60 per minute",
        per_token: str = "10 per 10 minutes",
        storage: Storage | None = None,
    ) -> None:
        self.limiter = MovingWindowRateLimiter(storage or storage_from_string("async+memory://"))
        self.per_ip: RateLimitItem = parse(per_ip)
        self.per_token: RateLimitItem = parse(per_token)

    async def _over(self, item: RateLimitItem, *key: str) -> JSONResponse | None:
        if await self.limiter.hit(item, "web", *key):
            return None
        stats = await self.limiter.get_window_stats(item, "web", *key)
        wait = max(1, math.ceil(stats.reset_time - time.time()))
        return JSONResponse(
            {"error": "refused", "reason": "too_many_requests"},
            status_code=429,
            headers={"Retry-After": str(wait)},
        )

    async def refuse(self, request: Request, route: str, token: str = "") -> JSONResponse | None:
        """None when the call may go on; else the 429 to send. The token counts per route:
        a page asking for a nonce and then verifying is two calls, not one budget."""
        ip = request.client.host if request.client else "unknown"
        over = await self._over(self.per_ip, "ip", ip)
        if over is None and token:
            over = await self._over(self.per_token, "token", route, token[:64])
        return over
