"""What the Discord stand-in stores and checks: messages as Discord returns them, and the
limits Discord enforces on what a bot sends (so our bugs fail here, not in production)."""

from __future__ import annotations

import itertools
import json
import re
import time
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any

Json = dict[str, Any]

# snowflakes: increasing ids like Discord's (time-ordered, large)
_snowflakes = itertools.count(int(time.time() * 1000 - 1420070400000) << 22)


def snowflake() -> str:
    return str(next(_snowflakes))


def iso_now() -> str:
    return datetime.now(UTC).isoformat()


class DiscordError(Exception):
    """An error answer as Discord sends it: HTTP status, JSON code and message."""

    def __init__(self, status: int, code: int, message: str, errors: Json | None = None) -> None:
        super().__init__(message)
        self.status, self.code, self.message, self.errors = status, code, message, errors

    def body(self) -> Json:
        return {"code": self.code, "message": self.message} | (
            {"errors": self.errors} if self.errors else {}
        )


def invalid_form(path: str, code: str, message: str) -> DiscordError:
    return DiscordError(400, 50035, "Invalid Form Body", {path: {"_errors": [{"code": code,
                        "message": message}]}})  # fmt: skip


CANNOT_DM = DiscordError(403, 50007, "Cannot send messages to this user")
EMPTY = DiscordError(400, 50006, "Cannot send an empty message")
UNKNOWN_MESSAGE = DiscordError(404, 10008, "Unknown Message")
UNKNOWN_WEBHOOK = DiscordError(404, 10015, "Unknown Webhook")
UNKNOWN_INTERACTION = DiscordError(404, 10062, "Unknown interaction")
ALREADY_ACKNOWLEDGED = DiscordError(400, 40060, "Interaction has already been acknowledged.")
UNAUTHORIZED = DiscordError(401, 0, "401: Unauthorized")

EPHEMERAL = 1 << 6


def json_response(data: Any, status: int = 200, headers: dict[str, str] | None = None) -> Any:
    from aiohttp import web

    # exactly "application/json": discord.py compares the whole header (a charset breaks it)
    return web.Response(
        body=json.dumps(data).encode(),
        status=status,
        headers={"Content-Type": "application/json", **(headers or {})},
    )


def check_components(rows: Any) -> list[Json]:
    """Action rows of buttons as Discord accepts them: <= 5 rows of <= 5 buttons, labels
    <= 80 characters, custom_id 1..100 characters and unique in the message, link buttons
    with an url and no custom_id."""
    if rows is None:
        return []
    if not isinstance(rows, list) or len(rows) > 5:
        raise invalid_form("components", "BASE_TYPE_MAX_LENGTH", "Must be 5 or fewer in length.")
    seen: set[str] = set()
    for i, row in enumerate(rows):
        if not isinstance(row, dict) or row.get("type") != 1:
            raise invalid_form(f"components.{i}.type", "UNION_TYPE_CHOICES", "Value of field "
                               '"type" must be one of (1,).')  # fmt: skip
        buttons = row.get("components") or []
        if not 1 <= len(buttons) <= 5:
            raise invalid_form(f"components.{i}.components", "BASE_TYPE_BAD_LENGTH",
                               "Must be between 1 and 5 in length.")  # fmt: skip
        for j, b in enumerate(buttons):
            where = f"components.{i}.components.{j}"
            label = b.get("label")
            if b.get("type") != 2 or not isinstance(label, str) or not 1 <= len(label) <= 80:
                raise invalid_form(f"{where}.label", "BASE_TYPE_BAD_LENGTH",
                                   "Must be between 1 and 80 in length.")  # fmt: skip
            if b.get("style") == 5:
                if not b.get("url") or "custom_id" in b:
                    raise invalid_form(f"{where}.url", "BUTTON_COMPONENT_URL_REQUIRED",
                                       "A url is required")  # fmt: skip
                continue
            custom_id = b.get("custom_id")
            if not isinstance(custom_id, str) or not 1 <= len(custom_id) <= 100:
                raise invalid_form(f"{where}.custom_id", "BASE_TYPE_BAD_LENGTH",
                                   "Must be between 1 and 100 in length.")  # fmt: skip
            if custom_id in seen:
                raise invalid_form(f"{where}.custom_id", "COMPONENT_CUSTOM_ID_DUPLICATED",
                                   "Component custom id cannot be duplicated")  # fmt: skip
            seen.add(custom_id)
    return rows


def check_message(body: Json, partial: bool = False, attachments: list[Json] | None = None) -> Json:
    """The parts of a message create/edit body we model, validated as Discord does
    (`attachments`: the message's files after it, from tests/peers/discord_uploads.py)."""
    out: Json = {}
    if "content" in body or not partial:
        content = body.get("content") or ""
        if len(content) > 2000:
            raise invalid_form("content", "BASE_TYPE_MAX_LENGTH",
                               "Must be 2000 or fewer in length.")  # fmt: skip
        out["content"] = content
    if "embeds" in body or not partial:
        embeds = body.get("embeds") or []
        if len(embeds) > 10:
            raise invalid_form("embeds", "BASE_TYPE_MAX_LENGTH", "Must be 10 or fewer in length.")
        for i, e in enumerate(embeds):
            if len(e.get("description") or "") > 4096 or len(e.get("title") or "") > 256:
                raise invalid_form(f"embeds.{i}.description", "BASE_TYPE_MAX_LENGTH",
                                   "Must be 4096 or fewer in length.")  # fmt: skip
        out["embeds"] = embeds
    if "components" in body or not partial:
        out["components"] = check_components(body.get("components"))
    if "flags" in body:
        out["flags"] = int(body.get("flags") or 0)
    if attachments is not None:
        out["attachments"] = attachments
    if not partial and not (out["content"].strip() or out["embeds"] or attachments):
        raise EMPTY
    return out


@dataclass
class Message:
    id: str
    channel_id: str
    author: Json
    content: str = ""
    embeds: list[Json] = field(default_factory=list)
    components: list[Json] = field(default_factory=list)
    attachments: list[Json] = field(default_factory=list)  # each with its bytes in "data"
    flags: int = 0
    edits: int = 0
    visible_to: str | None = None  # an ephemeral message: only this user sees it
    interaction_owner: str | None = None  # the user whose interaction made this message
    guild_id: str | None = None

    @property
    def text(self) -> str:
        """What the user reads: the content and each embed's title and description, with
        Markdown escapes shown as the characters they protect."""
        parts = [self.content] if self.content else []
        for e in self.embeds:
            parts += [p for p in (e.get("title"), e.get("description")) if p]
        return re.sub(r"\\([^A-Za-z0-9\s])", r"\1", "\n".join(parts))

    @property
    def ephemeral(self) -> bool:
        return bool(self.flags & EPHEMERAL)

    def buttons(self) -> list[Json]:
        return [b for row in self.components for b in row.get("components", [])]

    def button_labels(self) -> list[str]:
        return [b["label"] for b in self.buttons()]

    @property
    def picture(self) -> bytes | None:
        """The file an embed shows as its image (`attachment://name`), as uploaded."""
        for e in self.embeds:
            url = str((e.get("image") or {}).get("url") or "")
            for a in self.attachments:
                if url == f"attachment://{a['filename']}":
                    return bytes(a["data"])
        return None

    def apply(self, changes: Json) -> None:
        for key in ("content", "embeds", "components", "attachments"):
            if key in changes:
                setattr(self, key, changes[key])
        if "flags" in changes:  # only SUPPRESS_EMBEDS may change on edit; ephemeral stays
            self.flags = (self.flags & EPHEMERAL) | (changes["flags"] & ~EPHEMERAL)
        self.edits += 1

    def to_json(self) -> Json:
        data: Json = {
            "id": self.id,
            "channel_id": self.channel_id,
            "type": 0,
            "author": self.author,
            "content": self.content,
            "embeds": self.embeds,
            "components": self.components,
            "attachments": [{k: v for k, v in a.items() if k != "data"} for a in self.attachments],
            "mentions": [],
            "mention_roles": [],
            "mention_everyone": False,
            "pinned": False,
            "tts": False,
            "flags": self.flags,
            "timestamp": iso_now(),
            "edited_timestamp": iso_now() if self.edits else None,
        }
        return data | ({"guild_id": self.guild_id} if self.guild_id else {})
