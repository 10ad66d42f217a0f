"""A local stand-in for the X (Twitter) API v2 endpoints a timeline poller uses, on 127.0.0.1.

It speaks X's wire format (docs.x.com/x-api) so an unmodified HTTP client meets what it will meet
in production:

- app-only Bearer auth: a missing or wrong token gets X's 401 problem JSON;
- GET /2/users/by/username/:username and GET /2/users/by?usernames=a,b, where an unknown or
  suspended account is not a 404 but a 200 with an `errors` entry (partial errors, as X does);
- GET /2/users/:id/tweets with since_id / until_id / start_time / end_time, max_results (5..100),
  opaque pagination tokens, exclude=replies,retweets, tweet.fields, user.fields and expansions;
  fields that were not asked for are left out, as X leaves them out, so a client that forgets
  `tweet.fields=created_at` finds out here;
- refusal of what X refuses (unknown parameters, field names or expansions, max_results out of
  range, malformed ids) with X's "Invalid Request" 400 body;
- per-endpoint rate-limit windows of 15 minutes with x-rate-limit-* headers, and 429 when spent.

Tests add users and posts, inject failures, shrink limits and move the peer's clock.
"""

from __future__ import annotations

import contextlib
import itertools
import math
import random
import re
import time
from collections.abc import Mapping
from dataclasses import dataclass, field
from datetime import UTC, datetime
from http import HTTPStatus
from typing import Any, NamedTuple

from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import JSONResponse
from starlette.routing import Route

from tests.peers.telegram_api import serve_app

Json = dict[str, Any]

# Endpoint keys, spelled as X's rate-limit tables spell them; use them with `limits=`/set_limit().
USER_TWEETS = "/2/users/:id/tweets"
USER_BY_USERNAME = "/2/users/by/username/:username"
USERS_BY = "/2/users/by"
# Per app (Bearer token) per 15 minutes, from X's published rate-limit table.
DEFAULT_LIMITS: Mapping[str, int] = {USER_TWEETS: 10_000, USER_BY_USERNAME: 300, USERS_BY: 300}
WINDOW_SECONDS = 15 * 60

# X still names its problem types after the old host, whichever host answered.
PROBLEMS = "https://api.twitter.com/2/problems/"
TWEPOCH_MS = 1288834974657  # the epoch of X's snowflake ids
TIMELINE_DEPTH = 3200  # the timeline reaches back this many posts...
DEPTH_WITHOUT_REPLIES = 800  # ...and only this many when replies are excluded
MAX_TEXT = 280  # longer ("note") posts are cut in `text`; the full one is in note_tweet.text

TWEET_FIELDS = frozenset(
    {
        "article", "attachments", "author_id", "card_uri", "community_id", "context_annotations",
        "conversation_id", "created_at", "display_text_range", "edit_controls",
        "edit_history_tweet_ids", "entities", "geo", "id", "in_reply_to_user_id", "lang",
        "media_metadata", "non_public_metrics", "note_tweet", "organic_metrics",
        "possibly_sensitive", "promoted_metrics", "public_metrics", "referenced_tweets",
        "reply_settings", "scopes", "source", "suggested_source_links",
        "suggested_source_links_with_counts", "text", "withheld",
    }
)  # fmt: skip
USER_FIELDS = frozenset(
    {
        "affiliation", "connection_status", "created_at", "description", "entities", "id",
        "is_identity_verified", "location", "most_recent_tweet_id", "name", "parody",
        "pinned_tweet_id", "profile_banner_url", "profile_image_url", "protected", "public_metrics",
        "receives_your_dm", "subscription", "subscription_type", "url", "username", "verified",
        "verified_followers_count", "verified_type", "withheld",
    }
)  # fmt: skip
TWEET_EXPANSIONS = frozenset(
    {
        "attachments.media_keys", "attachments.media_source_tweet", "attachments.poll_ids",
        "author_id", "edit_history_tweet_ids", "entities.mentions.username", "geo.place_id",
        "in_reply_to_user_id", "entities.note.mentions.username", "referenced_tweets.id",
        "referenced_tweets.id.author_id",
    }
)  # fmt: skip
USER_EXPANSIONS = frozenset({"affiliation.user_id", "most_recent_tweet_id", "pinned_tweet_id"})
_OTHER_FIELDS = ("media.fields", "place.fields", "poll.fields")  # accepted; nothing to show
_PARAMS = {
    USER_TWEETS: {"end_time", "exclude", "expansions", "max_results", "pagination_token",
                  "since_id", "start_time", "tweet.fields", "until_id", "user.fields",
                  *_OTHER_FIELDS},
    USER_BY_USERNAME: {"expansions", "tweet.fields", "user.fields"},
    USERS_BY: {"usernames", "expansions", "tweet.fields", "user.fields"},
}  # fmt: skip
_PATH_PARAMS = {USER_TWEETS: {"id"}, USER_BY_USERNAME: {"username"}, USERS_BY: set[str]()}
_ROUTES = [
    (re.compile(r"/2/users/by/username/(?P<username>[^/]*)"), USER_BY_USERNAME),
    (re.compile(r"/2/users/by"), USERS_BY),
    (re.compile(r"/2/users/(?P<id>[^/]*)/tweets"), USER_TWEETS),
]
_USERNAME = re.compile(r"[A-Za-z0-9_]{1,15}")
_ID = re.compile(r"[0-9]{1,19}")
_ENTITIES = {
    "cashtags": re.compile(r"(?<![\w$])\$([A-Za-z][A-Za-z0-9_]{0,14})\b"),
    "hashtags": re.compile(r"(?<![\w#])#(\w{1,139})"),
    "mentions": re.compile(r"(?<![\w@])@([A-Za-z0-9_]{1,15})\b"),
}
_TOKEN_CHARS = "0123456789abcdefghijklmnopqrstuvwxyz"


class XRequest(NamedTuple):
    """One request as the peer saw it; `time` is the peer's clock (epoch seconds)."""

    time: float
    path: str
    params: dict[str, str]
    status: int


@dataclass
class XUser:
    id: str
    username: str
    name: str
    created_at: datetime
    suspended: bool = False


@dataclass
class Tweet:
    id: str
    author_id: str
    text: str  # in full; what `text` shows is cut at MAX_TEXT
    created_at: datetime
    lang: str
    conversation_id: str
    referenced: list[tuple[str, str]] = field(default_factory=list)  # (type, id)
    in_reply_to_user_id: str | None = None
    deleted: bool = False

    def refers(self, kind: str) -> bool:
        return any(k == kind for k, _ in self.referenced)


class _Problem(Exception):
    """An answer other than 200, with X's body for it."""

    def __init__(self, status: int, body: Json) -> None:
        super().__init__(status)
        self.status, self.body = status, body


@dataclass
class _Window:
    limit: int
    used: int = 0
    reset: float = 0.0  # epoch seconds on the peer's clock


@dataclass
class _Failure:
    prefix: str
    status: int
    left: int
    body: Json | None


def blank_problem(status: int) -> Json:
    """X's problem JSON for 401, 429, 5xx: {"title","type":"about:blank","status","detail"}."""
    phrase = HTTPStatus(status).phrase
    return {"title": phrase, "type": "about:blank", "status": status, "detail": phrase}


def _invalid(param: str, value: str, message: str) -> _Problem:
    return _Problem(
        400,
        {
            "errors": [{"parameters": {param: [value]}, "message": message}],
            "title": "Invalid Request",
            "detail": "One or more parameters to your request was invalid.",
            "type": PROBLEMS + "invalid-request",
        },
    )


def _resource_error(resource: str, param: str, value: str, *, suspended: bool = False) -> Json:
    if suspended:
        title, detail = "Forbidden", f"User has been suspended: [{value}]."
    else:
        title, detail = "Not Found Error", f"Could not find {resource} with {param}: [{value}]."
    return {"value": value, "detail": detail, "title": title, "resource_type": resource,
            "parameter": param, "resource_id": value,
            "type": PROBLEMS + "resource-not-found"}  # fmt: skip


def x_time(at: datetime) -> str:
    """X's timestamp format: ISO 8601, UTC, always with milliseconds (…T12:00:00.000Z)."""
    at = at.astimezone(UTC)
    return at.strftime("%Y-%m-%dT%H:%M:%S.") + f"{at.microsecond // 1000:03d}Z"


def _entities(text: str, users: dict[str, XUser]) -> Json:
    out: Json = {}
    for kind, pattern in _ENTITIES.items():
        found = []
        for m in pattern.finditer(text):
            entry: Json = {"start": m.start(), "end": m.end()}
            if kind == "mentions":
                entry["username"] = m[1]
                if (user := users.get(m[1].lower())) is not None:
                    entry["id"] = user.id
            else:
                entry["tag"] = m[1]
            found.append(entry)
        if found:
            out[kind] = found
    return out


class XPeer:
    """X API v2 on 127.0.0.1, for `async with XPeer() as x:`; clients append "/2/..." to
    `x.base_url` and send `Authorization: Bearer {x.bearer_token}`."""

    def __init__(
        self, bearer_token: str = "AAAAAAAAAAAAAAAAAAAAAMaxxitTestBearer",
        *, limits: Mapping[str, int] | None = None, seed: int = 7,
    ) -> None:  # fmt: skip
        self.bearer_token = bearer_token
        self.base_url = ""
        self.requests: list[XRequest] = []
        self._limits = {**DEFAULT_LIMITS, **(limits or {})}
        self._windows: dict[str, _Window] = {}
        self._failures: list[_Failure] = []
        self._offset = 0.0  # advance() moves the peer's clock, not the test's
        self._users: dict[str, XUser] = {}  # by lower-cased username
        self._users_by_id: dict[str, XUser] = {}
        self._tweets: dict[str, Tweet] = {}
        self._timelines: dict[str, list[Tweet]] = {}  # by author id, oldest first
        self._user_ids = itertools.count(1_480_000_001)
        self._last_id = 0
        self._cursors: dict[str, tuple[str, str, int]] = {}  # token -> (user id, way, bound id)
        self._random = random.Random(seed)  # opaque tokens, the same on every run

    async def __aenter__(self) -> XPeer:
        self._stack = contextlib.AsyncExitStack()
        route = Route("/{path:path}", self._endpoint, methods=["GET", "POST", "PUT", "DELETE"])
        self.base_url = await self._stack.enter_async_context(serve_app(Starlette(routes=[route])))
        return self

    async def __aexit__(self, *exc: object) -> None:
        await self._stack.aclose()

    # -- for tests -----------------------------------------------------------------------------

    def now(self) -> float:
        return time.time() + self._offset

    def advance(self, seconds: float) -> None:
        """Moves the peer's clock on: windows whose reset has passed open afresh. Posts made
        without `created_at` are stamped with this clock too."""
        self._offset += seconds

    def reset_windows(self) -> None:
        """Every endpoint gets its full allowance back, as at the start of a window."""
        self._windows.clear()

    def set_limit(self, endpoint: str, limit: int) -> None:
        """Requests allowed per window on `endpoint` (USER_TWEETS, USER_BY_USERNAME, USERS_BY)."""
        self._limits[endpoint] = limit
        if endpoint in self._windows:
            self._windows[endpoint].limit = limit

    def remaining(self, endpoint: str) -> int:
        window = self._window(endpoint)
        return max(0, window.limit - window.used)

    def fail_next(
        self, path_prefix: str, status: int, times: int = 1, *, body: Json | None = None
    ) -> None:
        """The next `times` authorised requests whose path starts with `path_prefix` get
        `status` with `body` (default: X's problem JSON for it) instead of an answer. They carry
        the rate-limit headers but do not spend the window (429s say remaining 0)."""
        self._failures.append(_Failure(path_prefix, status, times, body))

    def add_user(self, username: str, name: str | None = None) -> str:
        if not _USERNAME.fullmatch(username):
            raise ValueError(f"X usernames match {_USERNAME.pattern}: {username!r}")
        if username.lower() in self._users:
            raise ValueError(f"@{username} exists")
        user = XUser(str(next(self._user_ids)), username, name or username,
                     datetime(2019, 3, 1, 12, 0, tzinfo=UTC))  # fmt: skip
        self._users[username.lower()] = self._users_by_id[user.id] = user
        self._timelines[user.id] = []
        return user.id

    def post(
        self, username: str, text: str, *, reply_to: str | None = None,
        quote_of: str | None = None, created_at: datetime | None = None, lang: str = "en",
    ) -> str:  # fmt: skip
        """Publishes a post by @username and returns its id. A reply to someone else starts
        with "@their_handle " as on X; ids grow with every post, whatever `created_at` says."""
        author = self._user(username)
        refs: list[tuple[str, str]] = []
        conversation: str | None = None
        in_reply_to: str | None = None
        if reply_to is not None:
            parent = self._tweet(reply_to)
            refs.append(("replied_to", parent.id))
            conversation, in_reply_to = parent.conversation_id, parent.author_id
            handle = "@" + self._users_by_id[parent.author_id].username
            if parent.author_id != author.id and not text.lower().startswith(handle.lower()):
                text = f"{handle} {text}"
        if quote_of is not None:
            refs.append(("quoted", self._tweet(quote_of).id))
        return self._add(author, text, refs, created_at, lang, conversation, in_reply_to)

    def retweet(self, username: str, tweet_id: str, *, created_at: datetime | None = None) -> str:
        """A repost by @username of `tweet_id`: text "RT @author: …" as X shows it."""
        original = self._tweet(tweet_id)
        text = f"RT @{self._users_by_id[original.author_id].username}: {original.text}"
        refs = [("retweeted", original.id)]
        return self._add(self._user(username), text, refs, created_at, original.lang, None, None)

    def delete(self, tweet_id: str) -> None:
        """Gone from timelines; where it is referenced, `includes` lacks it and `errors` says so."""
        self._tweet(tweet_id).deleted = True

    def suspend(self, username: str) -> None:
        self._user(username).suspended = True

    def tweet(self, tweet_id: str) -> Tweet:
        return self._tweet(tweet_id)

    def calls_to(self, path_prefix: str) -> list[XRequest]:
        return [r for r in self.requests if r.path.startswith(path_prefix)]

    # -- the model -----------------------------------------------------------------------------

    def _user(self, username: str) -> XUser:
        try:
            return self._users[username.lower()]
        except KeyError:
            raise ValueError(f"no user @{username}; add_user() first") from None

    def _tweet(self, tweet_id: str) -> Tweet:
        try:
            return self._tweets[str(tweet_id)]
        except KeyError:
            raise ValueError(f"no post {tweet_id}") from None

    def _add(
        self, author: XUser, text: str, refs: list[tuple[str, str]], created_at: datetime | None,
        lang: str, conversation: str | None, in_reply_to: str | None,
    ) -> str:  # fmt: skip
        at = created_at or datetime.fromtimestamp(self.now(), UTC)
        at = at if at.tzinfo else at.replace(tzinfo=UTC)
        # Snowflake ids carry their time, but a test may backdate a post after newer ones:
        # then the id still grows, because since_id polling relies on ids only ever growing.
        snowflake = (int(at.timestamp() * 1000) - TWEPOCH_MS) << 22
        self._last_id = max(self._last_id + 1, snowflake)
        tweet_id = str(self._last_id)
        # X's created_at has whole seconds (always ".000Z"), although the id knows the ms.
        tweet = Tweet(tweet_id, author.id, text, at.replace(microsecond=0), lang,
                      conversation or tweet_id, refs, in_reply_to)  # fmt: skip
        self._tweets[tweet_id] = tweet
        self._timelines[author.id].append(tweet)
        return tweet_id

    def _window(self, endpoint: str) -> _Window:
        window = self._windows.setdefault(endpoint, _Window(self._limits[endpoint]))
        if self.now() >= window.reset:
            window.used, window.reset = 0, math.floor(self.now()) + WINDOW_SECONDS
        return window

    def _rate_headers(self, window: _Window, exhausted: bool = False) -> dict[str, str]:
        left = 0 if exhausted else max(0, window.limit - window.used)
        return {"x-rate-limit-limit": str(window.limit), "x-rate-limit-remaining": str(left),
                "x-rate-limit-reset": str(int(window.reset))}  # fmt: skip

    def _token(self, user_id: str, way: str, bound: int) -> str:
        token = "".join(self._random.choices(_TOKEN_CHARS, k=45))
        self._cursors[token] = (user_id, way, bound)
        return token

    # -- HTTP ----------------------------------------------------------------------------------

    async def _endpoint(self, request: Request) -> JSONResponse:
        path = request.scope["path"]
        params = dict(request.query_params)
        status, body, headers = self._answer(request, path, params)
        self.requests.append(XRequest(self.now(), path, params, status))
        # X answers its problem bodies (401, 429, 5xx) as application/problem+json.
        media = "application/problem+json" if body.get("type") == "about:blank" else None
        response = JSONResponse(body, status_code=status, headers=headers)
        if media:
            response.headers["content-type"] = media
        return response

    def _answer(self, request: Request, path: str, params: dict[str, str]) -> tuple[
        int, Json, dict[str, str]
    ]:  # fmt: skip
        # Auth comes first: an unauthenticated request belongs to no app, so no window.
        if request.headers.get("authorization") != f"Bearer {self.bearer_token}":
            return 401, blank_problem(401), {}
        match = next(((m, key) for rx, key in _ROUTES if (m := rx.fullmatch(path))), None)
        if match is None or request.method != "GET":
            return 404, blank_problem(404), {}
        m, endpoint = match
        window = self._window(endpoint)
        if failure := next((f for f in self._failures if path.startswith(f.prefix)), None):
            failure.left -= 1
            if failure.left <= 0:
                self._failures.remove(failure)
            body = failure.body if failure.body is not None else blank_problem(failure.status)
            return failure.status, body, self._rate_headers(window, failure.status == 429)
        if window.used >= window.limit:
            return 429, blank_problem(429), self._rate_headers(window, True)
        window.used += 1
        headers = self._rate_headers(window)
        try:
            self._check_params(endpoint, params)
            if endpoint == USER_BY_USERNAME:
                body = self._by_username(m["username"], params)
            elif endpoint == USERS_BY:
                body = self._by_usernames(params)
            else:
                body = self._user_tweets(m["id"], params)
        except _Problem as problem:
            return problem.status, problem.body, headers
        return 200, body, headers

    def _check_params(self, endpoint: str, params: dict[str, str]) -> None:
        allowed = _PARAMS[endpoint]
        for name, value in params.items():
            if name not in allowed:
                names = ",".join(sorted(allowed | _PATH_PARAMS[endpoint]))
                raise _invalid(name, value, f"The query parameter [{name}] is not one of [{names}]")
        tweet_exp = TWEET_EXPANSIONS if endpoint == USER_TWEETS else USER_EXPANSIONS
        for name, valid in (("tweet.fields", TWEET_FIELDS), ("user.fields", USER_FIELDS),
                            ("expansions", tweet_exp)):  # fmt: skip
            self._csv(params, name, valid)

    @staticmethod
    def _csv(params: dict[str, str], name: str, valid: frozenset[str]) -> set[str]:
        if name not in params:
            return set()
        values = params[name].split(",")
        for value in values:
            if value not in valid:
                raise _invalid(
                    name, value,
                    f"The `{name}` query parameter value [{value}] is not one of "
                    f"[{','.join(sorted(valid))}]",
                )  # fmt: skip
        return set(values)

    # -- users ---------------------------------------------------------------------------------

    def _user_json(self, user: XUser, fields: set[str]) -> Json:
        out: Json = {"id": user.id, "name": user.name, "username": user.username}
        extra: Json = {
            "created_at": x_time(user.created_at), "description": "", "protected": False,
            "verified": False, "verified_type": "none",
            "profile_image_url": f"https://pbs.twimg.com/profile_images/{user.id}/p_normal.jpg",
            "public_metrics": {"followers_count": 0, "following_count": 0, "tweet_count":
                               len(self._timelines[user.id]), "listed_count": 0,
                               "like_count": 0, "media_count": 0},
        }  # fmt: skip
        return out | {k: v for k, v in extra.items() if k in fields}

    def _by_username(self, username: str, params: dict[str, str]) -> Json:
        if not _USERNAME.fullmatch(username):
            raise _invalid(
                "username", username,
                f"The `username` query parameter value [{username}] does not match "
                f"^[A-Za-z0-9_]{{1,15}}$",
            )  # fmt: skip
        user = self._users.get(username.lower())
        if user is None or user.suspended:
            error = _resource_error("user", "username", username, suspended=user is not None)
            return {"errors": [error]}
        return {"data": self._user_json(user, self._csv(params, "user.fields", USER_FIELDS))}

    def _by_usernames(self, params: dict[str, str]) -> Json:
        if "usernames" not in params:
            raise _invalid("usernames", "", "The `usernames` query parameter can not be empty")
        names = params["usernames"].split(",")
        if not 1 <= len(names) <= 100:
            raise _invalid(
                "usernames", params["usernames"],
                f"The number of values in the `usernames` query parameter list [{len(names)}] "
                "is not between 1 and 100",
            )  # fmt: skip
        fields = self._csv(params, "user.fields", USER_FIELDS)
        data, errors = [], []
        for name in names:
            if not _USERNAME.fullmatch(name):
                raise _invalid(
                    "usernames", name,
                    f"The `usernames` query parameter value [{name}] does not match "
                    f"^[A-Za-z0-9_]{{1,15}}$",
                )  # fmt: skip
            user = self._users.get(name.lower())
            if user is None or user.suspended:
                errors.append(
                    _resource_error("user", "usernames", name, suspended=user is not None)
                )
            else:
                data.append(self._user_json(user, fields))
        return ({"data": data} if data else {}) | ({"errors": errors} if errors else {})

    # -- the timeline --------------------------------------------------------------------------

    def _user_tweets(self, user_id: str, params: dict[str, str]) -> Json:
        if not _ID.fullmatch(user_id):
            raise _invalid(
                "id", user_id,
                f"The `id` query parameter value [{user_id}] does not match ^[0-9]{{1,19}}$",
            )  # fmt: skip
        max_results = self._max_results(params)
        since, until = self._id_param(params, "since_id"), self._id_param(params, "until_id")
        start, end = self._time_param(params, "start_time"), self._time_param(params, "end_time")
        exclude = self._csv(params, "exclude", frozenset({"replies", "retweets"}))
        cursor = None
        if "pagination_token" in params:
            cursor = self._cursors.get(params["pagination_token"])
            if cursor is None or cursor[0] != user_id:
                token = params["pagination_token"]
                raise _invalid(
                    "pagination_token", token,
                    f"The `pagination_token` query parameter value [{token}] is not valid",
                )  # fmt: skip
        user = self._users_by_id.get(user_id)
        if user is None or user.suspended:
            return {"errors": [_resource_error("user", "id", user_id, suspended=user is not None)]}

        # Newest first, within X's depth, then the filters; the cursor picks the page.
        posts = [t for t in reversed(self._timelines[user_id]) if not t.deleted][:TIMELINE_DEPTH]
        if "replies" in exclude:
            posts = [t for t in posts if not t.refers("replied_to")][:DEPTH_WITHOUT_REPLIES]
        if "retweets" in exclude:
            posts = [t for t in posts if not t.refers("retweeted")]
        posts = [
            t for t in posts
            if (since is None or int(t.id) > since) and (until is None or int(t.id) < until)
            and (start is None or t.created_at >= start) and (end is None or t.created_at < end)
        ]  # fmt: skip
        if cursor is None:
            page = posts[:max_results]
        elif cursor[1] == "older":
            page = [t for t in posts if int(t.id) < cursor[2]][:max_results]
        else:  # "newer": the page just above the bound, still newest first
            page = [t for t in posts if int(t.id) > cursor[2]][-max_results:]
        if not page:
            return {"meta": {"result_count": 0}}

        meta: Json = {"result_count": len(page), "newest_id": page[0].id,
                      "oldest_id": page[-1].id}  # fmt: skip
        if int(posts[-1].id) < int(page[-1].id):
            meta["next_token"] = self._token(user_id, "older", int(page[-1].id))
        if int(posts[0].id) > int(page[0].id):
            meta["previous_token"] = self._token(user_id, "newer", int(page[0].id))
        body: Json = {"data": []}
        fields = self._csv(params, "tweet.fields", TWEET_FIELDS)
        body["data"] = [self._tweet_json(t, fields) for t in page]
        includes, errors = self._includes(page, params, fields)
        if includes:
            body["includes"] = includes
        if errors:
            body["errors"] = errors
        body["meta"] = meta
        return body

    @staticmethod
    def _max_results(params: dict[str, str]) -> int:
        raw = params.get("max_results", "10")
        if not raw.isdigit() or not 5 <= int(raw) <= 100:
            raise _invalid(
                "max_results", raw,
                f"The `max_results` query parameter value [{raw}] is not between 5 and 100",
            )  # fmt: skip
        return int(raw)

    @staticmethod
    def _id_param(params: dict[str, str], name: str) -> int | None:
        if name not in params:
            return None
        if not _ID.fullmatch(value := params[name]):
            raise _invalid(
                name, value,
                f"The `{name}` query parameter value [{value}] does not match ^[0-9]{{1,19}}$",
            )  # fmt: skip
        return int(value)

    @staticmethod
    def _time_param(params: dict[str, str], name: str) -> datetime | None:
        if name not in params:
            return None
        value = params[name]
        try:
            at = datetime.fromisoformat(value)
        except ValueError:
            raise _invalid(
                name, value,
                f"The `{name}` query parameter value [{value}] is not a valid RFC 3339 timestamp",
            ) from None  # fmt: skip
        return at if at.tzinfo else at.replace(tzinfo=UTC)

    def _tweet_json(self, tweet: Tweet, fields: set[str]) -> Json:
        # Without tweet.fields X sends only these three; everything else must be asked for.
        out: Json = {"id": tweet.id, "text": tweet.text[:MAX_TEXT],
                     "edit_history_tweet_ids": [tweet.id]}  # fmt: skip
        extra: Json = {
            "created_at": x_time(tweet.created_at), "author_id": tweet.author_id,
            "conversation_id": tweet.conversation_id, "lang": tweet.lang,
            "possibly_sensitive": False, "reply_settings": "everyone",
            "public_metrics": {"retweet_count": 0, "reply_count": 0, "like_count": 0,
                               "quote_count": 0, "bookmark_count": 0, "impression_count": 0},
            "entities": _entities(tweet.text[:MAX_TEXT], self._users),
        }  # fmt: skip
        # Fields that do not apply are absent rather than null, as on X.
        if tweet.in_reply_to_user_id is not None:
            extra["in_reply_to_user_id"] = tweet.in_reply_to_user_id
        if tweet.referenced:
            extra["referenced_tweets"] = [{"type": k, "id": i} for k, i in tweet.referenced]
        if len(tweet.text) > MAX_TEXT:
            extra["note_tweet"] = {"text": tweet.text} | (
                {"entities": e} if (e := _entities(tweet.text, self._users)) else {}
            )
        if not extra["entities"]:
            del extra["entities"]
        return out | {k: v for k, v in extra.items() if k in fields}

    def _includes(self, page: list[Tweet], params: dict[str, str], fields: set[str]) -> tuple[
        Json, list[Json]
    ]:  # fmt: skip
        expansions = self._csv(params, "expansions", TWEET_EXPANSIONS)
        user_fields = self._csv(params, "user.fields", USER_FIELDS)
        includes: Json = {}
        errors: list[Json] = []
        referenced: list[Tweet] = []
        if {"referenced_tweets.id", "referenced_tweets.id.author_id"} & expansions:
            for tweet in page:
                for _, ref_id in tweet.referenced:
                    ref = self._tweets.get(ref_id)
                    if ref is None or ref.deleted:
                        errors.append(_resource_error("tweet", "referenced_tweets.id", ref_id))
                    elif ref not in referenced:
                        referenced.append(ref)
        if "referenced_tweets.id" in expansions and referenced:
            includes["tweets"] = [self._tweet_json(t, fields) for t in referenced]
        user_ids: list[str] = []
        if "author_id" in expansions:
            user_ids += [t.author_id for t in page]
        if "in_reply_to_user_id" in expansions:
            user_ids += [t.in_reply_to_user_id for t in page if t.in_reply_to_user_id]
        if "referenced_tweets.id.author_id" in expansions:
            user_ids += [t.author_id for t in referenced]
        if user_ids:
            unique = list(dict.fromkeys(user_ids))
            includes["users"] = [self._user_json(self._users_by_id[u], user_fields) for u in unique]
        return includes, errors
