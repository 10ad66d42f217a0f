"""The boundary between chat apps and what the bot does: a `Request` in, a `Response` out.

Transports (Telegram, Discord, the console) build a Request from their own update and render
the Response their own way; nothing here knows which app is on the other side.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import datetime
from typing import TYPE_CHECKING, Any

from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from engine.venues.hyperliquid_rules import MAINNET_URL
from storage.types import utcnow

if TYPE_CHECKING:
    from engine.pipeline import Engine

MAX_TEXT = 4000  # Telegram allows 4096; room for the transport's own additions


@dataclass(frozen=True, slots=True)
class Request:
    platform: str  # "telegram", "discord", "console"
    user_id: str  # the chat app's id of the person (not ours)
    chat_id: str
    text: str = ""  # a message, or empty for a button press
    button: str | None = None  # callback data of a pressed button
    language_code: str | None = None
    username: str | None = None
    display_name: str = ""

    @property
    def command(self) -> tuple[str, str] | None:
        """("deploy", "TrendHawk") for "/deploy@maxxit_bot TrendHawk"; None for plain text."""
        text = self.text.strip()
        if self.button is not None or not text.startswith("/"):
            return None
        head, _, rest = text.partition(" ")
        name = head[1:].split("@", 1)[0].lower()
        return name, rest.strip()


@dataclass(frozen=True, slots=True)
class Button:
    label: str
    data: str | None = None  # callback data (<= 64 bytes, see handlers/callbacks.py)
    url: str | None = None


@dataclass(slots=True)
class Reply:
    text: str
    buttons: list[list[Button]] = field(default_factory=list)
    photo: bytes | None = None  # PNG
    edit: bool = False  # replace the message whose button was pressed, instead of a new one


@dataclass(slots=True)
class Response:
    replies: list[Reply] = field(default_factory=list)
    # the small pop-up answer to a button press; `refused` shows it as an alert
    notice: str | None = None
    refused: bool = False


@dataclass(slots=True)
class Services:
    """What handlers may use: the database, the engine, and settings-like knobs."""

    sessions: async_sessionmaker[AsyncSession]
    engine: Engine
    clock: Callable[[], datetime] = utcnow
    bot_username: str = "maxxit_bot"
    page_size: int = 5
    # where the connect page is served (PUBLIC_URL, or the local web server)
    public_url: str = "http://localhost:8080"
    siwe_chain_ids: frozenset[int] = frozenset({1, 42161})
    # live trading: the agent-key vault and Hyperliquid's API (None: paper only)
    vault: Any = None
    hyperliquid_url: str | None = None
    # Arbitrum: the Safes a wallet owns and the module state of each
    # (wallets/safe_gateway.SafeGateway on an RPC node; None: not configured)
    safes: Any = None
    # paid agents: engine/subscriptions.Subscriptions (None: Stripe not configured)
    subscriptions: Any = None
    # users' URLs (feeds, webhooks): engine/net/safe_http.SafeFetcher (None: the default one)
    safe_http: Any = None
    # Ostium: the delegation state of a wallet (wallets/ostium_delegation.DelegationReader on
    # an Arbitrum node; None: Ostium live trading is off)
    ostium: Any = None
    # per-user, per-chat and per-agent /call limits (handlers/limits.ChatLimits; None: none)
    limits: Any = None
    # known chat accounts kept in memory (handlers/known_users.KnownUsers; None: read each
    # update's from the database); handlers/router.Bot makes one
    known: Any = None

    @property
    def hyperliquid_mainnet(self) -> bool:
        # the SDK signs for mainnet only at its mainnet URL; so do we
        return self.hyperliquid_url == MAINNET_URL


class UserError(Exception):
    """Bad input: the handler replies with this message key (and fields), nothing changes."""

    def __init__(self, key: str, **fields: object) -> None:
        super().__init__(key)
        self.key = key
        self.fields = fields
