"""The Telegram transport (python-telegram-bot): updates become `Request`s for the handlers,
`Response`s become messages, edits and button answers; outbox alerts are delivered here.

No business logic lives in this module: it only translates between PTB and handlers/.
"""

from __future__ import annotations

import logging
import os
from collections.abc import Callable
from typing import Any

from sqlalchemy import select, update
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker
from telegram import Bot as PTBBot
from telegram import (
    BotCommand,
    InlineKeyboardButton,
    InlineKeyboardMarkup,
    InputFile,
    Message,
    Update,
)
from telegram.error import BadRequest, Forbidden, NetworkError, RetryAfter, TelegramError
from telegram.ext import (
    Application,
    ApplicationBuilder,
    CallbackQueryHandler,
    ContextTypes,
    MessageHandler,
    filters,
)

from bot.telegram_limits import ChatRateLimiter, retry_seconds
from bot.telegram_order import PerUserOrder
from engine.notify import Delivery, OutgoingMessage
from handlers.alerts import alert_with_picture
from handlers.base import Reply, Request, Response
from handlers.i18n import SUPPORTED, t
from handlers.router import MENU, Bot, acknowledge_first
from storage.models import Identity

# PTB 22 moves time periods from int seconds to timedelta and warns on every RetryAfter until
# told the new behaviour is wanted; we read them as timedelta throughout
os.environ.setdefault("PTB_TIMEDELTA", "true")

log = logging.getLogger(__name__)
# httpx logs every request URL at INFO, and a Bot API URL holds the bot token; PTB's own
# examples turn it down the same way
logging.getLogger("httpx").setLevel(logging.WARNING)
PLATFORM = "telegram"
UPDATES = ["message", "callback_query"]


def _markup(reply: Reply) -> InlineKeyboardMarkup | None:
    rows = [
        [
            InlineKeyboardButton(b.label[:64], url=b.url)
            if b.url
            else InlineKeyboardButton(b.label[:64], callback_data=b.data)
            for b in row
        ]
        for row in reply.buttons
        if row
    ]
    return InlineKeyboardMarkup(rows) if rows else None


def to_request(update: Update) -> Request | None:
    user = update.effective_user
    chat = update.effective_chat
    if user is None or chat is None or user.is_bot:
        return None
    common: dict[str, Any] = {
        "platform": PLATFORM,
        "user_id": str(user.id),
        "chat_id": str(chat.id),
        "language_code": user.language_code,
        "username": user.username,
        "display_name": user.full_name,
    }
    if update.callback_query is not None:
        return Request(button=update.callback_query.data or "", **common)
    if update.message is not None and update.message.text is not None:
        return Request(text=update.message.text, **common)
    return None


async def send(
    bot: PTBBot, chat_id: int | str, reply: Reply, editing: Message | None = None
) -> Message | bool:
    """Send a reply; with `editing`, replace that message (a button press's own message)."""
    markup = _markup(reply)
    if editing is not None and reply.edit and reply.photo is None:
        try:
            return await bot.edit_message_text(
                reply.text, chat_id=chat_id, message_id=editing.message_id, reply_markup=markup
            )
        except BadRequest as exc:
            if "not modified" in exc.message:
                return True  # the same press twice: nothing to change
            if "not found" not in exc.message and "can't be edited" not in exc.message:
                raise
            # too old or deleted: say it in a new message instead
    if reply.photo is not None:
        # named, so it goes up as image/png rather than anonymous bytes
        photo = InputFile(reply.photo, filename="maxxit.png")
        return await bot.send_photo(chat_id, photo, caption=reply.text[:1024], reply_markup=markup)
    return await bot.send_message(chat_id, reply.text, reply_markup=markup)


class TelegramBot:
    """The PTB application around our handlers."""

    def __init__(
        self,
        token: str,
        handlers: Bot,
        api_url: str = "https://api.telegram.org",
        limiter: ChatRateLimiter | None = None,
        webhook: bool = False,
    ) -> None:
        self.handlers = handlers
        builder: ApplicationBuilder = (
            ApplicationBuilder()
            .token(token)
            .base_url(f"{api_url.rstrip('/')}/bot")
            .base_file_url(f"{api_url.rstrip('/')}/file/bot")
            .rate_limiter(limiter or ChatRateLimiter())
            # users at once, each user's updates in order (bot/telegram_order.py)
            .concurrent_updates(PerUserOrder())
        )
        if webhook:
            builder = builder.updater(None)  # updates arrive through our web server
        self.app: Application = builder.build()  # type: ignore[type-arg]
        self.app.add_handler(
            MessageHandler(filters.ChatType.PRIVATE & filters.TEXT, self._on_message)
        )
        self.app.add_handler(CallbackQueryHandler(self._on_button))
        self.app.add_error_handler(self._on_error)

    @property
    def bot(self) -> PTBBot:
        return self.app.bot

    async def _on_message(self, update: Update, _: ContextTypes.DEFAULT_TYPE) -> None:
        req = to_request(update)
        if req is None or update.effective_chat is None:
            return
        response = await self.handlers.handle(req)
        for reply in response.replies:
            await send(self.bot, update.effective_chat.id, reply)

    async def _on_button(self, update: Update, _: ContextTypes.DEFAULT_TYPE) -> None:
        query = update.callback_query
        req = to_request(update)
        if query is None or req is None:
            return
        early = acknowledge_first(req.button or "")
        if early:  # slow work (a venue close): the spinner stops now, the result comes after
            await self._answer(query.id, Response())
        response = await self.handlers.handle(req)
        if not early:  # a quick answer: its notice (a refusal, say) is the press's pop-up
            await self._answer(query.id, response)
        message = query.message if isinstance(query.message, Message) else None
        chat_id = message.chat_id if message is not None else query.from_user.id
        replies = list(response.replies)
        if early and response.notice and (response.refused or not replies):
            replies.append(Reply(response.notice))  # too late for the pop-up: say it here
        for i, reply in enumerate(replies):
            # only the first reply may replace the pressed message; the rest are new ones
            await send(self.bot, chat_id, reply, editing=message if i == 0 else None)

    async def _answer(self, query_id: str, response: Response) -> None:
        try:
            await self.bot.answer_callback_query(
                query_id, text=(response.notice or "")[:200] or None, show_alert=response.refused
            )
        except BadRequest as exc:  # answered too late: the press still took effect
            log.info("callback answer failed: %s", exc.message)

    async def _on_error(self, update: object, context: ContextTypes.DEFAULT_TYPE) -> None:
        log.error("telegram update failed", exc_info=context.error)

    async def set_commands(self) -> None:
        """The command menu in every language we speak (Telegram picks by the user's app)."""
        for lang in (None, *SUPPORTED):
            commands = [BotCommand(name, t(lang or "en", f"cmd.{name}")) for name in MENU]
            await self.bot.set_my_commands(commands, language_code=lang)

    async def start(
        self,
        public_url: str | None = None,
        secret: str | None = None,
        poll_timeout: int = 10,
        on_ready: Callable[[], None] | None = None,
    ) -> None:
        """`on_ready` runs once Telegram has answered (getMe), before the first update."""
        await self.app.initialize()
        if on_ready is not None:
            on_ready()
        await self.set_commands()
        if public_url:
            await self.bot.set_webhook(
                f"{public_url.rstrip('/')}/telegram/webhook",
                secret_token=secret,
                allowed_updates=UPDATES,
            )
        else:
            assert self.app.updater is not None
            await self.app.updater.start_polling(allowed_updates=UPDATES, timeout=poll_timeout)
        await self.app.start()

    async def stop(self) -> None:
        if self.app.updater is not None and self.app.updater.running:
            await self.app.updater.stop()
        if self.app.running:
            await self.app.stop()
        await self.app.shutdown()

    async def feed(self, payload: dict[str, Any]) -> None:
        """An update posted to our webhook (its secret already checked)."""
        update = Update.de_json(payload, self.bot)
        await self.app.update_queue.put(update)


class TelegramTransport:
    """Delivers outbox alerts to the user's Telegram chat."""

    name = PLATFORM

    def __init__(
        self, bot: PTBBot, sessions: async_sessionmaker[AsyncSession], ready: bool = True
    ) -> None:
        self.bot = bot
        self.sessions = sessions
        # False while the Bot API is unreachable at start: alerts wait in the outbox
        self.ready = ready

    async def _chat(self, user_id: int) -> tuple[int, str] | None:
        async with self.sessions() as s:
            row = (
                await s.execute(
                    select(Identity.id, Identity.chat_id)
                    .where(
                        Identity.user_id == user_id,
                        Identity.platform == PLATFORM,
                        Identity.reachable.is_(True),
                        Identity.chat_id.is_not(None),
                    )
                    .order_by(Identity.id)
                )
            ).first()
        return (row[0], row[1]) if row else None

    async def deliver(self, message: OutgoingMessage) -> Delivery:
        if not self.ready:
            return Delivery("retry", 5.0, "telegram not connected yet")
        target = await self._chat(message.user_id)
        if target is None:
            return Delivery("unreachable", error="no reachable Telegram chat")
        identity_id, chat_id = target
        reply = await alert_with_picture(message.kind, message.payload, message.language)
        try:
            await send(self.bot, int(chat_id), reply)
        except RetryAfter as exc:
            return Delivery("retry", retry_seconds(exc), "telegram flood limit")
        except Forbidden as exc:
            # blocked or deactivated: stop trying until they write to us again
            async with self.sessions() as s, s.begin():
                await s.execute(
                    update(Identity).where(Identity.id == identity_id).values(reachable=False)
                )
            return Delivery("unreachable", error=exc.message[:200])
        except BadRequest as exc:
            if "chat not found" in exc.message:
                return Delivery("unreachable", error=exc.message[:200])
            raise  # our bug: the dispatcher logs it and retries later
        except (NetworkError, TelegramError) as exc:
            return Delivery("retry", 5.0, type(exc).__name__)
        return Delivery("sent")
