"""One Discord interaction, from its payload to its answer, the same in both modes (gateway
and HTTP interactions): the payload becomes a handler `Request`, the interaction is deferred
at once (Discord allows 3 seconds and a handler may wait on a venue), the handlers decide,
and their `Response` replaces the deferred answer and follows up (bot/discord_render.py).

Only translation lives here: who may press what is decided by the handlers, as on Telegram."""

from __future__ import annotations

import logging
from typing import Any, Protocol

from bot.discord_commands import ANSWER, command_text, focused, options_of
from bot.discord_render import Json, Plan, plan
from handlers import suggest
from handlers.base import Request, Services
from handlers.router import Bot

log = logging.getLogger(__name__)
PLATFORM = "discord"
PING, COMMAND, COMPONENT, AUTOCOMPLETE, MODAL = 1, 2, 3, 4, 5


class Responder(Protocol):
    """How one mode answers an interaction (discord.py's objects, or our REST client)."""

    async def defer(self, ephemeral: bool, component: bool) -> None: ...

    async def edit_original(self, body: Json) -> None: ...

    async def followup(self, body: Json) -> None: ...


def person(payload: Json) -> Json:
    """The user behind an interaction: `member.user` in a server, `user` in a DM."""
    member = payload.get("member")
    user = member.get("user") if isinstance(member, dict) else payload.get("user")
    return user if isinstance(user, dict) else {}


def to_request(payload: Json) -> Request | None:
    """A slash command or a button press as the handlers' Request; None for anything else
    (or a payload without a user, which Discord never sends)."""
    user = person(payload)
    if not user.get("id") or user.get("bot"):
        return None
    data = payload.get("data") if isinstance(payload.get("data"), dict) else {}
    common: dict[str, Any] = {
        "platform": PLATFORM,
        "user_id": str(user["id"])[:64],
        "chat_id": str(payload.get("channel_id") or user["id"])[:64],
        # the language of the user's Discord app (e.g. "es-ES", "ru")
        "language_code": str(payload.get("locale") or "")[:16] or None,
        "username": str(user.get("username") or "")[:100] or None,
        "display_name": str(user.get("global_name") or user.get("username") or "")[:200],
    }
    kind = payload.get("type")
    if kind == COMPONENT:
        return Request(button=str(data.get("custom_id") or ""), **common)
    if kind == COMMAND:
        name = str(data.get("name") or "")
        text = command_text(name, options_of(data))
        if name != ANSWER and not text.startswith("/"):
            return None
        return Request(text=text, **common)
    return None


async def choices(services: Services, payload: Json) -> list[Json]:
    """Autocomplete: agent names for the option being typed (only `agent` has any)."""
    data = payload.get("data") if isinstance(payload.get("data"), dict) else {}
    typed = focused(data)
    if typed is None or typed[0] != "agent":
        return []
    names = await suggest.agent_names(services, typed[1][:100])
    return [{"name": n[:100], "value": n[:100]} for n in names]


def in_guild(payload: Json) -> bool:
    return bool(payload.get("guild_id"))


async def answer(bot: Bot, payload: Json, responder: Responder, deferred: bool = False) -> None:
    """Answer a command or button interaction (`deferred`: the mode already did)."""
    request = to_request(payload)
    if request is None:
        return
    component = payload.get("type") == COMPONENT
    if not deferred:
        await responder.defer(in_guild(payload), component)
    response = await bot.handle(request)
    await carry_out(plan(response, component, in_guild(payload)), responder)


async def carry_out(todo: Plan, responder: Responder) -> None:
    if todo.original is not None:
        await responder.edit_original(todo.original)
    for body in todo.followups:
        await responder.followup(body)
