"""What `maxxit run` says when it cannot start as configured: one clear line and an exit code
(bot/cli.py), never a traceback. /healthz is served before Telegram is tried.

An unreachable Telegram is not a reason to stop: the web server (webhooks of Discord and
Stripe, the connect page, /healthz) keeps serving and the bot keeps trying to connect, waiting
twice as long after each failure up to a cap. A token Telegram rejects stays fatal: no wait
makes it valid."""

from __future__ import annotations

import asyncio
import errno
import logging
import socket
from collections.abc import Callable
from dataclasses import dataclass

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
PORT_IN_USE = 4  # 3 was an unreachable Telegram, which no longer stops the process


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


@dataclass(slots=True)
class TelegramLink:
    """Telegram's connection as /healthz shows it: off (no token), connecting, on, or
    unreachable (with the last reason, which never holds the token)."""

    state: str = "off"
    reason: str = ""

    @property
    def degraded(self) -> bool:
        return self.state == "unreachable"


def rejected() -> StartupError:
    return StartupError(
        "Telegram rejected TELEGRAM_BOT_TOKEN: copy it again from @BotFather (/mybots)",
        TOKEN_REJECTED,
    )


async def connect_telegram(
    bot: TelegramBot,
    public_url: str | None,
    secret: str | None,
    link: TelegramLink,
    first_wait: float = 1.0,
    max_wait: float = 60.0,
    on_ready: Callable[[], None] | None = None,
) -> None:
    """Start the bot; while the Bot API is unreachable, try again after 1, 2, 4... seconds
    (at most `max_wait`). Returns once connected; raises StartupError for a rejected token."""
    wait = first_wait
    link.state = "connecting"
    while True:
        try:
            await bot.start(public_url, secret, on_ready=on_ready)
            link.state, link.reason = "on", ""
            return
        except InvalidToken:
            await _quietly_stop(bot)
            raise rejected() from None
        except (NetworkError, TimedOut) as exc:
            reason = exc.message if isinstance(exc, TelegramError) else str(exc)
            await _quietly_stop(bot)
        link.state, link.reason = "unreachable", reason[:200]
        log.warning(
            "Telegram's Bot API is not reachable (%s): check the network or TELEGRAM_API_URL; "
            "trying again in %.0fs, the web server keeps serving",
            link.reason,
            wait,
        )
        await asyncio.sleep(wait)
        wait = min(wait * 2, max_wait)


async def _quietly_stop(bot: TelegramBot) -> None:
    try:
        await bot.stop()
    except Exception:  # half-started: nothing more to release
        log.debug("telegram stop after a failed start", exc_info=True)
