"""Discord inside `maxxit run`: which mode runs (gateway with a token; HTTP interactions with
a public key), command registration, the web route and the outbox transport."""

from __future__ import annotations

import logging
from dataclasses import dataclass, field
from typing import TYPE_CHECKING

from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker
from starlette.routing import Route

from bot.discord_commands import register_commands
from bot.discord_delivery import DiscordTransport
from bot.discord_http import interactions_route
from bot.discord_rest import DiscordApiError, DiscordRest
from bot.settings import Settings
from handlers.base import Services
from handlers.router import Bot

if TYPE_CHECKING:
    from bot.discord import DiscordGatewayBot

log = logging.getLogger(__name__)


@dataclass
class DiscordRuntime:
    rest: DiscordRest
    mode: str  # "gateway" or "http"
    gateway: DiscordGatewayBot | None = None
    routes: list[Route] = field(default_factory=list)
    transport: DiscordTransport | None = None  # DM alerts need the bot token

    async def stop(self) -> None:
        if self.gateway is not None:
            await self.gateway.stop()
        await self.rest.aclose()


async def start_discord(
    settings: Settings,
    handlers: Bot,
    services: Services,
    sessions: async_sessionmaker[AsyncSession],
) -> DiscordRuntime | None:
    secret = settings.discord_bot_token
    token = secret.get_secret_value() if secret is not None else None
    if not token and not settings.discord_public_key:
        return None
    rest = DiscordRest(token, settings.discord_api_url)
    if settings.discord_public_key:
        # Discord posts interactions to us; a gateway session would receive none of them
        route = interactions_route(settings.discord_public_key, handlers, services, rest)
        runtime = DiscordRuntime(rest, "http", routes=[route])
    else:
        assert token is not None
        # discord.py is imported only when the gateway runs (it is slow to import)
        from bot.discord import DiscordGatewayBot

        gateway = DiscordGatewayBot(
            token, handlers, services, rest, settings.discord_api_url, settings.discord_gateway()
        )
        await gateway.start()
        runtime = DiscordRuntime(rest, "gateway", gateway=gateway)
    if token:
        runtime.transport = DiscordTransport(rest, sessions)
        try:
            app_id = settings.discord_application_id or (
                runtime.gateway.application_id if runtime.gateway else await rest.application_id()
            )
            await register_commands(rest, app_id, settings.discord_guild_id or "")
        except DiscordApiError as exc:  # commands stay as last registered; the bot still runs
            log.error("Discord command registration failed: %s", exc)
    return runtime
