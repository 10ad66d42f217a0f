"""The pinned trade monitor on Telegram (/monitor, handlers/monitor.py): sends the message
once and pins it, then edits it as prices move, at most once per `interval` per chat and only
when its text changed. Edits go through the bot's rate limiter, so they share Telegram's send
budget (30 a second, 1 a second per chat, replicas together) and its 429 pauses with the
alerts. A message the user deleted ("message to edit not found") is forgotten, and so is the
monitor of a user who blocked the bot. Which replica edits which chat is claimed in the
database (engine/notify_monitor.py); the message id is kept there, so a restart edits the
same message."""

from __future__ import annotations

import contextlib
import logging
from collections.abc import Callable
from datetime import datetime, timedelta

from telegram import Bot as PTBBot
from telegram.error import BadRequest, Forbidden, TelegramError

from engine import notify_monitor
from engine.notify_monitor import MonitorRow
from handlers.base import Services
from handlers.monitor import monitor_text
from storage.types import utcnow

log = logging.getLogger(__name__)
PLATFORM = "telegram"
GONE = ("message to edit not found", "can't be edited", "chat not found")


class TelegramMonitor:
    def __init__(
        self,
        bot: PTBBot,
        services: Services,
        editor: str,
        interval: timedelta = timedelta(seconds=5),
        lease: timedelta = timedelta(seconds=30),
        clock: Callable[[], datetime] = utcnow,
    ) -> None:
        self.bot = bot
        self.services = services
        self.editor = editor  # this replica's name in the claims
        self.interval = interval
        self.lease = lease
        self.clock = clock

    async def round(self) -> int:
        """One pass over this replica's monitors; how many messages were sent or edited."""
        now = self.clock()
        sessions = self.services.sessions
        rows = await notify_monitor.claim(sessions, PLATFORM, self.editor, now, self.lease)
        done = 0
        for row in rows:
            try:
                done += await self._one(row, now)
            except TelegramError as exc:  # a 429 past the limiter's retries, a network error
                log.warning("trade monitor %d not updated: %s", row.id, exc.message)
        return done

    async def _one(self, row: MonitorRow, now: datetime) -> int:
        sessions = self.services.sessions
        chat = int(row.chat_id)
        if row.stopping:
            if row.message_id is not None:
                with contextlib.suppress(BadRequest, Forbidden):  # already gone: fine
                    await self.bot.unpin_chat_message(chat, message_id=int(row.message_id))
            await notify_monitor.forget(sessions, row.id)
            return 0
        text = await monitor_text(self.services, row.user_id, row.language)
        try:
            if row.message_id is None:
                sent = await self.bot.send_message(chat, text)
                # kept before pinning: a failed pin must not make a second message
                await notify_monitor.shown(sessions, row.id, text, now, str(sent.message_id))
                with contextlib.suppress(BadRequest):  # not allowed to pin: it still edits
                    await self.bot.pin_chat_message(
                        chat, sent.message_id, disable_notification=True
                    )
                return 1
            if text == row.text:
                return 0
            if row.edited_at is not None and now - row.edited_at < self.interval:
                return 0  # changed, but edited recently: the next round after the interval
            await self.bot.edit_message_text(text, chat_id=chat, message_id=int(row.message_id))
        except Forbidden:  # blocked the bot
            await notify_monitor.forget(sessions, row.id)
            return 0
        except BadRequest as exc:
            if any(gone in exc.message.lower() for gone in GONE):
                await notify_monitor.forget(sessions, row.id)
                return 0
            if "not modified" not in exc.message.lower():
                raise
        await notify_monitor.shown(sessions, row.id, text, now)
        return 1
