"""The Discord gateway transport (discord.py 2.x), for a laptop or a worker: discord.py holds
the websocket (IDENTIFY, heartbeats, RESUME), receives interactions and sends the immediate
answer (deferral, autocomplete); the rest of each answer goes through the interaction's
webhook with our REST client, exactly as in HTTP-interactions mode (bot/discord_http.py),
so both modes show the same messages. No business logic here: bot/discord_flow.py translates,
the handlers decide.

discord.py has no base-URL option: `Route.BASE` and `DiscordWebSocket.DEFAULT_GATEWAY` are
the class attributes every request and connection reads, so DISCORD_API_URL and
DISCORD_GATEWAY_URL are applied there (one Discord client per process)."""

from __future__ import annotations

import asyncio
import contextlib
import logging

import discord
import yarl
from discord.app_commands import Choice
from discord.gateway import DiscordWebSocket
from discord.http import Route

from bot import discord_flow
from bot.discord_http import WebhookResponder
from bot.discord_render import Json
from bot.discord_rest import DiscordRest
from handlers.base import Services
from handlers.router import Bot

log = logging.getLogger(__name__)


def point_at(api_url: str, gateway_url: str) -> None:
    Route.BASE = api_url.rstrip("/")
    DiscordWebSocket.DEFAULT_GATEWAY = yarl.URL(gateway_url)


def payload_of(interaction: discord.Interaction) -> Json:
    """The parts of the interaction's payload the flow reads (discord.py keeps `data` raw)."""
    user = interaction.user
    payload: Json = {
        "id": str(interaction.id),
        "application_id": str(interaction.application_id),
        "type": interaction.type.value,
        "token": interaction.token,
        "data": interaction.data or {},
        "channel_id": str(interaction.channel_id or ""),
        "locale": interaction.locale.value,
        "user": {
            "id": str(user.id),
            "username": user.name,
            "global_name": user.global_name,
            "bot": user.bot,
        },
    }
    if interaction.guild_id:
        payload["guild_id"] = str(interaction.guild_id)
    return payload


class GatewayResponder(WebhookResponder):
    """Defers through discord.py (the interaction callback), then answers by webhook."""

    def __init__(self, rest: DiscordRest, payload: Json, interaction: discord.Interaction) -> None:
        super().__init__(rest, payload)
        self.interaction = interaction

    async def defer(self, ephemeral: bool, component: bool) -> None:
        if component:
            await self.interaction.response.defer()  # type 6: the pressed message may change
        else:
            await self.interaction.response.defer(ephemeral=ephemeral, thinking=True)


class DiscordGatewayBot:
    def __init__(
        self,
        token: str,
        handlers: Bot,
        services: Services,
        rest: DiscordRest,
        api_url: str,
        gateway_url: str,
        guild_ready_timeout: float = 2.0,
    ) -> None:
        point_at(api_url, gateway_url)
        self._token = token
        self.handlers, self.services, self.rest = handlers, services, rest
        # interactions need no privileged intents; guilds lets discord.py know its servers
        self.client = discord.Client(
            intents=discord.Intents(guilds=True), guild_ready_timeout=guild_ready_timeout
        )
        self.client.event(self.on_interaction)
        self._task: asyncio.Task[None] | None = None

    async def on_interaction(self, interaction: discord.Interaction) -> None:
        payload = payload_of(interaction)
        try:
            if interaction.type is discord.InteractionType.autocomplete:
                found = await discord_flow.choices(self.services, payload)
                await interaction.response.autocomplete(
                    [Choice(name=c["name"], value=c["value"]) for c in found]
                )
                return
            responder = GatewayResponder(self.rest, payload, interaction)
            await discord_flow.answer(self.handlers, payload, responder)
        except Exception:
            log.exception("discord interaction %s failed", interaction.id)

    async def start(self, ready_within: float = 60.0) -> None:
        """Log in, connect the gateway and wait until READY (raises if that fails)."""
        self._task = asyncio.create_task(self.client.start(self._token))
        ready = asyncio.create_task(self.client.wait_until_ready())
        done, _ = await asyncio.wait(
            {self._task, ready}, timeout=ready_within, return_when=asyncio.FIRST_COMPLETED
        )
        if ready not in done:
            ready.cancel()
            if self._task in done:
                self._task.result()  # the login's own error (a bad token, say)
            raise TimeoutError("Discord gateway not ready")

    @property
    def application_id(self) -> str:
        return str(self.client.application_id or "")

    async def stop(self) -> None:
        await self.client.close()
        if self._task is not None:
            with contextlib.suppress(asyncio.CancelledError, Exception):
                await self._task
