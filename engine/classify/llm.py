"""LLM classifier: any OpenAI-compatible chat model (OpenAI, a local server) reading a post
with structured output (a JSON schema), with the rules classifier deciding whenever the model
cannot: an error, a timeout, a refusal or an answer that does not fit the schema.

The prompt lives in prompt.md and names the markets our venues list. Calls are bounded in
number (a semaphore) and time; token usage comes back with each classification.
"""

from __future__ import annotations

import asyncio
import json
import logging
from dataclasses import replace
from decimal import Decimal
from importlib import resources
from typing import Any, Literal

from pydantic import BaseModel, Field, ValidationError

from engine.classify.base import Classification, Classifier
from engine.classify.catalog import MarketCatalog
from engine.classify.collisions import with_meaning
from engine.classify.tickers import ALIASES, TickerResolver

log = logging.getLogger(__name__)


class LLMAnswer(BaseModel):
    is_signal: bool
    market: str | None
    side: Literal["long", "short"] | None
    confidence: float = Field(ge=0, le=1)
    timeframe: str | None
    entry: float | None = None
    entry_to: float | None = None  # the other end of an entry range ("3,150-3,200")
    take_profit: float | None
    stop_loss: float | None
    rationale: str = Field(max_length=400)


SCHEMA: dict[str, Any] = {
    "type": "object",
    "additionalProperties": False,
    "required": [
        "is_signal",
        "market",
        "side",
        "confidence",
        "timeframe",
        "entry",
        "entry_to",
        "take_profit",
        "stop_loss",
        "rationale",
    ],
    "properties": {
        "is_signal": {"type": "boolean"},
        "market": {"type": ["string", "null"]},
        "side": {"type": ["string", "null"], "enum": ["long", "short", None]},
        "confidence": {"type": "number", "minimum": 0, "maximum": 1},
        "timeframe": {"type": ["string", "null"]},
        "entry": {"type": ["number", "null"]},
        "entry_to": {"type": ["number", "null"]},
        "take_profit": {"type": ["number", "null"]},
        "stop_loss": {"type": ["number", "null"]},
        "rationale": {"type": "string"},
    },
}


def prompt(markets: list[str]) -> str:
    text = resources.files("engine.classify").joinpath("prompt.md").read_text("utf-8")
    return text.replace("{markets}", ", ".join(sorted(markets, key=str.upper)))


def _decimal(value: float | None) -> str | None:
    # levels come back as JSON numbers; keep them as exact text from here on
    return None if value is None else str(Decimal(repr(value)))


class LLMClassifier:
    name = "llm"

    def __init__(
        self,
        client: Any,  # openai.AsyncOpenAI (or anything with its chat.completions.create)
        model: str,
        fallback: Classifier,
        markets: list[str] | MarketCatalog,
        timeout: float = 20.0,
        concurrency: int = 4,
    ) -> None:
        self.client = client
        self.model = model
        self.fallback = fallback
        # the same market list as the rules: the venues' listings (a catalog) or fixed names
        self.catalog = markets if isinstance(markets, MarketCatalog) else MarketCatalog.of(markets)
        self._version = -1
        self._follow_catalog()
        self.timeout = timeout
        self._gate = asyncio.Semaphore(concurrency)

    def _follow_catalog(self) -> None:
        if self.catalog.version != self._version:
            self._version = self.catalog.version
            names = self.catalog.names()
            self.system = prompt(list(names))
            self._resolver = TickerResolver(names, ALIASES)

    async def classify(self, text: str) -> Classification:
        self._follow_catalog()
        try:
            async with self._gate:
                response = await asyncio.wait_for(self._ask(text), self.timeout)
            # which asset a colliding name means is read from the words, as the rules do
            return with_meaning(self._read(response), text)
        except Exception as exc:  # any failure: the rules decide, and say why
            cause = f"{type(exc).__name__}: {exc}"[:200]
            log.warning("LLM classification failed, rules decide: %s", cause)
            result = await self.fallback.classify(text)
            return replace(
                result,
                details={**result.details, "fallback_from": "llm", "llm_error": cause},
            )

    async def _ask(self, text: str) -> Any:
        return await self.client.chat.completions.create(
            model=self.model,
            temperature=0,
            messages=[
                {"role": "system", "content": self.system},
                {"role": "user", "content": text[:4000]},
            ],
            response_format={
                "type": "json_schema",
                "json_schema": {"name": "trade_call", "schema": SCHEMA, "strict": True},
            },
        )

    def _read(self, response: Any) -> Classification:
        message = response.choices[0].message
        if getattr(message, "refusal", None):
            raise ValueError(f"model refused: {message.refusal}")
        try:
            answer = LLMAnswer.model_validate(json.loads(message.content or ""))
        except (ValueError, ValidationError) as exc:
            raise ValueError(f"answer does not fit the schema: {exc}") from None
        usage = getattr(response, "usage", None)
        tokens_in = int(getattr(usage, "prompt_tokens", 0) or 0)
        tokens_out = int(getattr(usage, "completion_tokens", 0) or 0)
        details: dict[str, Any] = {
            "model": self.model,
            "timeframe": answer.timeframe,
            "take_profit": _decimal(answer.take_profit),
            "stop_loss": _decimal(answer.stop_loss),
        }
        levels = {
            "entry": _decimal(answer.entry),
            "entry_to": _decimal(answer.entry_to),
            "stop_loss": _decimal(answer.stop_loss),
            "take_profit": _decimal(answer.take_profit),
        }
        levels = {k: v for k, v in levels.items() if v is not None and Decimal(v) > 0}
        if levels and answer.is_signal:
            details["call_levels"] = levels  # the same shape the rules give
        if not answer.is_signal or not answer.market or not answer.side:
            return Classification(
                False,
                None,
                None,
                Decimal(0),
                self.name,
                answer.rationale or "no call",
                (),
                details,
                tokens_in,
                tokens_out,
            )
        raw = answer.market.strip().lstrip("$")
        market = self._resolver.normalize(raw) or raw.upper()
        confidence = Decimal(repr(answer.confidence)).quantize(Decimal("0.01"))
        return Classification(
            True,
            market,
            answer.side,
            max(confidence, Decimal("0.05")),
            self.name,
            answer.rationale,
            (market,),
            details,
            tokens_in,
            tokens_out,
        )
