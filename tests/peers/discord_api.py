"""A local stand-in for Discord that unmodified discord.py (and our own REST client) talk to
over 127.0.0.1: the REST API under a configurable base (`/api/v10`), the gateway websocket
(tests/peers/discord_gateway.py), and signed HTTP interactions posted to our endpoint.

It answers the way Discord does where clients care: `Content-Type: application/json`
exactly, `X-RateLimit-*` headers on every bot request, 429s with a `Via` header and a JSON
body `{message, retry_after, global}`, interaction callbacks answered in the
`with_response=1` shape, 50007 for a user whose DMs are closed, and 400s for messages Discord
would refuse (tests/peers/discord_models.py)."""

from __future__ import annotations

import asyncio
import math
import socket
import time
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from typing import Any

from aiohttp import web

from tests.peers.discord_gateway import Gateway
from tests.peers.discord_interactions import InteractionRoutes
from tests.peers.discord_models import (
    CANNOT_DM,
    EPHEMERAL,
    UNAUTHORIZED,
    UNKNOWN_MESSAGE,
    DiscordError,
    Json,
    Message,
    check_message,
    json_response,
    snowflake,
)
from tests.peers.discord_uploads import BODY, UPLOADS, attachments_of, read_body
from tests.peers.discord_users import Interaction, SimUser


@dataclass
class Call:
    method: str
    path: str
    route: str
    status: int
    body: Any = None


@dataclass
class Bucket:
    limit: int
    window: float
    used: int = 0
    resets_at: float = 0.0


@dataclass
class Channel:
    id: str
    type: int  # 1 DM, 0 guild text
    guild_id: str | None = None
    recipient: str | None = None  # DM: the user

    def to_json(self, peer: DiscordPeer) -> Json:
        data: Json = {"id": self.id, "type": self.type}
        if self.type == 1 and self.recipient:
            data["recipients"] = [peer.users[self.recipient].user_json]
        if self.guild_id:
            data |= {"guild_id": self.guild_id, "name": "general", "position": 0}
        return data


@dataclass
class Failure:
    status: int
    retry_after: float = 1.0
    is_global: bool = False


class DiscordPeer(InteractionRoutes):
    def __init__(
        self,
        token: str = "MTIz.discord-test-token",
        application_id: str = "1100000000000000001",
        bucket_limit: int = 5,
        bucket_seconds: float = 5.0,
        global_per_second: int = 50,
    ) -> None:
        import nacl.signing

        self.token = token
        self.application_id = application_id
        self.bot_user: Json = {"id": application_id, "username": "Maxxit", "discriminator": "0",
                               "global_name": None, "avatar": None, "bot": True,
                               "public_flags": 0}  # fmt: skip
        self.signing_key = nacl.signing.SigningKey.generate()
        self.public_key = self.signing_key.verify_key.encode().hex()
        self.bucket_limit, self.bucket_seconds = bucket_limit, bucket_seconds
        self.global_per_second = global_per_second
        self.users: dict[str, SimUser] = {}
        self.guilds: dict[str, Json] = {}
        self.channels: dict[str, Channel] = {}
        self.messages: dict[str, Message] = {}
        self.commands: dict[str, list[Json]] = {}  # "" global, else guild id
        self.interactions: dict[str, Interaction] = {}
        self.calls: list[Call] = []
        self.closed_dms: set[str] = set()
        self.interactions_url: str | None = None  # our endpoint, in HTTP-interactions mode
        self.mode = "gateway"
        self.gateway = Gateway(self)
        self._failures: dict[str, list[Failure]] = {}
        self._buckets: dict[str, Bucket] = {}
        self._global_window: tuple[int, int] = (0, 0)
        self._runner: web.AppRunner | None = None
        self.base_url = self.gateway_url = ""
        self.changed = asyncio.Event()

    # ---- lifecycle ----
    async def __aenter__(self) -> DiscordPeer:
        app = web.Application(middlewares=[self._middleware])
        app.router.add_get("/", self.gateway.handle)  # the gateway: same host, at the root
        r = app.router
        api = "/api/v10"
        r.add_get(f"{api}/users/@me", self._me)
        r.add_get(f"{api}/users/{{user}}", self._get_user)
        r.add_get(f"{api}/oauth2/applications/@me", self._application)
        r.add_get(f"{api}/gateway", self._gateway_url)
        r.add_get(f"{api}/gateway/bot", self._gateway_url)
        r.add_put(f"{api}/applications/{{app}}/commands", self._put_commands)
        r.add_get(f"{api}/applications/{{app}}/commands", self._get_commands)
        r.add_put(f"{api}/applications/{{app}}/guilds/{{guild}}/commands", self._put_commands)
        r.add_get(f"{api}/applications/{{app}}/guilds/{{guild}}/commands", self._get_commands)
        r.add_post(f"{api}/interactions/{{interaction}}/{{token}}/callback", self._callback_route)
        hook = f"{api}/webhooks/{{app}}/{{token}}"
        r.add_post(hook, self._followup)
        r.add_get(f"{hook}/messages/{{message}}", self._get_hook_message)
        r.add_patch(f"{hook}/messages/{{message}}", self._edit_hook_message)
        r.add_delete(f"{hook}/messages/{{message}}", self._delete_hook_message)
        r.add_post(f"{api}/users/@me/channels", self._open_dm)
        r.add_post(f"{api}/channels/{{channel}}/messages", self._create_message)
        r.add_patch(f"{api}/channels/{{channel}}/messages/{{message}}", self._edit_message)
        self._runner = web.AppRunner(app, access_log=None)
        await self._runner.setup()
        sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM, socket.IPPROTO_TCP)
        sock.bind(("127.0.0.1", 0))
        await web.SockSite(self._runner, sock).start()
        root = f"127.0.0.1:{sock.getsockname()[1]}"
        self.base_url, self.gateway_url = f"http://{root}{api}", f"ws://{root}/"
        return self

    async def __aexit__(self, *exc: object) -> None:
        await self.gateway.close()
        if self._runner is not None:
            await self._runner.cleanup()

    # ---- the world ----
    def user(self, uid: int | str, name: str = "user", locale: str = "en-US") -> SimUser:
        u = SimUser(self, str(uid), name, locale)
        self.users[u.id] = u
        return u

    def guild(self, gid: int | str = "900000000000000001") -> tuple[str, str]:
        """A server the bot is in, with one text channel: (guild id, channel id)."""
        gid = str(gid)
        channel = Channel(snowflake(), 0, gid)
        self.channels[channel.id] = channel
        self.guilds[gid] = {"id": gid, "name": "Traders", "channel": channel.id}
        return gid, channel.id

    def dm_channel(self, user_id: str) -> Channel:
        for c in self.channels.values():
            if c.type == 1 and c.recipient == user_id:
                return c
        c = Channel(snowflake(), 1, recipient=user_id)
        self.channels[c.id] = c
        return c

    def close_dms(self, user_id: str) -> None:
        self.closed_dms.add(str(user_id))

    def fail_next(
        self, route: str, status: int = 429, retry_after: float = 1.0, is_global: bool = False
    ) -> None:
        """The next request whose route template contains `route` fails like this."""
        self._failures.setdefault(route, []).append(Failure(status, retry_after, is_global))

    def calls_to(self, fragment: str, method: str | None = None) -> list[Call]:
        return [c for c in self.calls if fragment in c.route and method in (None, c.method)]

    def _touch(self) -> None:
        self.changed.set()
        self.changed = asyncio.Event()

    # ---- middleware: auth, limits, errors, log ----
    @web.middleware
    async def _middleware(
        self, request: web.Request, handler: Callable[[web.Request], Awaitable[web.StreamResponse]]
    ) -> web.StreamResponse:
        if request.path == "/":
            return await handler(request)
        info = request.match_info
        route = info.route.resource.canonical if info.route.resource else request.path
        webhook = "/webhooks/" in route or "/interactions/" in route
        headers: dict[str, str] = {}
        call = Call(request.method, request.path, route, 0)
        self.calls.append(call)
        try:
            call.body, request[UPLOADS] = await read_body(request)
            request[BODY] = call.body
            if not webhook and request.headers.get("Authorization") != f"Bot {self.token}":
                raise UNAUTHORIZED
            major = info.get("channel") or info.get("token") or info.get("guild") or ""
            limited = self._limit(f"{request.method} {route}", major, webhook, headers)
            response = limited or await handler(request)
        except DiscordError as e:
            response = json_response(e.body(), e.status)
        for k, v in headers.items():
            response.headers[k] = v
        call.status = response.status
        self._touch()
        return response

    def _limit(
        self, route: str, major: str, webhook: bool, headers: dict[str, str]
    ) -> web.Response | None:
        for fragment, queued in self._failures.items():
            if queued and fragment in route:
                failure = queued.pop(0)
                if failure.status == 429:
                    return self._too_many(failure.retry_after, failure.is_global, "user")
                raise DiscordError(failure.status, 0, f"{failure.status}: injected failure")
        now = time.time()
        if not webhook:  # interaction endpoints are not bound by the global limit
            second, used = self._global_window
            used = used + 1 if second == int(now) else 1
            self._global_window = (int(now), used)
            if used > self.global_per_second:
                return self._too_many(round(int(now) + 1 - now, 3), True, "global")
        key = f"{route}|{major}"
        bucket = self._buckets.setdefault(key, Bucket(self.bucket_limit, self.bucket_seconds))
        if now >= bucket.resets_at:
            bucket.used, bucket.resets_at = 0, now + bucket.window
        bucket.used += 1
        reset_after = round(bucket.resets_at - now, 3)
        headers |= {
            "X-RateLimit-Limit": str(bucket.limit),
            "X-RateLimit-Remaining": str(max(0, bucket.limit - bucket.used)),
            "X-RateLimit-Reset": f"{bucket.resets_at:.3f}",
            "X-RateLimit-Reset-After": f"{reset_after:.3f}",
            "X-RateLimit-Bucket": format(abs(hash(route)) % 16**12, "012x"),
        }
        if bucket.used > bucket.limit:
            return self._too_many(reset_after, False, "user")
        return None

    def _too_many(self, retry_after: float, is_global: bool, scope: str) -> web.Response:
        headers = {"Via": "1.1 google", "Retry-After": str(math.ceil(retry_after)),
                   "X-RateLimit-Scope": scope}  # fmt: skip
        if is_global:
            headers["X-RateLimit-Global"] = "true"
        body = {"message": "You are being rate limited.", "retry_after": retry_after,
                "global": is_global}  # fmt: skip
        return json_response(body, 429, headers)

    # ---- bot and application ----
    async def _me(self, _: web.Request) -> web.Response:
        return json_response(self.bot_user)

    async def _get_user(self, request: web.Request) -> web.Response:
        user = self.users.get(request.match_info["user"])
        if user is None:
            raise DiscordError(404, 10013, "Unknown User")
        return json_response(user.user_json)

    async def _application(self, _: web.Request) -> web.Response:
        owner = {"id": "1", "username": "owner", "discriminator": "0", "avatar": None}
        return json_response({"id": self.application_id, "name": "Maxxit", "description": "",
                      "icon": None, "bot_public": True, "bot_require_code_grant": False,
                      "owner": owner, "verify_key": self.public_key, "flags": 0,
                      "summary": "", "team": None})  # fmt: skip

    async def _gateway_url(self, _: web.Request) -> web.Response:
        limit = {"total": 1000, "remaining": 1000, "reset_after": 0, "max_concurrency": 1}
        return json_response({"url": self.gateway_url, "shards": 1, "session_start_limit": limit})

    async def _put_commands(self, request: web.Request) -> web.Response:
        if request.match_info["app"] != self.application_id:
            raise DiscordError(403, 50001, "Missing Access")
        body = await request.json()
        if not isinstance(body, list) or len(body) > 100:
            raise DiscordError(400, 50035, "Invalid Form Body")
        names = [c.get("name") for c in body]
        if len(set(names)) != len(names) or not all(
            isinstance(n, str) and n.islower() and 1 <= len(n) <= 32 for n in names
        ):
            raise DiscordError(400, 50035, "Invalid Form Body", {"name": "APPLICATION_COMMAND"})
        for c in body:
            if not 1 <= len(c.get("description", "")) <= 100 or len(c.get("options", [])) > 25:
                raise DiscordError(400, 50035, "Invalid Form Body", {"description": c["name"]})
        scope = request.match_info.get("guild", "")
        self.commands[scope] = [
            c | {"id": snowflake(), "application_id": self.application_id, "version": "1"}
            for c in body
        ]
        return json_response(self.commands[scope])

    async def _get_commands(self, request: web.Request) -> web.Response:
        return json_response(self.commands.get(request.match_info.get("guild", ""), []))

    # ---- channels and messages ----
    async def _open_dm(self, request: web.Request) -> web.Response:
        recipient = str((request[BODY] or {}).get("recipient_id"))
        if recipient not in self.users:
            raise DiscordError(400, 50033, "Invalid Recipient(s)")
        return json_response(self.dm_channel(recipient).to_json(self))

    async def _create_message(self, request: web.Request) -> web.Response:
        channel = self.channels.get(request.match_info["channel"])
        if channel is None:
            raise DiscordError(404, 10003, "Unknown Channel")
        if channel.type == 1 and channel.recipient in self.closed_dms:
            raise CANNOT_DM
        message = self._post(channel.id, self.message_fields(request, channel.id), 0, None)
        return json_response(message.to_json())

    async def _edit_message(self, request: web.Request) -> web.Response:
        message = self.messages.get(request.match_info["message"])
        if message is None or message.channel_id != request.match_info["channel"]:
            raise UNKNOWN_MESSAGE
        message.apply(self.message_fields(request, message.channel_id, message))
        return json_response(message.to_json())

    def message_fields(
        self, request: web.Request, channel_id: str, editing: Message | None = None
    ) -> Json:
        """A create (or an edit of `editing`) as Discord validates it, files included."""
        body = request[BODY]
        if not isinstance(body, dict):
            raise DiscordError(400, 50109, "The request body contains invalid JSON.")
        uploads = request[UPLOADS]
        files = None
        if uploads or "attachments" in body:
            files = attachments_of(body, uploads, channel_id, editing and editing.attachments)
        return check_message(body, partial=editing is not None, attachments=files)

    def _post(
        self, channel_id: str, fields: Json, flags: int, interaction: Interaction | None
    ) -> Message:
        channel = self.channels[channel_id]
        content = {k: v for k, v in fields.items() if k != "flags"}
        message = Message(snowflake(), channel_id, self.bot_user, flags=flags, **content)
        message.guild_id = channel.guild_id
        if interaction is not None:
            message.interaction_owner = interaction.user_id
            if flags & EPHEMERAL:
                message.visible_to = interaction.user_id
        self.messages[message.id] = message
        return message

    def visible(self, user_id: str) -> list[Message]:
        """Messages this user can read: their DMs, and in servers what is public or theirs."""
        out = []
        for m in self.messages.values():
            channel = self.channels[m.channel_id]
            if m.visible_to is not None:
                if m.visible_to == user_id:
                    out.append(m)
                continue
            if channel.type == 1 and channel.recipient != user_id:
                continue
            out.append(m)
        return out


@dataclass
class SignedPost:
    """One HTTP interaction we posted to the bot's endpoint and what came back."""

    status: int
    body: Any = None
    raw: bytes = field(default=b"", repr=False)
