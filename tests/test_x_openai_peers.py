"""The X API v2 and OpenAI Chat Completions stand-ins, driven by real clients: httpx and tweepy's
AsyncClient for X, the official `openai` AsyncOpenAI for the model."""

from __future__ import annotations

import json
import re
import time
from collections.abc import AsyncIterator
from datetime import UTC, datetime
from typing import Any

import aiohttp
import httpx
import openai
import pydantic
import pytest
import tweepy
from openai.types.chat import ChatCompletionMessageParam
from openai.types.shared_params import ResponseFormatJSONSchema
from tweepy.asynchronous import AsyncClient

from tests.peers.openai_api import REFUSAL, OpenAIPeer
from tests.peers.x_api import USER_TWEETS, XPeer

TIMELINE = {
    "max_results": "5",
    "tweet.fields": "created_at,referenced_tweets,lang,author_id,conversation_id",
    "expansions": "referenced_tweets.id",
}
X_TIME = re.compile(r"\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\.000Z")


@pytest.fixture
async def x() -> AsyncIterator[XPeer]:
    async with XPeer() as peer:
        yield peer


@pytest.fixture
async def api(x: XPeer) -> AsyncIterator[httpx.AsyncClient]:
    headers = {"Authorization": f"Bearer {x.bearer_token}"}
    async with httpx.AsyncClient(base_url=x.base_url, headers=headers) as client:
        yield client


# -- X over httpx ------------------------------------------------------------------------------


async def test_user_lookup_single_batch_and_unknown(x: XPeer, api: httpx.AsyncClient) -> None:
    uid = x.add_user("CryptoKaleo", "K A L E O")
    r = await api.get("/2/users/by/username/cryptokaleo")  # usernames match case-blind
    assert r.status_code == 200
    assert r.json() == {"data": {"id": uid, "name": "K A L E O", "username": "CryptoKaleo"}}
    assert r.headers["x-rate-limit-limit"] == "300"
    assert r.headers["x-rate-limit-remaining"] == "299"

    # An unknown account is a 200 with errors, not a 404.
    r = await api.get("/2/users/by/username/nobody_here")
    assert r.status_code == 200
    assert r.json() == {
        "errors": [
            {
                "value": "nobody_here",
                "detail": "Could not find user with username: [nobody_here].",
                "title": "Not Found Error",
                "resource_type": "user",
                "parameter": "username",
                "resource_id": "nobody_here",
                "type": "https://api.twitter.com/2/problems/resource-not-found",
            }
        ]
    }

    r = await api.get("/2/users/by", params={"usernames": "CryptoKaleo,ghost"})
    body = r.json()
    assert [u["id"] for u in body["data"]] == [uid]
    assert body["errors"][0]["detail"] == "Could not find user with usernames: [ghost]."

    r = await api.get("/2/users/by/username/not-a-handle")
    assert r.status_code == 400 and r.json()["title"] == "Invalid Request"


async def test_wrong_or_missing_token_is_401(x: XPeer) -> None:
    x.add_user("trader")
    async with httpx.AsyncClient(base_url=x.base_url) as bare:
        for headers in ({}, {"Authorization": "Bearer nope"}):
            r = await bare.get("/2/users/by/username/trader", headers=headers)
            assert r.status_code == 401
            assert r.json() == {"title": "Unauthorized", "type": "about:blank", "status": 401,
                                "detail": "Unauthorized"}  # fmt: skip
            assert "x-rate-limit-remaining" not in r.headers  # no app, so no window
    assert [q.status for q in x.requests] == [401, 401]


async def test_timeline_since_id_and_pagination(x: XPeer, api: httpx.AsyncClient) -> None:
    uid = x.add_user("trader")
    ids = [x.post("trader", f"call {i}: long $BTC") for i in range(7)]
    assert [int(i) for i in ids] == sorted(int(i) for i in ids)  # ids grow

    first = (await api.get(f"/2/users/{uid}/tweets", params=TIMELINE)).json()
    assert [t["id"] for t in first["data"]] == ids[:1:-1]  # the five newest, newest first
    tweet = first["data"][0]
    assert tweet["author_id"] == uid and tweet["lang"] == "en" and tweet["conversation_id"]
    assert X_TIME.fullmatch(tweet["created_at"])
    assert tweet["edit_history_tweet_ids"] == [tweet["id"]]
    assert "referenced_tweets" not in tweet and "includes" not in first
    meta = first["meta"]
    assert (meta["result_count"], meta["newest_id"], meta["oldest_id"]) == (5, ids[6], ids[2])

    # A post landing between pages does not shift the next page: the token is a position.
    late = x.post("trader", "late call")
    page2 = (
        await api.get(
            f"/2/users/{uid}/tweets", params=TIMELINE | {"pagination_token": meta["next_token"]}
        )
    ).json()
    assert [t["id"] for t in page2["data"]] == [ids[1], ids[0]]
    assert "next_token" not in page2["meta"] and "previous_token" in page2["meta"]

    # since_id is strictly newer, compared as numbers.
    newer = (await api.get(f"/2/users/{uid}/tweets", params=TIMELINE | {"since_id": ids[6]})).json()
    assert [t["id"] for t in newer["data"]] == [late]
    none = (await api.get(f"/2/users/{uid}/tweets", params=TIMELINE | {"since_id": late})).json()
    assert none == {"meta": {"result_count": 0}}

    # Without tweet.fields X sends only id, text and edit_history_tweet_ids.
    bare = (await api.get(f"/2/users/{uid}/tweets", params={"max_results": 5})).json()
    assert set(bare["data"][0]) == {"id", "text", "edit_history_tweet_ids"}


async def test_exclude_replies_quotes_in_includes_deleted_quote(
    x: XPeer, api: httpx.AsyncClient
) -> None:
    uid = x.add_user("kol")
    x.add_user("whale")
    source = x.post("whale", "$ETH breakout above 4k", lang="en")
    quote = x.post("kol", "Agree, longing $ETH here", quote_of=source)
    reply = x.post("kol", "no, that's a scam", reply_to=source)
    at = datetime(2025, 1, 2, 3, 4, 5, tzinfo=UTC)
    own = x.post("kol", "Shorting $SOL at 180", created_at=at)

    repost = x.retweet("kol", source)

    everything = (await api.get(f"/2/users/{uid}/tweets", params=TIMELINE)).json()
    by_id = {t["id"]: t for t in everything["data"]}
    assert list(by_id) == [repost, own, reply, quote]
    assert by_id[repost]["text"] == "RT @whale: $ETH breakout above 4k"
    assert by_id[repost]["referenced_tweets"] == [{"type": "retweeted", "id": source}]
    assert by_id[reply]["text"] == "@whale no, that's a scam"  # as X adds the handle
    assert by_id[reply]["referenced_tweets"] == [{"type": "replied_to", "id": source}]
    assert by_id[reply]["conversation_id"] == source
    assert by_id[own]["created_at"] == "2025-01-02T03:04:05.000Z"

    params = TIMELINE | {"exclude": "replies,retweets"}
    body = (await api.get(f"/2/users/{uid}/tweets", params=params)).json()
    assert [t["id"] for t in body["data"]] == [own, quote]
    assert body["data"][1]["referenced_tweets"] == [{"type": "quoted", "id": source}]
    [included] = body["includes"]["tweets"]
    assert included["id"] == source and included["text"] == "$ETH breakout above 4k"

    x.delete(source)  # the quoted post is gone: includes lacks it and errors says why
    body = (await api.get(f"/2/users/{uid}/tweets", params=params)).json()
    assert "includes" not in body
    [gone] = body["errors"]
    assert gone["detail"] == f"Could not find tweet with referenced_tweets.id: [{source}]."


async def test_rate_limit_window_429_and_reset() -> None:
    async with XPeer(limits={USER_TWEETS: 5}) as x:
        uid = x.add_user("trader")
        x.post("trader", "gm")
        headers = {"Authorization": f"Bearer {x.bearer_token}"}
        async with httpx.AsyncClient(base_url=x.base_url, headers=headers) as client:
            url = f"/2/users/{uid}/tweets"
            left = [(await client.get(url)).headers["x-rate-limit-remaining"] for _ in range(5)]
            assert left == ["4", "3", "2", "1", "0"]
            r = await client.get(url)
            assert r.status_code == 429
            assert r.json() == {"title": "Too Many Requests", "detail": "Too Many Requests",
                                "type": "about:blank", "status": 429}  # fmt: skip
            reset = int(r.headers["x-rate-limit-reset"])
            assert time.time() < reset <= time.time() + 15 * 60 + 1
            assert r.headers["x-rate-limit-remaining"] == "0"
            # Other endpoints have windows of their own.
            assert (await client.get("/2/users/by/username/trader")).status_code == 200

            x.advance(15 * 60)  # the window passes
            r = await client.get(url)
            assert r.status_code == 200 and r.headers["x-rate-limit-remaining"] == "4"
            assert int(r.headers["x-rate-limit-reset"]) >= reset + 15 * 60 - 1

            x.set_limit(USER_TWEETS, 1)
            x.reset_windows()
            assert (await client.get(url)).status_code == 200
            assert (await client.get(url)).status_code == 429


async def test_injected_failures_and_invalid_parameters(x: XPeer, api: httpx.AsyncClient) -> None:
    uid = x.add_user("trader")
    x.fail_next("/2/users/", 503, times=2)
    statuses = [(await api.get(f"/2/users/{uid}/tweets")).status_code for _ in range(3)]
    assert statuses == [503, 503, 200]
    assert [q.status for q in x.calls_to(f"/2/users/{uid}")] == statuses

    for params, message in [
        ({"max_results": "3"}, "`max_results` query parameter value [3] is not between 5 and 100"),
        ({"tweet.fields": "created_at,user"}, "`tweet.fields` query parameter value [user] is not"),
        ({"exclude": "quotes"}, "`exclude` query parameter value [quotes] is not one of"),
        ({"tweet_fields": "lang"}, "query parameter [tweet_fields] is not one of"),
        ({"pagination_token": "nope"}, "`pagination_token` query parameter value [nope] is not"),
    ]:  # fmt: skip
        r = await api.get(f"/2/users/{uid}/tweets", params=params)
        assert r.status_code == 400, params
        assert message in r.json()["errors"][0]["message"]
        assert r.json()["type"] == "https://api.twitter.com/2/problems/invalid-request"

    # An unknown or suspended id is a 200 with errors, like the lookups.
    assert (await api.get("/2/users/123/tweets")).json()["errors"][0]["title"] == "Not Found Error"
    x.suspend("trader")
    suspended = (await api.get(f"/2/users/{uid}/tweets")).json()["errors"][0]
    assert suspended["detail"] == f"User has been suspended: [{uid}]."


async def test_long_post_text_is_cut_and_note_tweet_holds_it(
    x: XPeer, api: httpx.AsyncClient
) -> None:
    uid = x.add_user("trader")
    call = "Thread on $BTC: " + "reasons " * 40 + "target 150k"
    x.post("trader", call)
    params = {"max_results": "5", "tweet.fields": "note_tweet,entities"}
    [tweet] = (await api.get(f"/2/users/{uid}/tweets", params=params)).json()["data"]
    assert len(tweet["text"]) == 280 and tweet["note_tweet"]["text"] == call
    assert tweet["entities"]["cashtags"] == [{"start": 10, "end": 14, "tag": "BTC"}]


# -- X over tweepy -----------------------------------------------------------------------------


class _ToPeer:
    """Stands in for tweepy's documented `AsyncClient.session`. tweepy builds every URL from the
    hard-coded "https://api.twitter.com", so we re-point the URLs to the peer; the rest is a
    real aiohttp session, and tweepy itself runs unmodified."""

    def __init__(self, session: aiohttp.ClientSession, base_url: str) -> None:
        self._session, self._base = session, base_url

    def request(self, method: str, url: Any, **kwargs: Any) -> Any:
        return self._session.request(
            method, str(url).replace("https://api.twitter.com", self._base, 1), **kwargs
        )


async def test_tweepy_async_client_against_the_peer() -> None:
    async with XPeer(limits={USER_TWEETS: 2}) as x, aiohttp.ClientSession() as session:
        uid = x.add_user("kol")
        x.add_user("whale")
        source = x.post("whale", "$ETH looks ready")
        quote = x.post("kol", "Long $ETH", quote_of=source)
        x.post("kol", "lol", reply_to=source)

        client = AsyncClient(bearer_token=x.bearer_token)
        client.session = _ToPeer(session, x.base_url)
        user = (await client.get_user(username="KOL")).data
        assert (user.id, user.username) == (int(uid), "kol")

        resp = await client.get_users_tweets(
            uid, since_id=int(source), max_results=5, exclude=["replies"],
            tweet_fields=["created_at", "referenced_tweets", "lang", "author_id"],
            expansions=["referenced_tweets.id"],
        )  # fmt: skip
        [tweet] = resp.data
        assert tweet.id == int(quote) and tweet.created_at.tzinfo is not None
        assert tweet.referenced_tweets[0].type == "quoted"
        assert resp.includes["tweets"][0].id == int(source)
        assert resp.meta["result_count"] == 1

        await client.get_users_tweets(uid)
        with pytest.raises(tweepy.TooManyRequests) as limited:
            await client.get_users_tweets(uid)
        assert limited.value.reset_time > time.time()

        wrong = AsyncClient(bearer_token="wrong")
        wrong.session = client.session
        with pytest.raises(tweepy.Unauthorized):
            await wrong.get_user(username="kol")


# -- OpenAI over the official client -----------------------------------------------------------

SIGNAL_SCHEMA = {
    "type": "object",
    "properties": {
        "is_call": {"type": "boolean"},
        "ticker": {"type": ["string", "null"]},
        "side": {"type": "string", "enum": ["long", "short", "none"]},
    },
    "required": ["is_call", "ticker", "side"],
    "additionalProperties": False,
}
SIGNAL_FORMAT: ResponseFormatJSONSchema = {
    "type": "json_schema",
    "json_schema": {"name": "signal", "schema": SIGNAL_SCHEMA, "strict": True},
}
ASK: list[ChatCompletionMessageParam] = [
    {"role": "system", "content": "Classify the post."},
    {"role": "user", "content": "Long $ETH here"},
]


class Signal(pydantic.BaseModel):
    is_call: bool
    ticker: str | None
    side: str


def classify(messages: list[dict[str, Any]], schema: dict[str, Any] | None) -> dict[str, Any]:
    assert schema is not None and schema["required"] == ["is_call", "ticker", "side"]
    text = messages[-1]["content"]
    ticker = m[1] if (m := re.search(r"\$([A-Z]+)", text)) else None
    return {"is_call": ticker is not None, "ticker": ticker, "side": "long"}


@pytest.fixture
async def llm() -> AsyncIterator[OpenAIPeer]:
    async with OpenAIPeer(classify) as peer:
        yield peer


def client_for(peer: OpenAIPeer, **kwargs: Any) -> openai.AsyncOpenAI:
    options: dict[str, Any] = {"max_retries": 0, "timeout": 5.0} | kwargs
    return openai.AsyncOpenAI(base_url=peer.base_url + "/v1", api_key=peer.api_key, **options)


async def test_json_schema_answer_usage_and_requests(llm: OpenAIPeer) -> None:
    async with client_for(llm) as client:
        done = await client.chat.completions.create(
            model="gpt-4o-mini", messages=ASK, response_format=SIGNAL_FORMAT,
            temperature=0, max_tokens=200,
        )  # fmt: skip
        assert done.id.startswith("chatcmpl-") and done.object == "chat.completion"
        choice = done.choices[0]
        assert choice.finish_reason == "stop" and choice.message.refusal is None
        assert json.loads(choice.message.content or "") == {
            "is_call": True, "ticker": "ETH", "side": "long"
        }  # fmt: skip
        assert done.usage is not None and done.usage.total_tokens == (
            done.usage.prompt_tokens + done.usage.completion_tokens
        )
        assert done._request_id and done._request_id.startswith("req_")

        # .parse() sends the schema openai derives from the model, strict; the peer accepts it.
        parsed = await client.chat.completions.parse(
            model="gpt-4o-mini", messages=ASK, response_format=Signal
        )
        assert parsed.choices[0].message.parsed == Signal(is_call=True, ticker="ETH", side="long")
    assert llm.calls == 2
    assert llm.requests[0]["response_format"] == SIGNAL_FORMAT
    assert llm.requests[1]["response_format"]["json_schema"]["strict"] is True


async def test_wrong_key_and_what_the_api_refuses(llm: OpenAIPeer) -> None:
    bad = openai.AsyncOpenAI(base_url=llm.base_url + "/v1", api_key="sk-wrong", max_retries=0)
    async with bad:
        with pytest.raises(openai.AuthenticationError) as denied:
            await bad.chat.completions.create(model="gpt-4o-mini", messages=ASK)
    assert denied.value.code == "invalid_api_key" and denied.value.type == "invalid_request_error"
    assert "Incorrect API key provided" in denied.value.message

    loose = {"type": "object", "required": ["ticker"], "additionalProperties": False,
             "properties": {"ticker": {"type": "string"}, "note": {"type": "string"}}}  # fmt: skip
    async with client_for(llm) as client:
        with pytest.raises(openai.BadRequestError) as refused:
            await client.chat.completions.create(
                model="gpt-4o-mini", messages=ASK,
                response_format={"type": "json_schema",
                                 "json_schema": {"name": "s", "schema": loose, "strict": True}},
            )  # fmt: skip
        assert refused.value.code == "invalid_json_schema"
        assert "Missing 'note'" in refused.value.message

        with pytest.raises(openai.BadRequestError) as reasoning:
            await client.chat.completions.create(model="gpt-5-mini", messages=ASK, max_tokens=100)
        assert reasoning.value.code == "unsupported_parameter"


async def test_each_failure_as_the_client_raises_it(llm: OpenAIPeer) -> None:
    async with client_for(llm) as client:

        async def ask() -> Any:
            return await client.chat.completions.create(
                model="gpt-4o-mini", messages=ASK, response_format=SIGNAL_FORMAT
            )

        llm.fail_next("500")
        with pytest.raises(openai.InternalServerError) as server:
            await ask()
        assert server.value.type == "server_error"

        llm.fail_next("429", retry_after=2)
        with pytest.raises(openai.RateLimitError) as limited:
            await ask()
        assert limited.value.code == "rate_limit_exceeded"
        assert limited.value.response.headers["retry-after"] == "2"

        llm.fail_next("quota")
        with pytest.raises(openai.RateLimitError) as broke:
            await ask()
        assert broke.value.code == "insufficient_quota"

        llm.fail_next("timeout")
        started = time.monotonic()
        with pytest.raises(openai.APITimeoutError):
            await client.with_options(timeout=0.3).chat.completions.create(
                model="gpt-4o-mini", messages=ASK
            )
        assert time.monotonic() - started < 2

        llm.fail_next("malformed")
        with pytest.raises(json.JSONDecodeError):
            json.loads((await ask()).choices[0].message.content)

        llm.fail_next("schema_violation")
        assert json.loads((await ask()).choices[0].message.content) == {
            "ticker": "ETH", "side": "long"
        }  # fmt: skip

        llm.fail_next("refusal")
        message = (await ask()).choices[0].message
        assert (message.content, message.refusal) == (None, REFUSAL)

        async def parse() -> Any:
            return await client.chat.completions.parse(
                model="gpt-4o-mini", messages=ASK, response_format=Signal
            )

        llm.fail_next("schema_violation")
        with pytest.raises(pydantic.ValidationError):
            await parse()
        llm.fail_next("malformed")
        with pytest.raises(pydantic.ValidationError):
            await parse()
        llm.fail_next("length")
        with pytest.raises(openai.LengthFinishReasonError):
            await parse()
        llm.fail_next("refusal")
        refused = (await parse()).choices[0].message
        assert refused.parsed is None and refused.refusal == REFUSAL


async def test_client_retries_ride_out_queued_failures(llm: OpenAIPeer) -> None:
    llm.fail_next("429", times=2, retry_after=0.01)  # retry-after-ms keeps the retries quick
    async with client_for(llm, max_retries=2) as client:
        done = await client.chat.completions.create(
            model="gpt-4o-mini", messages=ASK, response_format=SIGNAL_FORMAT
        )
    assert json.loads(done.choices[0].message.content or "")["ticker"] == "ETH"
    assert llm.calls == 3 and len(llm.requests) == 3


async def test_default_responder_fits_the_schema_and_errors_surface() -> None:
    async with OpenAIPeer() as peer, client_for(peer) as client:
        done = await client.chat.completions.create(
            model="gpt-4o-mini", messages=ASK, response_format=SIGNAL_FORMAT
        )
        answer = json.loads(done.choices[0].message.content or "")
        assert answer == {"is_call": False, "ticker": "", "side": "long"}

    def broken(messages: list[dict[str, Any]], schema: dict[str, Any] | None) -> str:
        raise KeyError("oops")

    with pytest.raises(AssertionError, match="responder raised"):
        async with OpenAIPeer(broken) as peer, client_for(peer) as client:
            with pytest.raises(openai.InternalServerError, match="KeyError"):
                await client.chat.completions.create(model="gpt-4o-mini", messages=ASK)
