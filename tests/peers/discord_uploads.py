"""File uploads as Discord takes them: a message body sent as multipart/form-data, the JSON in
the `payload_json` part and each file in a `files[n]` part (with its filename), the body's
`attachments` naming them by that n. Discord stores each file as an attachment of the message
(id, filename, size, content_type, url, and width/height for an image); an embed shows one as
its picture through `attachment://<filename>`. Limits kept: 10 files a message, each within
the `attachment_size_limit` the interaction payload announced (8 MiB), a PNG that is one."""

from __future__ import annotations

import json
import re
import struct
from dataclasses import dataclass
from typing import Any

import aiohttp
from aiohttp import web

from tests.peers.discord_models import DiscordError, Json, invalid_form, snowflake

MAX_FILES = 10
SIZE_LIMIT = 8 * 1024 * 1024
PNG_SIGNATURE = b"\x89PNG\r\n\x1a\n"
_FILE_PART = re.compile(r"files\[(\d+)\]")
TOO_LARGE = DiscordError(413, 40005, "Request entity too large")
# where the stand-in keeps a request's body once read (a multipart stream is read only once)
BODY = web.RequestKey("discord_body", object)
UPLOADS = web.RequestKey("discord_uploads", list)


@dataclass
class Upload:
    index: int  # the n of files[n]
    filename: str
    content_type: str
    data: bytes


async def read_body(request: web.Request) -> tuple[Any, list[Upload]]:
    """The request's JSON (the `payload_json` part of a multipart body) and its files."""
    if not request.can_read_body:
        return None, []
    if request.content_type != "multipart/form-data":
        try:
            return await request.json(), []
        except ValueError:
            return None, []
    payload: Any = None
    uploads: list[Upload] = []
    reader = await request.multipart()
    while (part := await reader.next()) is not None:
        if not isinstance(part, aiohttp.BodyPartReader):
            raise invalid_form("files", "BASE_TYPE_BAD", "Nested multipart is not allowed.")
        data = await part.read()
        if part.name == "payload_json":
            try:
                payload = json.loads(data)
            except ValueError:
                raise invalid_form("payload_json", "BASE_TYPE_BAD", "Not JSON.") from None
            continue
        found = _FILE_PART.fullmatch(part.name or "")
        if found is None:
            continue  # Discord ignores form fields it does not know
        if not part.filename:
            raise invalid_form(part.name or "", "BASE_TYPE_REQUIRED", "A filename is required.")
        if len(data) > SIZE_LIMIT:
            raise TOO_LARGE
        kind = part.headers.get("Content-Type", "application/octet-stream")
        uploads.append(Upload(int(found.group(1)), part.filename, kind, bytes(data)))
    if len(uploads) > MAX_FILES:
        raise invalid_form("files", "BASE_TYPE_MAX_LENGTH", "Must be 10 or fewer in length.")
    return payload, uploads


def png_dimensions(data: bytes) -> tuple[int, int] | None:
    if data[:8] != PNG_SIGNATURE or data[12:16] != b"IHDR":
        return None
    width, height = struct.unpack(">II", data[16:24])
    return int(width), int(height)


def attachments_of(
    body: Json, uploads: list[Upload], channel_id: str, existing: list[Json] | None = None
) -> list[Json]:
    """The message's attachments after this create or edit, checked as Discord does: every
    entry of `attachments` names an uploaded file (its n) or, on an edit, one the message has
    (its id; those not named are removed), filenames are unique, an image/png is a PNG, and
    an embed's `attachment://` picture is one of them (Discord would show the embed without
    it; the stand-in refuses, so our mistake is loud)."""
    by_index = {u.index: u for u in uploads}
    had = {a["id"]: a for a in existing or []}
    declared = body.get("attachments")
    kept: list[Json] = list(had.values()) if declared is None else []
    for i, entry in enumerate(declared or []):
        key = str(entry.get("id", "")) if isinstance(entry, dict) else ""
        if key in had:
            kept.append(had[key])
        elif not key.isdigit() or int(key) not in by_index:
            raise invalid_form(f"attachments.{i}.id", "ATTACHMENT_NOT_FOUND",
                               "Attachment data not found")  # fmt: skip
    out: list[Json] = list(kept)
    for u in sorted(uploads, key=lambda x: x.index):
        size = png_dimensions(u.data)
        if u.content_type == "image/png" and size is None:
            raise invalid_form(f"files[{u.index}]", "INVALID_FILE", "Not a PNG image.")
        attachment_id = snowflake()
        cdn = f"https://cdn.discordapp.com/attachments/{channel_id}/{attachment_id}/{u.filename}"
        proxy = cdn.replace("cdn.discordapp.com", "media.discordapp.net")
        item: Json = {"id": attachment_id, "filename": u.filename, "size": len(u.data),
                      "content_type": u.content_type, "url": cdn, "proxy_url": proxy}  # fmt: skip
        if size is not None:
            item |= {"width": size[0], "height": size[1]}
        item["data"] = u.data  # kept by the stand-in for tests; not in its JSON answers
        out.append(item)
    names = [a["filename"] for a in out]
    if len(set(names)) != len(names):
        raise invalid_form("attachments", "DUPLICATE_FILENAME", "Filenames must be unique.")
    for i, embed in enumerate(body.get("embeds") or []):
        url = str((embed.get("image") or {}).get("url") or "")
        if url.startswith("attachment://") and url[len("attachment://") :] not in names:
            raise invalid_form(f"embeds.{i}.image.url", "ATTACHMENT_NOT_FOUND",
                               "Attachment not found")  # fmt: skip
    return out
