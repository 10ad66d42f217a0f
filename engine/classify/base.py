"""The classifier boundary: a post's text in, a trading reading of it out.

Rules are the embedded default; an LLM classifier implements the same protocol later and
falls back to the rules, so nothing above this module knows which one decided.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from decimal import Decimal
from typing import Any, Literal, Protocol

Side = Literal["long", "short"]


@dataclass(frozen=True, slots=True)
class Classification:
    is_signal: bool
    market: str | None  # canonical ticker, e.g. "BTC", "EURUSD", "XAU"
    side: Side | None
    confidence: Decimal  # 0..1
    classifier: str  # "rules", "llm", ...
    reason: str  # short, human-readable: why this is (not) a signal
    markets_mentioned: tuple[str, ...] = field(default=())
    # an LLM's extras: timeframe, take_profit, stop_loss, model, a fallback's cause
    details: dict[str, Any] = field(default_factory=dict, compare=False)
    tokens_in: int = 0
    tokens_out: int = 0


class Classifier(Protocol):
    name: str

    async def classify(self, text: str) -> Classification: ...
