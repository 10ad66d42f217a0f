"""Simulated Discord users for the stand-in: they run slash commands (only those the bot
registered, with the option types it declared), press buttons and type into autocomplete.
Their interactions reach the bot through the gateway or, in HTTP-interactions mode, as POSTs
signed with the application's Ed25519 key, exactly as Discord sends them."""

from __future__ import annotations

import asyncio
import contextlib
import json
import time
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

import httpx

from tests.peers.discord_models import Json, Message, iso_now, snowflake

if TYPE_CHECKING:
    from tests.peers.discord_api import DiscordPeer, SignedPost

COMMAND, COMPONENT, AUTOCOMPLETE = 2, 3, 4
LOADING = 1 << 7


@dataclass
class Interaction:
    id: str
    token: str
    type: int
    user_id: str
    channel_id: str
    guild_id: str | None
    data: Json
    locale: str
    message_id: str | None = None  # a component's message
    created: float = field(default_factory=time.monotonic)
    acknowledged: bool = False
    response_type: int | None = None
    original: str | None = None
    followups: list[str] = field(default_factory=list)
    choices: list[Json] | None = None
    http_status: int | None = None  # HTTP mode: our endpoint's answer
    edits_before: int = 0  # a component's message: its edits when pressed

    def payload(self, peer: DiscordPeer) -> Json:
        user = peer.users[self.user_id]
        channel = peer.channels[self.channel_id]
        data: Json = {"id": self.id, "application_id": peer.application_id, "type": self.type,
                      "token": self.token, "version": 1, "attachment_size_limit": 8388608,
                      "locale": self.locale, "app_permissions": "0", "entitlements": [],
                      "channel_id": self.channel_id, "channel": channel.to_json(peer),
                      "data": self.data}  # fmt: skip
        if self.guild_id:
            data |= {"guild_id": self.guild_id, "guild_locale": "en-US", "context": 0,
                     "guild": {"id": self.guild_id, "locale": "en-US", "features": []},
                     "authorizing_integration_owners": {"0": self.guild_id},
                     "member": {"user": user.user_json, "roles": [], "joined_at": iso_now(),
                                "deaf": False, "mute": False, "flags": 0,
                                "permissions": "2147483647"}}  # fmt: skip
        else:
            data |= {"user": user.user_json, "context": 1,
                     "authorizing_integration_owners": {"1": self.user_id}}  # fmt: skip
        if self.message_id is not None:
            data["message"] = peer.messages[self.message_id].to_json()
        return data


class SimUser:
    def __init__(self, peer: DiscordPeer, uid: str, name: str, locale: str) -> None:
        self.peer, self.id, self.name, self.locale = peer, uid, name, locale
        self.user_json: Json = {"id": uid, "username": name.lower(), "discriminator": "0",
                                "global_name": name, "avatar": None, "public_flags": 0}  # fmt: skip

    @property
    def messages(self) -> list[Message]:
        return self.peer.visible(self.id)

    def _registered(self, name: str, guild: str | None) -> Json:
        for scope in ([guild] if guild else []) + [""]:
            for c in self.peer.commands.get(scope or "", []):
                if c["name"] == name:
                    return c
        raise AssertionError(f"/{name} is not a registered command")

    def _options(self, declared: Json, given: dict[str, Any], focused: str | None) -> list[Json]:
        types = {o["name"]: o["type"] for o in declared.get("options", [])}
        out = []
        for key, value in given.items():
            assert key in types, f"/{declared['name']} has no option {key!r}"
            option = {"name": key, "type": types[key], "value": value}
            out.append(option | ({"focused": True} if key == focused else {}))
        return out

    def _new(self, kind: int, data: Json, channel: str | None, message: str | None) -> Interaction:
        channel_id = channel or self.peer.dm_channel(self.id).id
        guild = self.peer.channels[channel_id].guild_id
        i = Interaction(snowflake(), f"tok-{snowflake()}", kind, self.id, channel_id, guild,
                        data, self.locale, message)  # fmt: skip
        self.peer.interactions[i.id] = i
        return i

    async def command(self, name: str, channel: str | None = None, **options: Any) -> Interaction:
        guild = self.peer.channels[channel].guild_id if channel else None
        declared = self._registered(name, guild)
        data = {"id": declared["id"], "name": name, "type": 1}
        opts = self._options(declared, options, None)
        i = self._new(COMMAND, data | ({"options": opts} if opts else {}), channel, None)
        await self.deliver(i)
        return i

    async def autocomplete(
        self, name: str, option: str, typed: str, channel: str | None = None
    ) -> list[Json]:
        guild = self.peer.channels[channel].guild_id if channel else None
        declared = self._registered(name, guild)
        data = {"id": declared["id"], "name": name, "type": 1,
                "options": self._options(declared, {option: typed}, option)}  # fmt: skip
        i = self._new(AUTOCOMPLETE, data, channel, None)
        await self.deliver(i)
        await self.until(lambda: i.choices is not None, f"autocomplete of /{name}")
        return i.choices or []

    async def press(self, message: Message, label: str) -> Interaction:
        """Press a button by its label (a substring) or its exact custom_id."""
        for b in message.buttons():
            if b.get("custom_id") and (label in b["label"] or label == b["custom_id"]):
                return await self.press_id(message, b["custom_id"])
        raise AssertionError(f"no button {label!r} in {message.button_labels()}")

    async def press_id(self, message: Message, custom_id: str) -> Interaction:
        """A component interaction with any custom_id (a modified client can send one)."""
        data = {"custom_id": custom_id, "component_type": 2}
        i = self._new(COMPONENT, data, message.channel_id, message.id)
        i.edits_before = message.edits
        await self.deliver(i)
        return i

    async def deliver(self, i: Interaction) -> None:
        if self.peer.mode == "http":
            post = await post_signed(self.peer, i.payload(self.peer))
            i.http_status = post.status
            if post.status == 200 and isinstance(post.body, dict):
                self.peer.callback(i, post.body)
        else:
            await self.peer.gateway.dispatch("INTERACTION_CREATE", i.payload(self.peer))

    async def until(self, condition: Any, what: str, seconds: float = 10.0) -> None:
        deadline = time.monotonic() + seconds
        while not condition():
            left = deadline - time.monotonic()
            if left <= 0:
                raise AssertionError(f"timed out waiting for {what}\n{self.transcript()}")
            changed = self.peer.changed
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(changed.wait(), timeout=min(left, 0.2))

    async def answer(self, i: Interaction, expect: str) -> Message:
        """The message that answers this interaction (its original, edited, or a follow-up)
        once it reads `expect`."""
        found: list[Message] = []

        def ready() -> bool:
            ids = ([i.original] if i.original else []) + i.followups
            for mid in ids:
                m = self.peer.messages.get(mid)
                if m is None or m.flags & LOADING:
                    continue
                if mid == i.message_id and m.edits == i.edits_before:
                    continue  # the pressed message, not changed (yet)
                if expect in m.text:
                    found.append(m)
                    return True
            return False

        await self.until(ready, f"{expect!r} in answer to interaction {i.data}")
        return found[0]

    async def wait_for(self, expect: str, after: str | None = None) -> Message:
        """A message this user can see reading `expect`, newer than message id `after`."""
        found: list[Message] = []

        def ready() -> bool:
            for m in reversed(self.messages):
                if (after is None or int(m.id) > int(after)) and expect in m.text:
                    found.append(m)
                    return True
            return False

        await self.until(ready, f"a message with {expect!r}")
        return found[0]

    def transcript(self) -> str:
        lines = [f"#{m.id[-4:]} {m.text[:120]!r} {m.button_labels()}" for m in self.messages]
        return "\n".join(lines)


async def post_signed(
    peer: DiscordPeer,
    payload: Json,
    signature: str | None = "sign",
    timestamp: str | None = None,
    signed_body: Json | None = None,
) -> SignedPost:
    """POST an interaction to the bot's endpoint signed with the application's key, as
    Discord does (or with a chosen bad signature / timestamp, or none, or a signature made
    for `signed_body` sent with this payload)."""
    from tests.peers.discord_api import SignedPost

    assert peer.interactions_url, "no interactions endpoint configured"
    raw = json.dumps(payload).encode()
    ts = timestamp if timestamp is not None else str(int(time.time()))
    signed = raw if signed_body is None else json.dumps(signed_body).encode()
    headers = {"Content-Type": "application/json", "User-Agent": "Discord-Interactions/1.0"}
    if signature is not None:
        headers["X-Signature-Timestamp"] = ts
        headers["X-Signature-Ed25519"] = (
            peer.signing_key.sign(ts.encode() + signed).signature.hex()
            if signature == "sign"
            else signature
        )
    async with httpx.AsyncClient(timeout=10) as client:
        r = await client.post(peer.interactions_url, content=raw, headers=headers)
    try:
        body = r.json()
    except ValueError:
        body = r.text
    return SignedPost(r.status_code, body, raw)
