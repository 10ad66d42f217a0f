"""Discord's HTTP interactions (the mode for a PaaS webhook deploy): `POST
/discord/interactions` on our web server. The Ed25519 signature of timestamp + body is
checked with the application's public key, and a stale timestamp refused, before the body is
read as JSON; anything unsigned or badly signed gets 401 and changes nothing. PING is
answered with PONG, autocomplete at once; commands and buttons are deferred in the HTTP
answer and then answered through the interaction's webhook (bot/discord_rest.py)."""

from __future__ import annotations

import asyncio
import json
import logging
import time
from collections.abc import Callable, Mapping

import nacl.exceptions
import nacl.signing
from starlette.background import BackgroundTask
from starlette.requests import Request
from starlette.responses import JSONResponse, PlainTextResponse, Response
from starlette.routing import Route

from bot import discord_flow
from bot.discord_flow import AUTOCOMPLETE, COMMAND, COMPONENT, PING
from bot.discord_render import EPHEMERAL, Json
from bot.discord_rest import UNKNOWN_WEBHOOK, DiscordApiError, DiscordRest
from handlers.base import Services
from handlers.router import Bot

log = logging.getLogger(__name__)
MAX_BODY = 1 << 20
MAX_AGE_SECONDS = 300  # a signed request older (or newer) than this is a replay: refused
SIGNATURE, TIMESTAMP = "X-Signature-Ed25519", "X-Signature-Timestamp"
PONG, DEFERRED_MESSAGE, DEFERRED_UPDATE, AUTOCOMPLETE_RESULT = 1, 5, 6, 8


class WebhookResponder:
    """Answers through the interaction's webhook (its token, valid 15 minutes). Used by
    both modes after the deferral, so both render identically."""

    def __init__(self, rest: DiscordRest, payload: Json) -> None:
        self.rest = rest
        self.application_id = str(payload.get("application_id") or "")
        self.token = str(payload.get("token") or "")

    async def defer(self, ephemeral: bool, component: bool) -> None:
        raise NotImplementedError("HTTP interactions are deferred in the HTTP answer")

    async def edit_original(self, body: Json) -> None:
        for attempt in range(4):
            try:
                await self.rest.edit_original(self.application_id, self.token, body)
                return
            except DiscordApiError as exc:
                # our deferral may still be on its way to Discord: the webhook appears with it
                if exc.code != UNKNOWN_WEBHOOK or attempt == 3:
                    raise
                await asyncio.sleep(0.25 * (attempt + 1))

    async def followup(self, body: Json) -> None:
        await self.rest.followup(self.application_id, self.token, body)


def verified(
    public_key: nacl.signing.VerifyKey, request_headers: Mapping[str, str], body: bytes, now: float
) -> bool:
    """Discord's signature over timestamp + raw body, and a timestamp close to now."""
    signature, timestamp = request_headers.get(SIGNATURE), request_headers.get(TIMESTAMP)
    if not signature or not timestamp:
        return False
    try:
        public_key.verify(timestamp.encode() + body, bytes.fromhex(signature))
        sent_at = int(timestamp)
    except (nacl.exceptions.BadSignatureError, ValueError, TypeError):
        return False
    return abs(now - sent_at) <= MAX_AGE_SECONDS


def interactions_route(
    public_key_hex: str,
    bot: Bot,
    services: Services,
    rest: DiscordRest,
    clock: Callable[[], float] = time.time,
) -> Route:
    public_key = nacl.signing.VerifyKey(bytes.fromhex(public_key_hex))

    async def finish(payload: Json) -> None:
        # after our HTTP answer (the deferral) went out: run the handlers and follow up
        try:
            await discord_flow.answer(bot, payload, WebhookResponder(rest, payload), deferred=True)
        except Exception:
            log.exception("discord interaction %s failed", payload.get("id"))

    async def endpoint(request: Request) -> Response:
        body = await request.body()
        if len(body) > MAX_BODY:
            return PlainTextResponse("too large", status_code=413)
        if not verified(public_key, request.headers, body, clock()):
            return PlainTextResponse("invalid request signature", status_code=401)
        try:
            payload = json.loads(body)
        except ValueError:
            return PlainTextResponse("bad json", status_code=400)
        if not isinstance(payload, dict):
            return PlainTextResponse("not an interaction", status_code=400)
        kind = payload.get("type")
        if kind == PING:
            return JSONResponse({"type": PONG})
        if kind == AUTOCOMPLETE:
            found = await discord_flow.choices(services, payload)
            return JSONResponse({"type": AUTOCOMPLETE_RESULT, "data": {"choices": found}})
        if kind not in (COMMAND, COMPONENT) or discord_flow.to_request(payload) is None:
            return PlainTextResponse("unsupported interaction", status_code=400)
        if kind == COMPONENT:
            deferral: Json = {"type": DEFERRED_UPDATE}
        else:  # the "thinking" answer, private in a server (replies there may be about money)
            private = EPHEMERAL if discord_flow.in_guild(payload) else 0
            deferral = {"type": DEFERRED_MESSAGE, "data": {"flags": private}}
        return JSONResponse(deferral, background=BackgroundTask(finish, payload))

    return Route("/discord/interactions", endpoint, methods=["POST"])
