"""What `maxxit run` says when it cannot start as configured: one clear line and an exit code
(bot/cli.py), never a traceback. /healthz is served before Telegram is tried."""

from __future__ import annotations

import errno
import logging
import socket

from telegram.error import InvalidToken, NetworkError, TelegramError, TimedOut

from bot.telegram import TelegramBot

log = logging.getLogger(__name__)

NO_TOKEN = (
    "TELEGRAM_BOT_TOKEN is not set, so the bot is not on Telegram (the engine and the web "
    "server run). Get a token from @BotFather on Telegram (/newbot) and put it in .env as "
    "TELEGRAM_BOT_TOKEN=...; or talk to the bot in this terminal with `maxxit chat`."
)


class StartupError(Exception):
    """Configuration or environment that stops `maxxit run`: the message is the one line."""

    def __init__(self, message: str, code: int) -> None:
        super().__init__(message)
        self.code = code


TOKEN_REJECTED = 2
TELEGRAM_UNREACHABLE = 3
PORT_IN_USE = 4


def check_port(host: str, port: int) -> None:
    if port == 0:  # the system picks a free one
        return
    probe = socket.socket(socket.AF_INET6 if ":" in host else socket.AF_INET)
    probe.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    try:
        probe.bind((host, port))
    except OSError as exc:
        if exc.errno in (errno.EADDRINUSE, errno.EACCES):
            raise StartupError(
                f"port {port} on {host} is in use (or not allowed): stop what holds it, "
                "or set PORT to another port",
                PORT_IN_USE,
            ) from None
        raise
    finally:
        probe.close()


async def start_telegram(bot: TelegramBot, public_url: str | None, secret: str | None) -> str:
    """'on', or the StartupError saying why Telegram could not be reached or refused us."""
    try:
        await bot.start(public_url, secret)
        return "on"
    except InvalidToken:
        error = StartupError(
            "Telegram rejected TELEGRAM_BOT_TOKEN: copy it again from @BotFather (/mybots)",
            TOKEN_REJECTED,
        )
    except (NetworkError, TimedOut) as exc:
        reason = exc.message if isinstance(exc, TelegramError) else str(exc)
        error = StartupError(
            f"Telegram's Bot API is not reachable from here ({reason}): check the network "
            "or TELEGRAM_API_URL",
            TELEGRAM_UNREACHABLE,
        )
    await _quietly_stop(bot)
    raise error


async def _quietly_stop(bot: TelegramBot) -> None:
    try:
        await bot.stop()
    except Exception:  # half-started: nothing more to release
        log.debug("telegram stop after a failed start", exc_info=True)
