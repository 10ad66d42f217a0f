"""Measured accuracy of a classifier on labelled posts (tests/data/posts_labeled.jsonl):
precision and recall of `is_signal`, accuracy of market+side on the true signals, and every
disagreement, so a change to the rules or the prompt is judged by numbers."""

from __future__ import annotations

import asyncio
import json
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from engine.classify.base import Classifier


@dataclass(frozen=True, slots=True)
class Labelled:
    id: str
    text: str
    is_signal: bool
    market: str | None
    side: str | None
    category: str = ""


@dataclass(slots=True)
class Report:
    classifier: str
    total: int = 0
    tp: int = 0
    fp: int = 0
    fn: int = 0
    tn: int = 0
    both_signal: int = 0
    market_side_right: int = 0
    confusions: list[dict[str, Any]] = field(default_factory=list)

    @property
    def precision(self) -> float:
        return self.tp / (self.tp + self.fp) if self.tp + self.fp else 0.0

    @property
    def recall(self) -> float:
        return self.tp / (self.tp + self.fn) if self.tp + self.fn else 0.0

    @property
    def market_side_accuracy(self) -> float:
        """Of the posts that are signals and were called signals, how many got both the
        market and the side right."""
        return self.market_side_right / self.both_signal if self.both_signal else 0.0

    def lines(self) -> list[str]:
        out = [
            f"classifier: {self.classifier}   posts: {self.total}",
            f"is_signal precision {self.precision:.3f}  recall {self.recall:.3f}  "
            f"(tp {self.tp}, fp {self.fp}, fn {self.fn}, tn {self.tn})",
            f"market+side accuracy on signals {self.market_side_accuracy:.3f} "
            f"({self.market_side_right}/{self.both_signal})",
        ]
        if self.confusions:
            out.append(f"confusions ({len(self.confusions)}):")
            for c in self.confusions:
                out.append(
                    f"  {c['id']} [{c['category']}] expected {c['expected']} got {c['got']}: "
                    f"{c['text'][:90]!r}"
                )
        return out


def load(path: Path) -> list[Labelled]:
    rows = []
    for n, line in enumerate(path.read_text(encoding="utf-8").splitlines(), start=1):
        if not line.strip():
            continue
        try:
            d = json.loads(line)
            rows.append(
                Labelled(
                    d["id"],
                    d["text"],
                    bool(d["is_signal"]),
                    d.get("market"),
                    d.get("side"),
                    d.get("category", ""),
                )
            )
        except (ValueError, KeyError) as exc:
            raise ValueError(f"{path}:{n}: not a labelled post ({exc})") from None
    return rows


def _label(is_signal: bool, market: str | None, side: str | None) -> str:
    return f"{side} {market}" if is_signal else "no signal"


async def evaluate(classifier: Classifier, rows: list[Labelled], concurrency: int = 8) -> Report:
    gate = asyncio.Semaphore(concurrency)

    async def one(r: Labelled):  # type: ignore[no-untyped-def]
        async with gate:
            return await classifier.classify(r.text)

    results = await asyncio.gather(*(one(r) for r in rows))
    report = Report(getattr(classifier, "name", type(classifier).__name__), len(rows))
    for r, c in zip(rows, results, strict=True):
        wrong = False
        if r.is_signal and c.is_signal:
            report.tp += 1
            report.both_signal += 1
            if (c.market or "").upper() == (r.market or "").upper() and c.side == r.side:
                report.market_side_right += 1
            else:
                wrong = True
        elif c.is_signal:
            report.fp += 1
            wrong = True
        elif r.is_signal:
            report.fn += 1
            wrong = True
        else:
            report.tn += 1
        if wrong:
            report.confusions.append(
                {
                    "id": r.id,
                    "category": r.category,
                    "expected": _label(r.is_signal, r.market, r.side),
                    "got": _label(c.is_signal, c.market, c.side),
                    "by": c.classifier,
                    "text": r.text,
                }
            )
    return report
