"""A local OpenAI-compatible Chat Completions server on 127.0.0.1 for the official `openai` client:
`AsyncOpenAI(base_url=peer.base_url + "/v1", api_key=peer.api_key)`.

POST /v1/chat/completions answers with a real-shaped ChatCompletion whose content a pluggable
responder produces. Like the real API it checks the Bearer key, refuses unknown arguments, holds
`json_schema` response formats with strict=true to OpenAI's strict subset (every object needs
`additionalProperties: false` and every property in `required`), wants the word "json" in the
messages for `json_object`, and refuses `max_tokens` or a non-default temperature on reasoning
models (o-series, gpt-5). Errors use OpenAI's body {"error": {"message", "type", "param",
"code"}} so the client raises its own exception classes. Tests queue failures with fail_next().
"""

from __future__ import annotations

import asyncio
import contextlib
import inspect
import itertools
import json
import math
import re
import secrets
import string
import time
from collections.abc import Awaitable, Callable, Iterable
from typing import Any, Literal, get_args

from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import JSONResponse
from starlette.routing import Route

from tests.peers.telegram_api import serve_app

Json = dict[str, Any]
Answer = Json | list[Any] | str
# (messages as sent, the json_schema's "schema" or None) -> the object to send as content, or a
# raw string sent as is; may be a coroutine function.
Responder = Callable[[list[Json], Json | None], Answer | Awaitable[Answer]]
FailureKind = Literal[
    "500", "429", "quota", "timeout", "malformed", "schema_violation", "refusal", "length"
]
FAILURE_KINDS: frozenset[str] = frozenset(get_args(FailureKind))

REFUSAL = "I'm sorry, but I can't assist with that request."
# The body arguments of POST /v1/chat/completions (openai 2.x's CompletionCreateParams).
KNOWN_ARGS = frozenset(
    {
        "messages", "model", "audio", "frequency_penalty", "function_call", "functions",
        "logit_bias", "logprobs", "max_completion_tokens", "max_tokens", "metadata", "modalities",
        "moderation", "n", "parallel_tool_calls", "prediction", "presence_penalty",
        "prompt_cache_key", "prompt_cache_options", "prompt_cache_retention", "reasoning_effort",
        "response_format", "safety_identifier", "seed", "service_tier", "stop", "store", "stream",
        "stream_options", "temperature", "tool_choice", "tools", "top_logprobs", "top_p", "user",
        "verbosity", "web_search_options",
    }
)  # fmt: skip
_ROLES = ("system", "assistant", "user", "function", "tool", "developer")
_REASONING = re.compile(r"(o\d|gpt-5)")  # models that take neither max_tokens nor temperature
_SCHEMA_NAME = re.compile(r"[a-zA-Z0-9_-]{1,64}")
_ALNUM = string.ascii_letters + string.digits


class _ApiError(Exception):
    def __init__(
        self, status: int, message: str, type_: str = "invalid_request_error",
        param: str | None = None, code: str | None = None,
        headers: dict[str, str] | None = None,
    ) -> None:  # fmt: skip
        super().__init__(message)
        self.status, self.headers = status, headers or {}
        self.body = {"error": {"message": message, "type": type_, "param": param, "code": code}}


def _bad(message: str, param: str | None = None, code: str | None = None) -> _ApiError:
    return _ApiError(400, message, param=param, code=code)


def _tokens(text: str) -> int:
    """About four characters a token, as OpenAI's rule of thumb has it; never zero."""
    return max(1, math.ceil(len(text) / 4))


def example_for(schema: Json | None, defs: Json | None = None) -> Any:
    """The smallest instance of a JSON schema: the default responder's answer, so a test that
    does not care what the model says still gets content that fits the schema."""
    if schema is None:
        return {}
    if defs is None:
        defs = {**schema.get("$defs", {}), **schema.get("definitions", {})}
    if "$ref" in schema:
        return example_for(defs[schema["$ref"].rsplit("/", 1)[-1]], defs)
    if "const" in schema:
        return schema["const"]
    if "enum" in schema:
        return schema["enum"][0]
    if "anyOf" in schema:
        return example_for(schema["anyOf"][0], defs)
    kind = schema.get("type", "object")
    kind = next((k for k in kind if k != "null"), "null") if isinstance(kind, list) else kind
    if kind == "object":
        props = schema.get("properties", {})
        return {k: example_for(props[k], defs) for k in schema.get("required", props)}
    simple = {"array": [], "string": "", "integer": 0, "number": 0, "boolean": False}
    return simple.get(kind)


def strict_schema_problem(schema: Any, path: tuple[str, ...] = ()) -> str | None:
    """What OpenAI says about a schema outside its strict subset, or None if it fits."""
    if not isinstance(schema, dict):
        return None
    kind = schema.get("type")
    is_object = kind == "object" or (isinstance(kind, list) and "object" in kind)
    if is_object or "properties" in schema:
        if schema.get("additionalProperties") is not False:
            return (
                f"In context={path!r}, 'additionalProperties' is required to be supplied and "
                "to be false."
            )
        props = schema.get("properties", {})
        missing = [k for k in props if k not in schema.get("required", [])]
        if missing:
            return (
                f"In context={path!r}, 'required' is required to be supplied and to be an array "
                f"including every key in properties. Missing '{missing[0]}'."
            )
        for key, sub in props.items():
            if problem := strict_schema_problem(sub, (*path, "properties", key)):
                return problem
    if problem := strict_schema_problem(schema.get("items"), (*path, "items")):
        return problem
    for keyword in ("anyOf", "allOf"):
        for i, sub in enumerate(schema.get(keyword, [])):
            if problem := strict_schema_problem(sub, (*path, keyword, str(i))):
                return problem
    for keyword in ("$defs", "definitions"):
        for name, sub in schema.get(keyword, {}).items():
            if problem := strict_schema_problem(sub, (*path, keyword, name)):
                return problem
    return None


class OpenAIPeer:
    """Chat Completions on 127.0.0.1, for `async with OpenAIPeer(responder) as peer:`."""

    def __init__(
        self, responder: Responder | None = None, *, api_key: str = "sk-test-maxxit-0000",
        models: Iterable[str] | None = None, hang_seconds: float = 30.0,
    ) -> None:  # fmt: skip
        self.responder = responder or (lambda _messages, schema: example_for(schema))
        self.api_key = api_key
        self.models = set(models) if models is not None else None  # None: any model exists
        self.hang_seconds = hang_seconds  # how long a "timeout" failure keeps the client waiting
        self.base_url = ""
        # Bodies of the requests with the right key, in arrival order, failed ones included.
        self.requests: list[Json] = []
        self.calls = 0  # every POST to /v1/chat/completions, whatever became of it
        self.responder_errors: list[BaseException] = []
        self._failures: list[tuple[str, float]] = []
        self._serial = itertools.count(1)

    async def __aenter__(self) -> OpenAIPeer:
        self._closing = asyncio.Event()
        self._stack = contextlib.AsyncExitStack()
        route = Route("/v1/chat/completions", self._endpoint, methods=["POST"])
        self.base_url = await self._stack.enter_async_context(serve_app(Starlette(routes=[route])))
        return self

    async def __aexit__(self, *exc: object) -> None:
        self._closing.set()  # a "timeout" answer still waiting gives up now, not at hang_seconds
        await self._stack.aclose()
        # A responder that raised answered 500, which the client may have retried and
        # swallowed; say so here unless the test is failing already.
        if self.responder_errors and exc[0] is None:
            raise AssertionError("the OpenAI peer's responder raised") from self.responder_errors[0]

    def fail_next(self, kind: FailureKind, times: int = 1, *, retry_after: float = 1.0) -> None:
        """The next `times` valid requests fail as `kind` says, in the order queued:
        "500" server_error; "429" rate limit (retry-after: `retry_after` s, and retry-after-ms,
        which the openai client prefers); "quota" 429 insufficient_quota; "timeout" no answer
        for `hang_seconds`; "malformed" content cut short, not JSON; "schema_violation" JSON
        without a required field; "refusal" message.refusal instead of content; "length" content
        cut short with finish_reason "length"."""
        if kind not in FAILURE_KINDS:
            raise ValueError(f"kind must be one of {sorted(FAILURE_KINDS)}")
        self._failures += [(kind, retry_after)] * times

    # -- HTTP ----------------------------------------------------------------------------------

    async def _endpoint(self, request: Request) -> JSONResponse:
        self.calls += 1
        try:
            self._authorise(request.headers.get("authorization"))
            try:
                body = json.loads(await request.body())
            except ValueError:
                raise _bad(
                    "We could not parse the JSON body of your request. (HINT: This likely means "
                    "you aren't using your HTTP library correctly. The OpenAI API expects a JSON "
                    "payload, but what was sent was not valid JSON.)"
                ) from None
            self.requests.append(body)
            schema = self._validate(body)
            kind, retry_after = self._failures.pop(0) if self._failures else ("", 0.0)
            await self._fail_before_answer(kind, retry_after, body["model"])
            answer = await self._answer(body, schema, kind)
        except _ApiError as err:
            return JSONResponse(
                err.body, status_code=err.status, headers=self._headers(err.headers)
            )
        return JSONResponse(answer, headers=self._headers({}))

    def _headers(self, extra: dict[str, str]) -> dict[str, str]:
        # What the client reads: x-request-id becomes `_request_id`; the rest is for realism.
        return {"x-request-id": "req_" + secrets.token_hex(16), "openai-version": "2020-10-01",
                "openai-processing-ms": "12", "x-ratelimit-limit-requests": "10000",
                "x-ratelimit-remaining-requests": "9999", "x-ratelimit-reset-requests": "6ms",
                **extra}  # fmt: skip

    def _authorise(self, header: str | None) -> None:
        if not header or not header.startswith("Bearer "):
            raise _ApiError(
                401,
                "You didn't provide an API key. You need to provide your API key in an "
                "Authorization header using Bearer auth (i.e. Authorization: Bearer YOUR_KEY), or "
                "as the password field (with blank username) if you're accessing the API from "
                "your browser and are prompted for a username and password. You can obtain an "
                "API key from https://platform.openai.com/account/api-keys.",
            )
        key = header.removeprefix("Bearer ")
        if key != self.api_key:
            shown = key if len(key) <= 12 else key[:8] + "*" * (len(key) - 12) + key[-4:]
            raise _ApiError(
                401,
                f"Incorrect API key provided: {shown}. You can find your API key at "
                "https://platform.openai.com/account/api-keys.",
                code="invalid_api_key",
            )

    def _validate(self, body: Any) -> Json | None:
        """Refuses what the real endpoint refuses; returns the json_schema's schema, if any."""
        if not isinstance(body, dict):
            raise _bad("Invalid type for request body: expected an object.")
        if unknown := [k for k in body if k not in KNOWN_ARGS]:
            raise _bad(f"Unrecognized request argument supplied: {unknown[0]}")
        if body.get("stream"):
            raise _bad("This peer does not stream; test streaming against something else.")
        model = body.get("model")
        if not model:
            raise _bad("you must provide a model parameter")
        if self.models is not None and model not in self.models:
            raise _ApiError(
                404, f"The model `{model}` does not exist or you do not have access to it.",
                code="model_not_found",
            )  # fmt: skip
        messages = body.get("messages")
        if messages is None:
            raise _bad("Missing required parameter: 'messages'.", "messages",
                       "missing_required_parameter")  # fmt: skip
        if not isinstance(messages, list) or not messages:
            raise _bad(
                "Invalid 'messages': empty array. Expected an array with minimum length 1, but "
                "got an empty array instead.", "messages", "empty_array",
            )  # fmt: skip
        for i, message in enumerate(messages):
            if message.get("role") not in _ROLES:
                raise _bad(
                    f"Invalid value: '{message.get('role')}'. Supported values are: 'system', "
                    "'assistant', 'user', 'function', 'tool', and 'developer'.",
                    f"messages[{i}].role", "invalid_value",
                )  # fmt: skip
        self._validate_sampling(body, model)
        return self._validate_format(body.get("response_format"), messages)

    @staticmethod
    def _validate_sampling(body: Json, model: str) -> None:
        temperature = body.get("temperature")
        if _REASONING.match(model):
            if body.get("max_tokens") is not None:
                raise _bad(
                    "Unsupported parameter: 'max_tokens' is not supported with this model. Use "
                    "'max_completion_tokens' instead.", "max_tokens", "unsupported_parameter",
                )  # fmt: skip
            if temperature is not None and temperature != 1:
                raise _bad(
                    f"Unsupported value: 'temperature' does not support {temperature} with this "
                    "model. Only the default (1) value is supported.", "temperature",
                    "unsupported_value",
                )  # fmt: skip
        if temperature is not None and not 0 <= temperature <= 2:
            raise _bad(
                f"Invalid 'temperature': decimal out of range. Expected a value between 0 and 2, "
                f"but got {temperature} instead.", "temperature", "decimal_out_of_range",
            )  # fmt: skip
        for name in ("max_tokens", "max_completion_tokens"):
            value = body.get(name)
            if value is not None and (not isinstance(value, int) or value < 1):
                raise _bad(
                    f"Invalid '{name}': integer below minimum value. Expected a value >= 1, but "
                    f"got {value} instead.", name, "integer_below_min_value",
                )  # fmt: skip

    @staticmethod
    def _validate_format(fmt: Any, messages: list[Json]) -> Json | None:
        if fmt is None or fmt.get("type") == "text":
            return None
        if fmt.get("type") == "json_object":
            if "json" not in json.dumps([m.get("content") for m in messages]).lower():
                raise _bad(
                    "'messages' must contain the word 'json' in some form, to use "
                    "'response_format' of type 'json_object'.", "messages",
                )  # fmt: skip
            return None
        if fmt.get("type") != "json_schema":
            raise _bad(
                f"Invalid value: '{fmt.get('type')}'. Supported values are: 'json_object', "
                "'json_schema', and 'text'.", "response_format.type", "invalid_value",
            )  # fmt: skip
        spec = fmt.get("json_schema") or {}
        name = spec.get("name", "")
        if not _SCHEMA_NAME.fullmatch(name):
            raise _bad(
                "Invalid 'response_format.json_schema.name': string does not match pattern. "
                "Expected a string that matches the pattern '^[a-zA-Z0-9_-]+$'.",
                "response_format.json_schema.name", "invalid_value",
            )  # fmt: skip
        schema = spec.get("schema") or {"type": "object", "properties": {}}
        if spec.get("strict"):
            if schema.get("type") != "object":
                raise _bad(
                    f"Invalid schema for response_format '{name}': schema must be a JSON Schema "
                    f"of 'type: \"object\"', got 'type: \"{schema.get('type')}\"'.",
                    "response_format", "invalid_json_schema",
                )  # fmt: skip
            if problem := strict_schema_problem(schema):
                raise _bad(f"Invalid schema for response_format '{name}': {problem}",
                           "response_format", "invalid_json_schema")  # fmt: skip
        return schema

    async def _fail_before_answer(self, kind: str, retry_after: float, model: str) -> None:
        if kind == "500":
            raise _ApiError(
                500, "The server had an error while processing your request. Sorry about that!",
                "server_error",
            )  # fmt: skip
        if kind == "429":
            wait = f"{round(retry_after * 1000)}ms" if retry_after < 1 else f"{retry_after:g}s"
            raise _ApiError(
                429,
                f"Rate limit reached for {model} in organization org-maxxittest on requests per "
                f"min (RPM): Limit 500, Used 500, Requested 1. Please try again in {wait}. Visit "
                "https://platform.openai.com/account/rate-limits to learn more.",
                "requests", code="rate_limit_exceeded",
                headers={"retry-after": str(max(1, math.ceil(retry_after))),
                         "retry-after-ms": str(round(retry_after * 1000)),
                         "x-ratelimit-remaining-requests": "0",
                         "x-ratelimit-reset-requests": wait},
            )  # fmt: skip
        if kind == "quota":
            raise _ApiError(
                429,
                "You exceeded your current quota, please check your plan and billing details. "
                "For more information on this error, read the docs: "
                "https://platform.openai.com/docs/guides/error-codes/api-errors.",
                "insufficient_quota", code="insufficient_quota",
            )  # fmt: skip
        if kind == "timeout":
            # Wait it out or until the peer closes; a client with a shorter timeout has long
            # hung up by then, and whatever is sent after goes nowhere.
            with contextlib.suppress(TimeoutError):
                async with asyncio.timeout(self.hang_seconds):
                    await self._closing.wait()
            if self._closing.is_set():  # nobody is listening: leave the responder out of it
                raise _ApiError(503, "The peer is shutting down.", "server_error")

    async def _answer(self, body: Json, schema: Json | None, kind: str) -> Json:
        messages = body["messages"]
        try:
            answer = self.responder(messages, schema)
            if inspect.isawaitable(answer):
                answer = await answer
        except Exception as exc:
            self.responder_errors.append(exc)
            raise _ApiError(500, f"the peer's responder raised {exc!r}", "server_error") from exc
        content: str | None = answer if isinstance(answer, str) else json.dumps(answer)
        refusal: str | None = None
        finish = "stop"
        if kind == "schema_violation":
            content = json.dumps(self._violate(answer, schema))
        elif kind in ("malformed", "length"):
            assert content is not None
            # Cut inside the JSON, as a model cut off by max_tokens leaves it: never valid.
            content = content[: max(1, len(content) // 2)].rstrip("}] \n")
            finish = "length" if kind == "length" else "stop"
        elif kind == "refusal":
            content, refusal = None, REFUSAL
        limit = body.get("max_completion_tokens") or body.get("max_tokens")
        if content is not None and limit is not None and _tokens(content) > limit:
            content, finish = content[: limit * 4], "length"  # what max tokens really does
        prompt = sum(_tokens(json.dumps(m.get("content"))) + 3 for m in messages) + 3
        completion = _tokens(content or refusal or "")
        serial = next(self._serial)
        return {
            "id": f"chatcmpl-{serial:04d}" + "".join(secrets.choice(_ALNUM) for _ in range(25)),
            "object": "chat.completion",
            "created": int(time.time()),
            "model": body["model"],
            "choices": [
                {
                    "index": 0,
                    "message": {
                        "role": "assistant",
                        "content": content,
                        "refusal": refusal,
                        "annotations": [],
                    },
                    "logprobs": None,
                    "finish_reason": finish,
                }
            ],
            "usage": {
                "prompt_tokens": prompt,
                "completion_tokens": completion,
                "total_tokens": prompt + completion,
                "prompt_tokens_details": {"cached_tokens": 0, "audio_tokens": 0},
                "completion_tokens_details": {
                    "reasoning_tokens": 0,
                    "audio_tokens": 0,
                    "accepted_prediction_tokens": 0,
                    "rejected_prediction_tokens": 0,
                },
            },
            "service_tier": "default",
            "system_fingerprint": "fp_maxxit0001",
        }

    @staticmethod
    def _violate(answer: Answer, schema: Json | None) -> Any:
        """Valid JSON that breaks the schema: the first required field goes missing."""
        required = (schema or {}).get("required") or []
        if isinstance(answer, dict) and required:
            return {k: v for k, v in answer.items() if k != required[0]}
        return {} if required else {"unexpected": True}
