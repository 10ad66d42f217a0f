"""Outbox alerts to Discord: a DM to the user (opened with its Close button, closed, stop
moved, approvals with Confirm / Skip, failures; a closed trade with its card as the embed's
picture), within Discord's limits (bot/discord_rest.py).

A user whose DMs are closed (50007) gets one short note in the channel where they last used
the bot, saying alerts are paused and why (never the alert itself: it is about their money
and the channel may be public); they are marked unreachable and not retried until they use
the bot again (handlers/context.py marks them reachable on their next interaction)."""

from __future__ import annotations

import logging

import httpx
from sqlalchemy import select, update
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from bot.discord_flow import PLATFORM
from bot.discord_render import escape, message
from bot.discord_rest import CANNOT_DM, DiscordApiError, DiscordRest, RateLimited
from engine.notify import Delivery, OutgoingMessage, Transport
from handlers.alerts import alert_with_picture
from handlers.i18n import t
from storage.models import Identity

log = logging.getLogger(__name__)


class DiscordTransport:
    name = PLATFORM

    def __init__(self, rest: DiscordRest, sessions: async_sessionmaker[AsyncSession]) -> None:
        self.rest = rest
        self.sessions = sessions
        self._dms: dict[str, str] = {}  # Discord user -> their DM channel with the bot

    async def _identity(self, user_id: int) -> tuple[int, str, str | None] | None:
        async with self.sessions() as s:
            row = (
                await s.execute(
                    select(Identity.id, Identity.external_id, Identity.chat_id)
                    .where(
                        Identity.user_id == user_id,
                        Identity.platform == PLATFORM,
                        Identity.reachable.is_(True),
                    )
                    .order_by(Identity.id)
                )
            ).first()
        return (row[0], row[1], row[2]) if row else None

    async def deliver(self, msg: OutgoingMessage) -> Delivery:
        target = await self._identity(msg.user_id)
        if target is None:
            return Delivery("unreachable", error="no reachable Discord account")
        identity_id, discord_user, last_channel = target
        body = message(await alert_with_picture(msg.kind, msg.payload, msg.language), alert=True)
        dm: str | None = self._dms.get(discord_user)
        try:
            if dm is None:
                dm = await self.rest.open_dm(discord_user)
                if len(self._dms) > 50_000:
                    self._dms.clear()
                self._dms[discord_user] = dm  # the same channel every time: ask once
            await self.rest.send_message(dm, body)
        except RateLimited as exc:
            return Delivery("retry", exc.retry_after, "discord rate limit")
        except DiscordApiError as exc:
            self._dms.pop(discord_user, None)
            if exc.code == CANNOT_DM or exc.status in (403, 404):
                await self._dms_closed(identity_id, discord_user, last_channel, dm, msg.language)
                return Delivery("unreachable", error=f"discord {exc.code}: {exc.message[:150]}")
            if exc.status >= 500:
                return Delivery("retry", 5.0, f"discord {exc.status}")
            raise  # our bug (a malformed message): the dispatcher logs it and retries later
        except httpx.HTTPError as exc:
            return Delivery("retry", 5.0, type(exc).__name__)
        return Delivery("sent")

    async def _dms_closed(
        self, identity_id: int, user: str, channel: str | None, dm: str | None, language: str
    ) -> None:
        async with self.sessions() as s, s.begin():
            await s.execute(
                update(Identity).where(Identity.id == identity_id).values(reachable=False)
            )
        if not channel or channel == dm:
            return
        note = {
            "content": f"<@{user}> " + escape(t(language, "discord.dms_closed")),
            "allowed_mentions": {"users": [user]},  # only the person concerned is pinged
        }
        try:
            await self.rest.send_message(channel, note)
        except (DiscordApiError, httpx.HTTPError) as exc:  # no access there either: said once
            log.info("discord fallback note for identity %s failed: %s", identity_id, exc)


class FirstReachable:
    """Delivers through the first chat app where the user can be reached (Telegram, then
    Discord, say): one account may have both, and gets each alert once."""

    name = "chat"

    def __init__(self, transports: list[Transport]) -> None:
        self.transports = transports

    async def deliver(self, msg: OutgoingMessage) -> Delivery:
        result = Delivery("unreachable", error="no chat app")
        for transport in self.transports:
            result = await transport.deliver(msg)
            if result.status != "unreachable":
                return result
        return result
