"""The X API v2, the two calls a timeline poller needs (httpx against the documented
endpoints): usernames to ids, and a user's posts since an id. Every answer's
`x-rate-limit-*` headers are kept per endpoint, so the poller spends only what is left and
waits for the window's reset; a 429 is a wait, never an error that loses posts."""

from __future__ import annotations

import time
from dataclasses import dataclass, field
from typing import Any

import httpx

USERS_BY = "users_by"
USER_TWEETS = "user_tweets"
TWEET_FIELDS = "created_at,referenced_tweets,lang,author_id,conversation_id,note_tweet"


class RateLimited(Exception):
    def __init__(self, endpoint: str, reset_at: float) -> None:
        super().__init__(f"X rate limit on {endpoint} until {reset_at:.0f}")
        self.endpoint = endpoint
        self.reset_at = reset_at


class XError(Exception):
    """X answered with an error that is not about rate (auth, a bad handle, an outage)."""


@dataclass(slots=True)
class Window:
    remaining: int | None = None  # unknown until the first answer
    reset_at: float = 0.0


@dataclass(frozen=True, slots=True)
class XPost:
    id: str
    text: str  # with a quoted post's text appended, as the author presented it
    created_at: str
    is_reply: bool


@dataclass(slots=True)
class XClient:
    base_url: str
    bearer_token: str
    timeout: float = 15.0
    windows: dict[str, Window] = field(default_factory=dict)
    _http: httpx.AsyncClient | None = None

    def _client(self) -> httpx.AsyncClient:
        if self._http is None:
            self._http = httpx.AsyncClient(
                base_url=self.base_url.rstrip("/"),
                headers={"Authorization": f"Bearer {self.bearer_token}"},
                timeout=self.timeout,
            )
        return self._http

    async def aclose(self) -> None:
        if self._http is not None:
            await self._http.aclose()
            self._http = None

    def can_call(self, endpoint: str, now: float | None = None) -> bool:
        w = self.windows.get(endpoint)
        now = time.time() if now is None else now
        return w is None or w.remaining is None or w.remaining > 0 or now >= w.reset_at

    async def _get(self, endpoint: str, path: str, params: dict[str, Any]) -> dict[str, Any]:
        if not self.can_call(endpoint):
            raise RateLimited(endpoint, self.windows[endpoint].reset_at)
        response = await self._client().get(path, params=params)
        w = self.windows.setdefault(endpoint, Window())
        if "x-rate-limit-remaining" in response.headers:
            w.remaining = int(response.headers["x-rate-limit-remaining"])
            w.reset_at = float(response.headers.get("x-rate-limit-reset", time.time() + 900))
        if response.status_code == 429:
            w.remaining = 0
            if w.reset_at <= time.time():
                w.reset_at = time.time() + 60
            raise RateLimited(endpoint, w.reset_at)
        if response.status_code >= 400:
            raise XError(f"X {path}: HTTP {response.status_code} {response.text[:200]}")
        return response.json()

    async def user_ids(self, usernames: list[str]) -> dict[str, str]:
        """Lower-cased username -> id, up to 100 per request; unknown names are left out."""
        out: dict[str, str] = {}
        for i in range(0, len(usernames), 100):
            batch = usernames[i : i + 100]
            body = await self._get(USERS_BY, "/2/users/by", {"usernames": ",".join(batch)})
            for user in body.get("data", []):
                out[user["username"].lower()] = user["id"]
        return out

    async def posts_since(
        self, user_id: str, since_id: str | None, include_replies: bool = False
    ) -> list[XPost]:
        """Every post after `since_id`, oldest first, following pagination."""
        params: dict[str, Any] = {
            "max_results": 100,
            "tweet.fields": TWEET_FIELDS,
            "expansions": "referenced_tweets.id,referenced_tweets.id.author_id",
            "user.fields": "username",
        }
        params["exclude"] = "retweets" if include_replies else "replies,retweets"
        if since_id:
            params["since_id"] = since_id
        posts: list[XPost] = []
        while True:
            body = await self._get(USER_TWEETS, f"/2/users/{user_id}/tweets", params)
            includes = body.get("includes", {})
            quoted = {t["id"]: t for t in includes.get("tweets", [])}
            authors = {u["id"]: u["username"] for u in includes.get("users", [])}
            for tweet in body.get("data", []):
                posts.append(_post(tweet, quoted, authors))
            token = body.get("meta", {}).get("next_token")
            if not token:
                break
            params["pagination_token"] = token
        posts.sort(key=lambda p: int(p.id))
        return posts


def _post(tweet: dict[str, Any], quoted: dict[str, Any], authors: dict[str, str]) -> XPost:
    # long posts come cut in `text`, whole in `note_tweet`
    text = (tweet.get("note_tweet") or {}).get("text") or tweet["text"]
    refs = tweet.get("referenced_tweets") or []
    for ref in refs:
        if ref.get("type") == "quoted" and ref.get("id") in quoted:
            q = quoted[ref["id"]]
            who = authors.get(q.get("author_id", ""), "someone")
            # the same shape the classifiers read as "not the author's own call"
            text = f'{text}\n\nQT @{who}: "{q.get("text", "")}"'
    is_reply = any(r.get("type") == "replied_to" for r in refs)
    return XPost(tweet["id"], text, tweet.get("created_at", ""), is_reply)
