"""The Discord gateway of the stand-in: a websocket speaking Discord's opcodes as plain JSON
text frames (the client asks for zlib-stream but decompresses binary frames only).

HELLO -> IDENTIFY -> READY + GUILD_CREATE per guild, HEARTBEAT answered with ACK, events
numbered per session, RECONNECT on demand and RESUME replaying what the client missed."""

from __future__ import annotations

import asyncio
import contextlib
import json
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

from aiohttp import WSMsgType, web

from tests.peers.discord_models import Json, iso_now, snowflake

if TYPE_CHECKING:
    from tests.peers.discord_api import DiscordPeer

DISPATCH, HEARTBEAT, IDENTIFY, RESUME = 0, 1, 2, 6
RECONNECT, INVALID_SESSION, HELLO, ACK = 7, 9, 10, 11
HEARTBEAT_MS = 41250


@dataclass
class Session:
    id: str
    seq: int = 0
    events: list[Json] = field(default_factory=list)  # sent or queued, for RESUME
    socket: web.WebSocketResponse | None = None


class Gateway:
    def __init__(self, peer: DiscordPeer) -> None:
        self.peer = peer
        self.sessions: dict[str, Session] = {}
        self.identifies = 0
        self.resumes = 0
        self.heartbeats = 0
        self.ready = asyncio.Event()

    async def handle(self, request: web.Request) -> web.WebSocketResponse:
        ws = web.WebSocketResponse()
        await ws.prepare(request)
        await ws.send_str(json.dumps({"op": HELLO, "d": {"heartbeat_interval": HEARTBEAT_MS}}))
        session: Session | None = None
        try:
            async for msg in ws:
                if msg.type != WSMsgType.TEXT:
                    continue
                frame = json.loads(msg.data)
                op, d = frame.get("op"), frame.get("d")
                if op == HEARTBEAT:
                    self.heartbeats += 1
                    await ws.send_str(json.dumps({"op": ACK}))
                elif op == IDENTIFY:
                    if d.get("token") != self.peer.token:
                        await ws.close(code=4004, message=b"Authentication failed.")
                        break
                    session = Session(snowflake())
                    session.socket = ws
                    self.sessions[session.id] = session
                    self.identifies += 1
                    await self._identified(session)
                elif op == RESUME:
                    session = self.sessions.get(d.get("session_id", ""))
                    if session is None or d.get("token") != self.peer.token:
                        await ws.send_str(json.dumps({"op": INVALID_SESSION, "d": False}))
                        continue
                    self.resumes += 1
                    session.socket = ws
                    for event in session.events:
                        if event["s"] > int(d.get("seq") or 0):
                            await ws.send_str(json.dumps(event))
                    await self._send(session, "RESUMED", {})
        finally:
            if session is not None and session.socket is ws:
                session.socket = None
        return ws

    async def _identified(self, session: Session) -> None:
        peer = self.peer
        guilds = [{"id": g, "unavailable": True} for g in peer.guilds]
        await self._send(session, "READY", {
            "v": 10, "user": peer.bot_user, "guilds": guilds, "session_id": session.id,
            "resume_gateway_url": peer.gateway_url, "shard": [0, 1],
            "application": {"id": peer.application_id, "flags": 0},
            "private_channels": [], "relationships": [],
        })  # fmt: skip
        for gid, g in peer.guilds.items():
            await self._send(session, "GUILD_CREATE", self._guild(gid, g))
        self.ready.set()

    def _guild(self, gid: str, g: Json) -> Json:
        everyone = {"id": gid, "name": "@everyone", "permissions": "0", "position": 0,
                    "color": 0, "hoist": False, "managed": False, "mentionable": False,
                    "flags": 0}  # fmt: skip
        channel = {"id": g["channel"], "type": 0, "name": "general", "position": 0,
                   "guild_id": gid, "permission_overwrites": [], "nsfw": False}  # fmt: skip
        return {"id": gid, "name": g["name"], "icon": None, "owner_id": "1", "roles": [everyone],
                "channels": [channel], "threads": [], "members": [], "member_count": 1,
                "emojis": [], "stickers": [], "features": [], "unavailable": False,
                "large": False, "joined_at": iso_now(), "voice_states": [], "presences": [],
                "stage_instances": [], "guild_scheduled_events": [], "verification_level": 0,
                "default_message_notifications": 0, "explicit_content_filter": 0,
                "mfa_level": 0, "premium_tier": 0, "preferred_locale": "en-US",
                "system_channel_flags": 0, "nsfw_level": 0}  # fmt: skip

    async def _send(self, session: Session, event: str, data: Any) -> None:
        session.seq += 1
        frame = {"op": DISPATCH, "t": event, "s": session.seq, "d": data}
        session.events.append(frame)
        if session.socket is not None and not session.socket.closed:
            with contextlib.suppress(ConnectionError, RuntimeError):
                await session.socket.send_str(json.dumps(frame))

    async def dispatch(self, event: str, data: Json) -> None:
        """An event for the bot: sent now, or kept for its RESUME if it is reconnecting."""
        if not self.sessions:
            raise AssertionError("the bot never IDENTIFYed")
        latest = list(self.sessions.values())[-1]
        await self._send(latest, event, data)

    async def reconnect(self) -> None:
        """Discord asks the client to reconnect (op 7); it should RESUME."""
        for s in self.sessions.values():
            if s.socket is not None and not s.socket.closed:
                await s.socket.send_str(json.dumps({"op": RECONNECT, "d": None}))

    async def drop(self) -> None:
        """The connection breaks without a word (a network fault)."""
        for s in self.sessions.values():
            if s.socket is not None:
                await s.socket.close(code=1011)

    async def close(self) -> None:
        for s in self.sessions.values():
            if s.socket is not None and not s.socket.closed:
                await s.socket.close(code=1001)
