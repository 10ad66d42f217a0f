"""The interaction half of the Discord stand-in: the initial callback (answered in the
`with_response=1` shape discord.py reads), and the interaction webhook (follow-ups, the
original response read, edited and deleted), valid 15 minutes after the interaction."""

from __future__ import annotations

import time
from typing import TYPE_CHECKING

from aiohttp import web

from tests.peers.discord_models import (
    ALREADY_ACKNOWLEDGED,
    EPHEMERAL,
    UNKNOWN_INTERACTION,
    UNKNOWN_MESSAGE,
    UNKNOWN_WEBHOOK,
    DiscordError,
    Json,
    Message,
    check_message,
    json_response,
)
from tests.peers.discord_uploads import BODY
from tests.peers.discord_users import Interaction

if TYPE_CHECKING:
    from tests.peers.discord_api import DiscordPeer

LOADING = 1 << 7  # the "Bot is thinking..." message of a deferred interaction
CALLBACK_SECONDS = 3.0  # Discord forgets an interaction not answered within this


class InteractionRoutes:
    async def _callback_route(self: DiscordPeer, request: web.Request) -> web.Response:
        interaction = self.interactions.get(request.match_info["interaction"])
        if interaction is None or interaction.token != request.match_info["token"]:
            raise UNKNOWN_INTERACTION
        return json_response(self.callback(interaction, request[BODY] or {}))

    def callback(self: DiscordPeer, interaction: Interaction, body: Json) -> Json:
        """An interaction's initial response (a POST to /callback, or our HTTP answer)."""
        if interaction.acknowledged:
            raise ALREADY_ACKNOWLEDGED
        if time.monotonic() - interaction.created > CALLBACK_SECONDS:
            raise UNKNOWN_INTERACTION
        kind = body.get("type")
        data = body.get("data") or {}
        interaction.acknowledged = True
        interaction.response_type = kind
        result: Json = {"interaction": {"id": interaction.id, "type": interaction.type,
                                        "response_message_loading": kind == 5,
                                        "response_message_ephemeral": bool(
                                            (data.get("flags") or 0) & EPHEMERAL)}}  # fmt: skip
        message: Message | None = None
        if kind in (4, 5):
            fields = check_message(data, partial=kind == 5) if kind == 4 else {}
            flags = int(data.get("flags") or 0) | (LOADING if kind == 5 else 0)
            message = self._post(interaction.channel_id, fields, flags, interaction)
            interaction.original = message.id
        elif kind in (6, 7):
            if interaction.message_id is None:
                interaction.acknowledged = False
                raise DiscordError(400, 40004, "Interaction is not a component interaction")
            message = self.messages[interaction.message_id]
            interaction.original = message.id
            if kind == 7:
                message.apply(check_message(data, partial=True))
        elif kind == 8:
            interaction.choices = data.get("choices") or []
            if len(interaction.choices) > 25:
                raise DiscordError(400, 50035, "Invalid Form Body", {"choices": "max 25"})
        elif kind != 9:
            interaction.acknowledged = False
            raise DiscordError(400, 50035, "Invalid Form Body", {"type": str(kind)})
        if message is not None:
            result["interaction"]["response_message_id"] = message.id
            result["resource"] = {"type": kind, "message": message.to_json()}
        self._touch()
        return result

    def _interaction_by_token(self: DiscordPeer, request: web.Request) -> Interaction:
        if request.match_info["app"] != self.application_id:
            raise UNKNOWN_WEBHOOK
        for i in self.interactions.values():
            if i.token == request.match_info["token"]:
                if not i.acknowledged:
                    raise UNKNOWN_WEBHOOK
                if time.monotonic() - i.created > 15 * 60:
                    raise DiscordError(401, 50027, "Invalid Webhook Token")
                return i
        raise UNKNOWN_WEBHOOK

    def _hook_message(self: DiscordPeer, request: web.Request) -> tuple[Interaction, Message]:
        interaction = self._interaction_by_token(request)
        mid = request.match_info["message"]
        mid = interaction.original if mid == "@original" else mid
        message = self.messages.get(mid or "")
        if message is None or (mid != interaction.original and mid not in interaction.followups):
            raise UNKNOWN_MESSAGE
        return interaction, message

    async def _followup(self: DiscordPeer, request: web.Request) -> web.Response:
        interaction = self._interaction_by_token(request)
        fields = self.message_fields(request, interaction.channel_id)
        message = self._post(interaction.channel_id, fields, int(fields.get("flags") or 0),
                             interaction)  # fmt: skip
        interaction.followups.append(message.id)
        return json_response(message.to_json())

    async def _get_hook_message(self: DiscordPeer, request: web.Request) -> web.Response:
        return json_response(self._hook_message(request)[1].to_json())

    async def _edit_hook_message(self: DiscordPeer, request: web.Request) -> web.Response:
        _, message = self._hook_message(request)
        changes = self.message_fields(request, message.channel_id, message)
        message.flags &= ~LOADING
        message.apply(changes)
        if not (message.content.strip() or message.embeds):
            raise DiscordError(400, 50006, "Cannot send an empty message")
        return json_response(message.to_json())

    async def _delete_hook_message(self: DiscordPeer, request: web.Request) -> web.Response:
        _, message = self._hook_message(request)
        del self.messages[message.id]
        return web.Response(status=204)
