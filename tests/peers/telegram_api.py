"""A local stand-in for the Telegram Bot API that unmodified python-telegram-bot talks to over
HTTP, plus simulated users. It refuses what the real API refuses (empty or over-long text, bad
callback_data, unchanged edits, broken HTML/MarkdownV2, ...) so our bugs fail here first."""

from __future__ import annotations

import asyncio
import contextlib
import html
import itertools
import json
import re
import socket
import time
from collections.abc import AsyncIterator, Awaitable, Callable
from dataclasses import dataclass, field
from typing import Any

import httpx
import uvicorn
from starlette.applications import Starlette
from starlette.datastructures import UploadFile
from starlette.requests import Request
from starlette.responses import JSONResponse
from starlette.routing import Route
from starlette.types import ASGIApp

Json = dict[str, Any]

NOT_MODIFIED = (
    "message is not modified: specified new message content and reply markup are exactly the "
    "same as a current content and reply markup of the message"
)
WEBHOOK_ACTIVE = (
    "Conflict: can't use getUpdates method while webhook is active; "
    "use deleteWebhook to delete the webhook first"
)
OTHER_POLLER = (
    "Conflict: terminated by other getUpdates request; "
    "make sure that only one bot instance is running"
)
BLOCKED = "Forbidden: bot was blocked by the user"
_DESCRIPTIONS = {400: "Bad Request: injected failure", 401: "Unauthorized", 403: BLOCKED,
                 404: "Not Found", 409: OTHER_POLLER, 502: "Bad Gateway"}  # fmt: skip
# Form values arrive untyped: PTB sends str values raw and all others JSON-encoded, so only the
# Bot API's string parameters must escape JSON decoding (a text "123" stays a str).
_STRING_PARAMS = {"text", "caption", "parse_mode", "url", "secret_token", "language_code",
                  "callback_query_id", "action", "ip_address", "photo"}  # fmt: skip
_NOT_BY_DEFAULT = {"chat_member", "message_reaction", "message_reaction_count"}
_ACTIONS = {"typing", "upload_photo", "record_video", "upload_video", "record_voice",
            "upload_voice", "upload_document", "choose_sticker", "find_location",
            "record_video_note", "upload_video_note"}  # fmt: skip
_COMMAND = re.compile(r"/[A-Za-z0-9_]{1,32}(?:@[A-Za-z0-9_]+)?")
_HTML_TAGS = {"b", "strong", "i", "em", "u", "ins", "s", "strike", "del", "tg-spoiler", "span",
              "a", "code", "pre", "blockquote", "tg-emoji"}  # fmt: skip
_TAG = re.compile(r"<(/?)([a-zA-Z][\w-]*)([^<>]*)>|<")
_HTML_ENTITY = re.compile(r"&(?:lt|gt|amp|quot|#\d+|#x[0-9a-fA-F]+);")  # the only ones decoded
_MD_NAMES = {"*": "Bold", "_": "Italic", "__": "Underline", "~": "Strikethrough",
             "||": "Spoiler", "[": "TextUrl"}  # fmt: skip
_LINK_TARGET = re.compile(r"\(((?:\\.|[^)\\])*)\)")
_RESERVED = "Character '{}' is reserved and must be escaped with the preceding '\\'"


@contextlib.asynccontextmanager
async def serve_app(
    app: ASGIApp, lifespan: str = "off", sock: socket.socket | None = None
) -> AsyncIterator[str]:
    """Serves `app` on a free 127.0.0.1 port in the running event loop; yields its root URL.
    `sock`: a socket already bound (not listening), e.g. one whose address a test handed out
    while the service was "down" (connections to it are refused until it serves)."""
    if sock is None:
        # An explicit IPPROTO_TCP, or asyncio skips TCP_NODELAY on accepted sockets and every
        # keep-alive request waits ~40 ms on Nagle plus delayed ACKs.
        sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM, socket.IPPROTO_TCP)
        sock.bind(("127.0.0.1", 0))
    config = uvicorn.Config(
        app, lifespan=lifespan, log_config=None, access_log=False, timeout_graceful_shutdown=2
    )
    config.load()
    # startup()/shutdown() rather than serve(): serve() takes over SIGINT while it runs and
    # polls for exit every 0.1 s; tests want neither.
    server = uvicorn.Server(config)
    server.lifespan = config.lifespan_class(config)
    try:
        await server.startup(sockets=[sock])
        yield f"http://127.0.0.1:{sock.getsockname()[1]}"
    finally:
        if server.started:
            await server.shutdown(sockets=[sock])
        sock.close()


class ApiError(Exception):
    def __init__(self, code: int, description: str, parameters: Json | None = None) -> None:
        super().__init__(description)
        self.code, self.description, self.parameters = code, description, parameters

    def body(self) -> Json:
        body: Json = {"ok": False, "error_code": self.code, "description": self.description}
        return body | ({"parameters": self.parameters} if self.parameters else {})


def _bad(reason: str) -> ApiError:
    return ApiError(400, f"Bad Request: {reason}")


def _unparsable(reason: str, src: str = "", at: int | None = None) -> ApiError:
    where = "" if at is None else f" at byte offset {len(src[:at].encode())}"
    return _bad(f"can't parse entities: {reason}{where}")


def _html(src: str) -> str:
    stack: list[str] = []
    for m in _TAG.finditer(src):
        name = (m[2] or "").lower()
        if name not in _HTML_TAGS or (name == "span" and "tg-spoiler" not in m[3]):
            raise _unparsable(f'Unsupported start tag "{name}"', src, m.start())
        if not m[1]:
            stack.append(name)
        elif not stack or stack.pop() != name:
            raise _unparsable(f'Unmatched end tag "</{name}>"', src, m.start())
    if stack:
        raise _unparsable(f'Can\'t find end tag corresponding to start tag "{stack[-1]}"')
    return _HTML_ENTITY.sub(lambda e: html.unescape(e[0]), _TAG.sub("", src))


def _markdown(src: str, v2: bool) -> str:
    out: list[str] = []
    stack: list[tuple[str, int]] = []  # open markers and where they start
    i = 0
    while i < len(src):
        c = src[i]
        tok = src[i : i + 2] if v2 and src[i : i + 2] in ("__", "||") else c
        if c == "\\" and i + 1 < len(src) and (v2 or src[i + 1] in "_*`["):
            out.append(src[i + 1])
            i += 2
        elif c == "`":
            fence = "```" if src.startswith("```", i) else "`"
            end = src.find(fence, i + len(fence))
            if end < 0:
                raise _unparsable(
                    f"Can't find end of {'Code' if fence == '`' else 'Pre'} entity", src, i
                )
            body = src[i + len(fence) : end]
            if fence != "`" and "\n" in body:
                body = body.split("\n", 1)[1]  # the first line names the language
            out.append(re.sub(r"\\([\\`])", r"\1", body) if v2 else body)
            i = end + len(fence)
        elif tok in _MD_NAMES and (v2 or tok in "*_["):
            if stack and stack[-1][0] == tok != "[":
                stack.pop()
            else:
                stack.append((tok, i))
            i += len(tok)
        elif (
            c == "]" and stack and stack[-1][0] == "[" and (link := _LINK_TARGET.match(src, i + 1))
        ):
            stack.pop()
            i = link.end()
        elif v2 and c == ">" and (i == 0 or src[i - 1] == "\n"):
            i += 1  # quotation mark-up, not text
        elif v2 and c in "_*[]()~`>#+-=|{}.!":
            raise _unparsable(_RESERVED.format(c))
        else:
            out.append(c)
            i += 1
    if stack:
        what = f"{_MD_NAMES[stack[-1][0]]} entity" if v2 else "the entity starting"
        raise _unparsable(f"Can't find end of {what}", src, stack[-1][1])
    return "".join(out)


def render(text: str, parse_mode: str | None) -> str:
    """The text the user sees for `text` sent with `parse_mode` (entities are not modelled)."""
    mode = (parse_mode or "").lower()
    if mode == "html":
        return _html(text)
    if mode in ("markdown", "markdownv2"):
        return _markdown(text, v2=mode == "markdownv2")
    if mode:
        raise _bad("unsupported parse_mode")
    return text


def inline_rows(markup: Any) -> list[list[Json]]:
    """The inline keyboard of a reply_markup, validated; [] for reply keyboards and none."""
    rows = markup.get("inline_keyboard") if isinstance(markup, dict) else None
    if rows is None:
        return []
    if not isinstance(rows, list) or not all(isinstance(r, list) for r in rows):
        raise _bad('field "inline_keyboard" of the InlineKeyboardMarkup must be an Array of Arrays')
    for b in (b for row in rows for b in row):
        if not isinstance(b, dict) or not isinstance(b.get("text"), str):
            raise _bad('can\'t parse inline keyboard button: Field "text" must be of type String')
        data = b.get("callback_data")
        if "callback_data" in b and not (isinstance(data, str) and 1 <= len(data.encode()) <= 64):
            raise _bad("BUTTON_DATA_INVALID")
        if "url" in b and not re.fullmatch(r"\S+", str(b["url"])):
            raise _bad("BUTTON_URL_INVALID")
        if len(b) == 1:
            raise _bad("can't parse inline keyboard button: Text buttons are unallowed in the "
                       "inline keyboard")  # fmt: skip
    return rows


@dataclass
class Call:
    at: float  # time.monotonic() on arrival
    method: str  # canonical Bot API name, e.g. "sendMessage"
    params: Json  # decoded; an uploaded file is {"file_name", "size", "mime_type"}
    status: int = 200  # HTTP status the peer answered with


@dataclass
class BotMessage:
    message_id: int
    chat_id: int
    text: str  # as the user sees it (markup rendered); the caption for photos
    buttons: list[list[Json]] = field(default_factory=list)
    photo: bool = False
    edits: int = 0
    deleted: bool = False
    pinned: bool = False
    style: Any = None  # the formatting source, so an edit that only restyles counts as a change
    date: int = field(default_factory=lambda: int(time.time()))

    def button_labels(self) -> list[str]:
        return [b["text"] for row in self.buttons for b in row]


class SimUser:
    """A user in a private chat with the bot. BotMessages are live: edits mutate them."""

    def __init__(
        self, peer: TelegramPeer, user_id: int, first_name: str, language_code: str | None,
        username: str | None,
    ) -> None:  # fmt: skip
        self.peer, self.id, self.chat_id = peer, user_id, user_id
        self.first_name, self.language_code, self.username = first_name, language_code, username
        self.answers: dict[str, Json] = {}
        self.history: list[BotMessage] = []  # every bot message sent here, deleted ones too
        self.log: list[BotMessage | str] = []
        self.own_ids: set[int] = set()  # the user's own messages, which the bot may delete too
        self._ids = itertools.count(1)  # a private chat numbers user and bot messages together

    @property
    def user_json(self) -> Json:
        user = {"id": self.id, "is_bot": False, "first_name": self.first_name}
        optional = {"username": self.username, "language_code": self.language_code}
        return user | {k: v for k, v in optional.items() if v is not None}

    @property
    def chat_json(self) -> Json:
        chat = {"id": self.chat_id, "type": "private", "first_name": self.first_name}
        return chat | ({"username": self.username} if self.username else {})

    @property
    def messages(self) -> list[BotMessage]:
        return [m for m in self.history if not m.deleted]

    @property
    def sent(self) -> int:
        """Bot messages ever sent here; the `after=` to use if the bot deletes messages."""
        return len(self.history)

    def find(self, message_id: Any) -> BotMessage | None:
        return next((m for m in self.messages if m.message_id == message_id), None)

    def make_update(self, text: str) -> Json:
        """A message Update from this user, not enqueued (e.g. for deliver_raw)."""
        msg: Json = {"message_id": next(self._ids), "from": self.user_json, "chat": self.chat_json}
        msg |= {"date": int(time.time()), "text": text}
        self.own_ids.add(msg["message_id"])
        if command := _COMMAND.match(text):
            length = len(command[0].encode("utf-16-le")) // 2  # offsets count UTF-16 units
            msg["entities"] = [{"type": "bot_command", "offset": 0, "length": length}]
        return {"update_id": self.peer.next_update_id(), "message": msg}

    async def send(self, text: str) -> None:
        self.log.append(f"user: {text}")
        self.peer.enqueue(self.make_update(text))

    async def press(self, message: BotMessage, label_or_data: str) -> str:
        current = self.find(message.message_id)
        if current is None:
            raise AssertionError(f"bot message #{message.message_id} is gone\n{self.transcript()}")
        buttons = [b for row in current.buttons for b in row]
        found = [b for b in buttons if b["text"] == label_or_data] or [
            b for b in buttons if b.get("callback_data") == label_or_data
        ]
        if not found or "callback_data" not in found[0]:
            have = [(b["text"], b.get("callback_data") or b.get("url")) for b in buttons]
            raise AssertionError(
                f"no callback button {label_or_data!r} on bot message #{current.message_id}; "
                f"it has {have}\n{self.transcript()}"
            )
        query_id = str(next(self.peer.query_ids))
        self.peer.open_queries[query_id] = self
        query = {"id": query_id, "from": self.user_json, "chat_instance": str(-(10**12) - self.id)}
        query |= {"message": self.peer.message_json(current), "data": found[0]["callback_data"]}
        self.log.append(f"user pressed [{found[0]['text']}] on #{current.message_id} q{query_id}")
        self.peer.enqueue({"update_id": self.peer.next_update_id(), "callback_query": query})
        return query_id

    async def wait_for(
        self,
        match: str | Callable[[BotMessage], bool],
        timeout: float = 5.0,  # noqa: ASYNC109 - one deadline across many waits
        after: int = 0,
    ) -> BotMessage:
        """The first live message in history[after:] whose current text contains `match`
        (or which satisfies it)."""
        deadline = time.monotonic() + timeout
        while True:
            for m in self.history[after:]:
                if not m.deleted and (match(m) if callable(match) else match in m.text):
                    return m
            if (left := deadline - time.monotonic()) <= 0:
                raise AssertionError(
                    f"no bot message matching {match!r} (after={after}) within {timeout}s\n"
                    f"{self.transcript()}"
                )
            await self.peer.wait_change(left)

    async def wait_answer(self, query_id: str, timeout: float = 5.0) -> Json:  # noqa: ASYNC109
        deadline = time.monotonic() + timeout
        while query_id not in self.answers:
            if (left := deadline - time.monotonic()) <= 0:
                raise AssertionError(f"query {query_id} not answered\n{self.transcript()}")
            await self.peer.wait_change(left)
        return self.answers[query_id]

    def transcript(self) -> str:
        lines = [f"--- chat {self.chat_id} ({self.first_name}, {self.language_code}) ---"]
        for entry in self.log:
            if isinstance(entry, str):
                lines.append(entry)
                continue
            flags = " [photo]" if entry.photo else ""
            flags += f" (edited {entry.edits}x)" if entry.edits else ""
            flags += " (deleted)" if entry.deleted else ""
            lines.append(f"bot #{entry.message_id}{flags}: {entry.text}")
            lines += ["    " + " ".join(f"[{b['text']}]" for b in row) for row in entry.buttons]
        return "\n".join(lines)


class TelegramPeer:
    """The Bot API on 127.0.0.1, for `async with TelegramPeer() as peer:`."""

    webhook_attempts = 4  # per update before giving up on it (Telegram retries too)

    def __init__(
        self, token: str = "123456:TEST", bot_username: str = "maxxit_test_bot",
        sock: socket.socket | None = None,
    ) -> None:  # fmt: skip
        self.token = token
        self._sock = sock  # serve on this bound socket (see serve_app)
        self.bot_user: Json = {"id": int(token.split(":")[0]), "is_bot": True,
                               "first_name": "Maxxit", "username": bot_username}  # fmt: skip
        self.base_url = self.base_file_url = ""
        self.calls: list[Call] = []
        self.uploads: list[bytes] = []  # every uploaded file's bytes, in arrival order
        self.webhook: Json | None = None
        self.commands: dict[str, list[Json]] = {}
        self.undelivered: list[Json] = []  # updates the webhook refused on every attempt
        self.query_ids = itertools.count(4_000_001)
        self.open_queries: dict[str, SimUser] = {}
        self._users: dict[int, SimUser] = {}
        self._blocked: set[int] = set()
        self._failures: dict[str, list[tuple[int, int, str | None]]] = {}
        self._pending: list[Json] = []
        self._update_ids = itertools.count(10_001)
        self._allowed: list[str] | None = None
        self._last_error: tuple[int, str] | None = None
        self._poll_gen = 0
        self._changed = asyncio.Event()
        self._closing = False
        self._api: dict[str, tuple[str, Callable[[Json], Awaitable[Any]]]] = {
            name.lower(): (name, getattr(self, f"_{name}"))
            for name in ("getMe", "getUpdates", "setWebhook", "deleteWebhook", "getWebhookInfo",
                         "setMyCommands", "getMyCommands", "deleteMyCommands", "sendMessage",
                         "sendPhoto", "editMessageText", "editMessageReplyMarkup",
                         "answerCallbackQuery", "deleteMessage", "sendChatAction",
                         "pinChatMessage", "unpinChatMessage")
        }  # fmt: skip

    async def __aenter__(self) -> TelegramPeer:
        self._stack = contextlib.AsyncExitStack()
        route = Route("/bot{token}/{method}", self._endpoint, methods=["GET", "POST"])
        app = Starlette(routes=[route])
        root = await self._stack.enter_async_context(serve_app(app, sock=self._sock))
        self.base_url, self.base_file_url = f"{root}/bot", f"{root}/file/bot"
        self._client = httpx.AsyncClient(timeout=10)  # webhook deliveries
        self._stack.push_async_callback(self._client.aclose)
        self._pusher = asyncio.create_task(self._push_loop())
        return self

    async def __aexit__(self, *exc: object) -> None:
        self._closing = True  # pending long polls answer now, else shutdown waits them out
        self._bump()
        self._pusher.cancel()
        with contextlib.suppress(asyncio.CancelledError):
            await self._pusher
        await self._stack.aclose()

    # -- for tests -----------------------------------------------------------------------------

    def user(
        self, user_id: int, first_name: str = "Ann", language_code: str | None = "en",
        username: str | None = None,
    ) -> SimUser:  # fmt: skip
        if user_id not in self._users:
            self._users[user_id] = SimUser(self, user_id, first_name, language_code, username)
        return self._users[user_id]

    def fail_next(
        self, method: str, code: int = 429, retry_after: int = 1, times: int = 1,
        description: str | None = None,
    ) -> None:  # fmt: skip
        self._failures.setdefault(method.lower(), []).extend(
            [(code, retry_after, description)] * times
        )

    def block(self, user_id: int) -> None:
        self._blocked.add(user_id)

    def unblock(self, user_id: int) -> None:
        self._blocked.discard(user_id)

    def calls_to(self, method: str) -> list[Call]:
        return [c for c in self.calls if c.method.lower() == method.lower()]

    async def deliver_raw(self, update: Json, secret: str | None) -> int:
        if self.webhook is None:
            raise AssertionError("no webhook is set")
        return (await self._post(self.webhook["url"], update, secret)).status_code

    # -- shared with SimUser -------------------------------------------------------------------

    def next_update_id(self) -> int:
        return next(self._update_ids)

    def enqueue(self, update: Json) -> None:
        kind = next(k for k in update if k != "update_id")
        if (kind not in self._allowed) if self._allowed else (kind in _NOT_BY_DEFAULT):
            # Telegram never creates updates the bot opted out of; the transcript says so.
            self._note(update, f"[{kind} dropped: allowed_updates={self._allowed}]")
            return
        self._pending.append(update)
        self._bump()

    async def wait_change(self, seconds: float) -> None:
        # asyncio.timeout, not wait_for: 3.11's wait_for can swallow a cancellation that races
        # with the event being set, and then the pusher task never ends.
        with contextlib.suppress(TimeoutError):
            async with asyncio.timeout(seconds):
                await self._changed.wait()

    def message_json(self, m: BotMessage) -> Json:
        out: Json = {"message_id": m.message_id, "from": self.bot_user,
                     "chat": self._users[m.chat_id].chat_json, "date": m.date}  # fmt: skip
        out |= {"edit_date": int(time.time())} if m.edits else {}
        key = "caption" if m.photo else "text"
        if m.photo:
            ids = {
                "file_id": f"AgAC{m.chat_id}_{m.message_id}",
                "file_unique_id": f"AQ{m.message_id}",
            }
            out["photo"] = [ids | {"width": 320, "height": 320}]
        if m.text or not m.photo:
            out[key] = m.text
        if isinstance(m.style, list) and m.style:
            out[f"{key}_entities"] = m.style
        if m.buttons:
            out["reply_markup"] = {"inline_keyboard": m.buttons}
        return out

    def _bump(self) -> None:
        self._changed.set()
        self._changed = asyncio.Event()

    def _note(self, update: Json, line: str) -> None:
        """Adds `line` to the transcript of the user an update came from, if we know them."""
        body = next(v for k, v in update.items() if k != "update_id")
        if user := self._users.get(body.get("from", {}).get("id")):
            user.log.append(line)

    # -- HTTP ----------------------------------------------------------------------------------

    async def _endpoint(self, request: Request) -> JSONResponse:
        method = request.path_params["method"]
        canonical, handler = self._api.get(method.lower(), (method, None))
        call = Call(time.monotonic(), canonical, await self._params(request))
        self.calls.append(call)
        try:
            if request.path_params["token"] != self.token:
                raise ApiError(401, "Unauthorized")
            if handler is None:
                raise ApiError(404, "Not Found")
            if queued := self._failures.get(method.lower()):
                code, retry_after, description = queued.pop(0)
                if code == 429:
                    text = description or f"Too Many Requests: retry after {retry_after}"
                    raise ApiError(429, text, {"retry_after": retry_after})
                raise ApiError(
                    code, description or _DESCRIPTIONS.get(code, "Internal Server Error")
                )
            result = await handler(call.params)
        except ApiError as err:
            call.status = err.code
            return JSONResponse(err.body(), status_code=err.code)
        self._bump()
        return JSONResponse({"ok": True, "result": result})

    async def _params(self, request: Request) -> Json:
        if request.headers.get("content-type", "").startswith("application/json"):
            return dict(await request.json())
        params: Json = {}
        async with request.form(max_part_size=10 * 2**20) as form:
            for key, value in [*request.query_params.multi_items(), *form.multi_items()]:
                if isinstance(value, UploadFile):
                    data = await value.read()
                    size, mime = len(data), value.content_type
                    params[key] = {"file_name": value.filename, "size": size, "mime_type": mime}
                    self.uploads.append(data)
                else:
                    params[key] = value if key in _STRING_PARAMS else _json_or(value)
        return params

    async def _post(self, url: str, update: Json, secret: str | None) -> httpx.Response:
        headers = {"X-Telegram-Bot-Api-Secret-Token": secret} if secret is not None else {}
        return await self._client.post(url, json=update, headers=headers)

    async def _push_loop(self) -> None:
        while not self._closing:
            hook = self.webhook
            if hook is None or not self._pending:
                await self.wait_change(60)
                continue
            update, error = self._pending[0], ""
            for attempt in range(self.webhook_attempts):
                try:
                    response = await self._post(hook["url"], update, hook["secret_token"])
                    if response.is_success:
                        break
                    error = f"Wrong response from the webhook: {response.status_code} "
                    error += response.reason_phrase
                except httpx.HTTPError as exc:
                    error = f"Connection failed: {exc!r}"
                self._last_error = (int(time.time()), error)
                if self.webhook is not hook:
                    break
                await asyncio.sleep(0.05 * 2**attempt)
            else:
                self.undelivered.append(update)
                self._note(update, f"[webhook gave up on {update['update_id']}: {error}]")
            # If the webhook changed meanwhile, the update stays queued for the new consumer.
            if self.webhook is hook and self._pending and self._pending[0] is update:
                self._pending.pop(0)
                self._bump()

    # -- Bot API methods -----------------------------------------------------------------------

    def _chat(self, p: Json) -> SimUser:
        chat_id = p.get("chat_id")
        for u in self._users.values():
            if chat_id == u.chat_id or (
                u.username and str(chat_id).lower() == f"@{u.username.lower()}"
            ):
                if u.id in self._blocked:
                    raise ApiError(403, BLOCKED)
                return u
        raise _bad("chat not found")

    async def _getMe(self, p: Json) -> Json:
        return self.bot_user | {"can_join_groups": True, "can_read_all_group_messages": False,
                                "supports_inline_queries": False}  # fmt: skip

    async def _getUpdates(self, p: Json) -> list[Json]:
        if self.webhook:
            raise ApiError(409, WEBHOOK_ACTIVE)
        offset, limit = int(p.get("offset") or 0), min(max(int(p.get("limit") or 100), 1), 100)
        if "allowed_updates" in p:
            self._allowed = p["allowed_updates"] or None
        if offset > 0:  # confirms everything before it
            self._pending = [u for u in self._pending if u["update_id"] >= offset]
        elif offset < 0:
            self._pending = self._pending[offset:]
        self._poll_gen += 1  # as on Telegram, a newer poll ends an older one with 409
        gen = self._poll_gen
        self._bump()
        deadline = time.monotonic() + float(p.get("timeout") or 0)
        while not (self._pending or self._closing):
            if gen != self._poll_gen or self.webhook:
                raise ApiError(409, OTHER_POLLER if gen != self._poll_gen else WEBHOOK_ACTIVE)
            if (left := deadline - time.monotonic()) <= 0:
                return []
            await self.wait_change(left)
        return self._pending[:limit]

    async def _setWebhook(self, p: Json) -> bool:
        if p.get("drop_pending_updates"):
            self._pending.clear()
        if not p.get("url"):
            self.webhook = None
            return True
        secret = p.get("secret_token")
        if secret is not None and not re.fullmatch(r"[A-Za-z0-9_-]{1,256}", secret):
            raise _bad("secret token contains unallowed characters")
        if not re.match(r"https?://", p["url"]):  # Telegram wants https; we serve plain http
            raise _bad("bad webhook: An HTTPS URL must be provided for webhook")
        if "allowed_updates" in p:
            self._allowed = p["allowed_updates"] or None
        self.webhook = {"url": p["url"], "secret_token": secret,
                        "max_connections": p.get("max_connections", 40)}  # fmt: skip
        return True

    async def _deleteWebhook(self, p: Json) -> bool:
        return await self._setWebhook({"drop_pending_updates": p.get("drop_pending_updates")})

    async def _getWebhookInfo(self, p: Json) -> Json:
        info: Json = {"url": "", "has_custom_certificate": False,
                      "pending_update_count": len(self._pending)}  # fmt: skip
        if self.webhook:
            info |= {"url": self.webhook["url"], "max_connections": self.webhook["max_connections"]}
            info |= {"allowed_updates": self._allowed} if self._allowed else {}
            if self._last_error:
                info["last_error_date"], info["last_error_message"] = self._last_error
        return info

    @staticmethod
    def _commands_key(p: Json) -> str:
        """The language code for the default scope, else e.g. "chat:42/en"."""
        scope, lang = p.get("scope") or {"type": "default"}, p.get("language_code") or ""
        if scope["type"] == "default":
            return lang
        ids = "".join(f":{scope[k]}" for k in ("chat_id", "user_id") if k in scope)
        return f"{scope['type']}{ids}/{lang}"

    async def _setMyCommands(self, p: Json) -> bool:
        commands = p.get("commands")
        if not isinstance(commands, list) or len(commands) > 100:
            raise _bad("can't parse commands JSON object")
        for c in commands:
            if not re.fullmatch(r"[a-z0-9_]{1,32}", str(c.get("command"))):
                raise _bad("BOT_COMMAND_INVALID")
            if not 1 <= len(str(c.get("description") or "")) <= 256:
                raise _bad("BOT_COMMAND_DESCRIPTION_INVALID")
        self.commands[self._commands_key(p)] = [
            {"command": c["command"], "description": c["description"]} for c in commands
        ]
        return True

    async def _getMyCommands(self, p: Json) -> list[Json]:
        return self.commands.get(self._commands_key(p), [])

    async def _deleteMyCommands(self, p: Json) -> bool:
        self.commands.pop(self._commands_key(p), None)
        return True

    @staticmethod
    def _content(p: Json, key: str) -> tuple[str, Any]:
        raw = str(p.get(key, ""))
        text = render(raw, p.get("parse_mode"))
        return text, raw if text != raw else p.get(
            f"{key}_entities" if key == "caption" else "entities"
        )

    async def _send(self, p: Json, photo: bool) -> Json:
        user = self._chat(p)
        text, style = self._content(p, "caption" if photo else "text")
        if photo and not p.get("photo"):
            raise _bad("there is no photo in the request")
        if not photo and not text.strip():
            raise _bad("message text is empty")
        if len(text) > (1024 if photo else 4096):
            raise _bad("message caption is too long" if photo else "message is too long")
        rows = inline_rows(p.get("reply_markup"))
        reply = p.get("reply_parameters") or {"message_id": p.get("reply_to_message_id")}
        target = reply.get("message_id")
        lenient = reply.get("allow_sending_without_reply") or p.get("allow_sending_without_reply")
        if (
            target is not None
            and target not in user.own_ids
            and not user.find(target)
            and not lenient
        ):
            raise _bad("message to be replied not found")
        message = BotMessage(next(user._ids), user.chat_id, text, rows, photo, style=style)
        user.history.append(message)
        user.log.append(message)
        return self.message_json(message)

    async def _sendMessage(self, p: Json) -> Json:
        return await self._send(p, photo=False)

    async def _sendPhoto(self, p: Json) -> Json:
        return await self._send(p, photo=True)

    def _target(self, p: Json, missing: str) -> BotMessage:
        if "inline_message_id" in p:
            raise _bad("MESSAGE_ID_INVALID")  # we never send inline-mode messages
        message = self._chat(p).find(p.get("message_id"))
        if message is None:
            raise _bad(missing)
        return message

    async def _editMessageText(self, p: Json) -> Json:
        m = self._target(p, "message to edit not found")
        text, style = self._content(p, "text")
        if not text.strip():
            raise _bad("message text is empty")
        if len(text) > 4096:
            raise _bad("MESSAGE_TOO_LONG")
        if m.photo:
            raise _bad("there is no text in the message to edit")
        rows = inline_rows(p.get("reply_markup"))  # none given drops the keyboard, as on Telegram
        if (text, style, rows) == (m.text, m.style, m.buttons):
            raise _bad(NOT_MODIFIED)
        if text != m.text:  # the live message shows only the latest text; keep the old in the log
            self._users[m.chat_id].log.append(f"bot edits #{m.message_id}, was: {m.text}")
        m.text, m.style, m.buttons, m.edits = text, style, rows, m.edits + 1
        return self.message_json(m)

    async def _editMessageReplyMarkup(self, p: Json) -> Json:
        m = self._target(p, "message to edit not found")
        rows = inline_rows(p.get("reply_markup"))
        if rows == m.buttons:
            raise _bad(NOT_MODIFIED)
        m.buttons, m.edits = rows, m.edits + 1
        return self.message_json(m)

    async def _deleteMessage(self, p: Json) -> bool:
        user = self._chat(p)
        if p.get("message_id") in user.own_ids:
            user.own_ids.discard(p["message_id"])
        else:
            self._target(p, "message to delete not found").deleted = True
        return True

    async def _answerCallbackQuery(self, p: Json) -> bool:
        query_id = str(p.get("callback_query_id", ""))
        user = self.open_queries.pop(query_id, None)
        if user is None:
            raise _bad("query is too old and response timeout expired or query ID is invalid")
        user.answers[query_id] = {k: v for k, v in p.items() if k != "callback_query_id"}
        user.log.append(f"bot answered q{query_id}: {user.answers[query_id]}")
        return True

    async def _pinChatMessage(self, p: Json) -> bool:
        self._target(p, "message to pin not found").pinned = True
        return True

    async def _unpinChatMessage(self, p: Json) -> bool:
        user = self._chat(p)
        if p.get("message_id") is None:  # the most recent pinned one
            pinned = [m for m in user.messages if m.pinned]
            if pinned:
                pinned[-1].pinned = False
            return True
        self._target(p, "message to unpin not found").pinned = False
        return True

    async def _sendChatAction(self, p: Json) -> bool:
        self._chat(p)
        if p.get("action") not in _ACTIONS:
            raise _bad("wrong parameter action in request")
        return True


def _json_or(value: str) -> Any:
    try:
        return json.loads(value)
    except ValueError:
        return value  # e.g. chat_id "@username"
