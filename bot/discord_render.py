"""Handler replies as Discord messages (JSON bodies for the REST API), and the plan for
answering one interaction: which reply replaces the original message, which follow.

Text goes in `content` (2000 characters) or, when longer, in an embed (4096); alerts are
embeds with their first line as the title. A reply with a picture (an equity curve, a closed
trade's card) is an embed showing it as its image: the PNG travels as an attachment of the
same request (multipart, `files[0]`, referenced as `attachment://maxxit.png`; see
bot/discord_rest.py). Buttons become action rows (5 per row, 5 rows);
their custom_id is the handler's button data (<= 64 bytes, well within Discord's 100).
No message mentions anyone: a name like "@everyone" in an agent's name stays text."""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from typing import Any

from handlers.base import Button, Reply, Response

Json = dict[str, Any]
EPHEMERAL = 1 << 6
CONTENT_MAX, EMBED_MAX, TITLE_MAX, LABEL_MAX = 2000, 4096, 256, 80
ROW_MAX, ROWS_MAX = 5, 5
NO_MENTIONS: Json = {"parse": []}
PICTURE = "maxxit.png"
# where a body keeps the files it uploads: never sent as JSON (DiscordRest sends such a body
# as multipart/form-data, the rest of it as `payload_json`)
FILES = "_files"
# Discord reads Markdown in content and embeds; our texts are plain, so mark-up is escaped
_MARKUP = re.compile(r"([\\*_~`|])")
_LINE_MARKUP = re.compile(r"(?m)^(\s*)([#>-])")  # headings, quotes, lists: only at a line's start


def escape(text: str) -> str:
    return _LINE_MARKUP.sub(r"\1\\\2", _MARKUP.sub(r"\\\1", text))


def _fit(text: str, limit: int) -> str:
    """Escaped text within `limit` characters, never cutting an escape in half."""
    out = escape(text)
    if len(out) <= limit:
        return out
    cut = out[: limit - 1]
    if cut.endswith("\\") and not cut.endswith("\\\\"):
        cut = cut[:-1]
    return cut + "…"


def _button(b: Button) -> Json:
    label = b.label.strip()[:LABEL_MAX] or "·"
    if b.url:
        return {"type": 2, "style": 5, "label": label, "url": b.url}
    return {"type": 2, "style": 2, "label": label, "custom_id": b.data or "noop"}


def components(buttons: list[list[Button]]) -> list[Json]:
    rows: list[Json] = []
    seen: set[str] = set()
    for row in buttons:
        items = []
        for b in row:
            item = _button(b)
            key = item.get("custom_id") or item["url"]
            if key in seen:  # Discord refuses a custom_id twice in one message
                continue
            seen.add(key)
            items.append(item)
        for i in range(0, len(items), ROW_MAX):
            rows.append({"type": 1, "components": items[i : i + ROW_MAX]})
    return rows[:ROWS_MAX]


def message(reply: Reply, flags: int = 0, alert: bool = False) -> Json:
    """One reply as a message body (create or edit)."""
    body: Json = {"allowed_mentions": NO_MENTIONS, "components": components(reply.buttons)}
    text = reply.text.strip() or "…"
    if alert:
        title, _, rest = text.partition("\n")
        embed: Json = {"title": _fit(title, TITLE_MAX)}
        if rest.strip():
            embed["description"] = _fit(rest.strip(), EMBED_MAX)
        body |= {"content": "", "embeds": [embed]}
    elif len(escape(text)) <= CONTENT_MAX:
        body |= {"content": escape(text), "embeds": []}
    else:
        body |= {"content": "", "embeds": [{"description": _fit(text, EMBED_MAX)}]}
    if reply.photo is not None:
        _with_picture(body, reply.photo)
    if flags:
        body["flags"] = flags
    return body


def _with_picture(body: Json, png: bytes) -> None:
    """The picture as the image of the message's embed (the text above it), uploaded with it."""
    embeds = body["embeds"] or [{"description": body["content"]} if body["content"] else {}]
    body["embeds"] = [embeds[0] | {"image": {"url": f"attachment://{PICTURE}"}}, *embeds[1:]]
    body["content"] = ""
    body["attachments"] = [{"id": 0, "filename": PICTURE}]
    body[FILES] = [(PICTURE, png)]


@dataclass
class Plan:
    original: Json | None = None  # replaces the deferred answer / the pressed message
    followups: list[Json] = field(default_factory=list)


def plan(response: Response, component: bool, in_guild: bool) -> Plan:
    """How to answer an interaction already deferred (type 5 for commands, whose answer is
    ephemeral in a server; type 6 for buttons). A refusal or notice is only ever shown to
    the person who pressed (ephemeral), and then nothing else changes."""
    private = EPHEMERAL if in_guild else 0
    out = Plan()
    replies = list(response.replies)
    if not component:
        if replies:
            out.original = message(replies.pop(0))
        elif response.notice:
            out.original = message(Reply(response.notice))
        out.followups = [message(r, private) for r in replies]
        return out
    if replies and replies[0].edit and replies[0].photo is None:
        out.original = message(replies.pop(0))
    if response.notice:
        out.followups.append(message(Reply(response.notice), EPHEMERAL))
    out.followups += [message(r, private) for r in replies]
    return out
