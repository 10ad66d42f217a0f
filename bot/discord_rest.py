"""A small Discord REST client (httpx) within Discord's rate limits: at most 50 bot requests
a second (spaced, not in bursts), per-route buckets learnt from the `X-RateLimit-*` headers
(a bucket with nothing left waits for its reset), and a 429 waited out for its
`retry_after` (every request pauses when Discord says the limit is global). Interaction
webhooks (follow-ups, @original edits) carry their own token and are outside the global limit.
A body with files (a chart) goes as multipart/form-data: the JSON as `payload_json`, each
file as `files[n]`, as Discord's uploads require.

discord.py's client cannot serve HTTP interactions and its REST client lives inside a
logged-in Client; this one serves both modes and the outbox."""

from __future__ import annotations

import asyncio
import json as jsonlib
import logging
import time
from dataclasses import dataclass, field
from typing import Any

import httpx
from aiolimiter import AsyncLimiter

from bot.discord_render import FILES

log = logging.getLogger(__name__)
DEFAULT_API = "https://discord.com/api/v10"
# JSON error codes we act on
CANNOT_DM = 50007
UNKNOWN_WEBHOOK = 10015


class DiscordApiError(Exception):
    def __init__(self, status: int, code: int, message: str) -> None:
        super().__init__(f"{status} (code {code}): {message}")
        self.status, self.code, self.message = status, code, message


class RateLimited(DiscordApiError):
    """Still limited after waiting as long as we are willing to block a caller."""

    def __init__(self, retry_after: float, is_global: bool) -> None:
        super().__init__(429, 0, "rate limited")
        self.retry_after, self.is_global = retry_after, is_global


@dataclass
class _Bucket:
    remaining: int = 1
    resets_at: float = 0.0  # monotonic
    lock: asyncio.Lock = field(default_factory=asyncio.Lock)


class DiscordRest:
    def __init__(
        self,
        token: str | None,
        api_url: str = DEFAULT_API,
        global_per_second: float = 50,
        max_wait: float = 30.0,
        client: httpx.AsyncClient | None = None,
    ) -> None:
        self._token = token
        self.api_url = api_url.rstrip("/")
        self._client = client or httpx.AsyncClient(timeout=15)
        # capacity 1: requests are spaced evenly, so no one-second window holds more than 50
        self._global = AsyncLimiter(1, 1 / global_per_second)
        self._paused_until = 0.0  # monotonic; set by a global 429
        self._buckets: dict[str, _Bucket] = {}
        self.max_wait = max_wait  # a longer 429 is handed back to the caller (the outbox retries)

    async def aclose(self) -> None:
        await self._client.aclose()

    def _bucket(self, key: str) -> _Bucket:
        bucket = self._buckets.get(key)
        if bucket is None:
            if len(self._buckets) > 10_000:  # forget idle buckets (one per DM channel)
                self._buckets = {k: b for k, b in self._buckets.items() if b.lock.locked()}
            bucket = self._buckets[key] = _Bucket()
        return bucket

    async def request(
        self, method: str, route: str, major: str = "", json: Any = None, bot: bool = True,
        **params: str,
    ) -> Any:  # fmt: skip
        """`route` is the path template ("/channels/{channel}/messages"); `params` fill it.
        The bucket is the route with its major parameter (channel, webhook token), as
        Discord counts them."""
        path = route.format(**params)
        bucket = self._bucket(f"{method} {route} {major}")
        async with bucket.lock:  # one request per bucket at a time: the headers stay true
            for _ in range(5):
                await self._wait(bucket, bot)
                response = await self._send(method, path, json, bot)
                self._learn(bucket, response)
                if response.status_code != 429:
                    return self._result(response)
                await self._on_429(response)
        raise RateLimited(self.max_wait, False)

    async def _wait(self, bucket: _Bucket, bot: bool) -> None:
        # a global 429 pauses everyone; a later one may push the end further: check again
        while (pause := self._paused_until - time.monotonic()) > 0:  # noqa: ASYNC110
            await asyncio.sleep(pause)
        if bucket.remaining <= 0 and (wait := bucket.resets_at - time.monotonic()) > 0:
            if wait > self.max_wait:
                raise RateLimited(wait, False)
            await asyncio.sleep(wait)
        if bot:
            await self._global.acquire()

    async def _send(self, method: str, path: str, json: Any, bot: bool) -> httpx.Response:
        headers = {"User-Agent": "DiscordBot (https://github.com/maxxit, 1.0)"}
        if bot and self._token:
            headers["Authorization"] = f"Bot {self._token}"
        url = f"{self.api_url}{path}"
        if isinstance(json, dict) and FILES in json:
            payload = {k: v for k, v in json.items() if k != FILES}
            files = [
                (f"files[{n}]", (name, data, "image/png"))
                for n, (name, data) in enumerate(json[FILES])
            ]
            return await self._client.request(
                method, url, data={"payload_json": jsonlib.dumps(payload)}, files=files,
                headers=headers,
            )  # fmt: skip
        return await self._client.request(method, url, json=json, headers=headers)

    def _learn(self, bucket: _Bucket, response: httpx.Response) -> None:
        h = response.headers
        remaining, reset_after = h.get("X-RateLimit-Remaining"), h.get("X-RateLimit-Reset-After")
        if remaining is None or reset_after is None:
            return
        try:
            bucket.remaining = int(remaining)
            bucket.resets_at = time.monotonic() + float(reset_after)
        except ValueError:
            return

    async def _on_429(self, response: httpx.Response) -> None:
        try:
            body = response.json()
            retry_after = float(body.get("retry_after", 1.0))
            is_global = bool(body.get("global", False))
        except (ValueError, AttributeError):
            # a 429 without Discord's JSON (a proxy, a Cloudflare ban): not ours to retry fast
            raise DiscordApiError(429, 0, response.text[:200]) from None
        log.warning("Discord asked to wait %.2fs (global=%s)", retry_after, is_global)
        if retry_after > self.max_wait:
            raise RateLimited(retry_after, is_global)
        if is_global:
            self._paused_until = max(self._paused_until, time.monotonic() + retry_after)
        await asyncio.sleep(retry_after)

    @staticmethod
    def _result(response: httpx.Response) -> Any:
        if response.status_code == 204:
            return None
        try:
            data = response.json()
        except ValueError:
            data = {"message": response.text[:200]}
        if response.status_code >= 400:
            data = data if isinstance(data, dict) else {}
            raise DiscordApiError(
                response.status_code, int(data.get("code") or 0), str(data.get("message", ""))
            )
        return data

    # ---- the calls we make ----
    async def application_id(self) -> str:
        data = await self.request("GET", "/oauth2/applications/@me")
        return str(data["id"])

    async def put_commands(self, application_id: str, commands: list[Any], guild: str = "") -> Any:
        if guild:
            route = "/applications/{app}/guilds/{guild}/commands"
            return await self.request("PUT", route, guild, commands, app=application_id,
                                      guild=guild)  # fmt: skip
        route = "/applications/{app}/commands"
        return await self.request("PUT", route, "", commands, app=application_id)

    async def open_dm(self, user_id: str) -> str:
        data = await self.request("POST", "/users/@me/channels", "", {"recipient_id": user_id})
        return str(data["id"])

    async def send_message(self, channel_id: str, body: dict[str, Any]) -> Any:
        route = "/channels/{channel}/messages"
        return await self.request("POST", route, channel_id, body, channel=channel_id)

    async def interaction_callback(self, interaction_id: str, token: str, body: Any) -> Any:
        route = "/interactions/{id}/{token}/callback"
        return await self.request("POST", route, token, body, bot=False, id=interaction_id,
                                  token=token)  # fmt: skip

    async def edit_original(self, application_id: str, token: str, body: Any) -> Any:
        route = "/webhooks/{app}/{token}/messages/@original"
        return await self.request("PATCH", route, token, body, bot=False, app=application_id,
                                  token=token)  # fmt: skip

    async def followup(self, application_id: str, token: str, body: Any) -> Any:
        route = "/webhooks/{app}/{token}?wait=true"  # wait: Discord answers with the message
        return await self.request("POST", route, token, body, bot=False, app=application_id,
                                  token=token)  # fmt: skip
