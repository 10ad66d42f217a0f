"""Measured accuracy of a classifier on labelled posts: precision and recall of `is_signal`,
accuracy of market+side on the true signals, the levels a call states (entry, stop loss, take
profit) where the label gives them, and every disagreement, so a change to the rules or the
prompt is judged by numbers.

Two sets: tests/data/posts_labeled.jsonl (development: rules may be tuned on it) and
tests/data/posts_heldout.jsonl (held out: written before tuning, never tuned on; its figures
are the ones quoted). A row needs text and is_signal (market and side for a signal); id,
category and the levels are optional."""

from __future__ import annotations

import asyncio
import json
from dataclasses import dataclass, field
from decimal import Decimal, InvalidOperation
from pathlib import Path
from typing import Any

from engine.classify.base import Classification, Classifier
from engine.classify.call_levels import NAMES, levels_of


@dataclass(frozen=True, slots=True)
class Labelled:
    id: str
    text: str
    is_signal: bool
    market: str | None
    side: str | None
    category: str = ""
    levels: dict[str, Decimal] = field(default_factory=dict)  # entry/stop_loss/take_profit


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
    levels_checked: int = 0  # signals found whose label states levels
    levels_right: int = 0  # ... whose stated levels were all read exactly
    confusions: list[dict[str, Any]] = field(default_factory=list)
    decisions: list[dict[str, Any]] = field(default_factory=list)

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

    @property
    def levels_accuracy(self) -> float:
        return self.levels_right / self.levels_checked if self.levels_checked else 0.0

    def figures(self) -> dict[str, Any]:
        return {
            "classifier": self.classifier,
            "posts": self.total,
            "precision": round(self.precision, 4),
            "recall": round(self.recall, 4),
            "market_side_accuracy": round(self.market_side_accuracy, 4),
            "levels_accuracy": round(self.levels_accuracy, 4),
            "tp": self.tp,
            "fp": self.fp,
            "fn": self.fn,
            "tn": self.tn,
            "market_side_right": self.market_side_right,
            "levels_right": self.levels_right,
            "levels_checked": self.levels_checked,
        }

    def lines(self) -> list[str]:
        out = [
            f"classifier: {self.classifier}   posts: {self.total}",
            f"is_signal precision {self.precision:.3f}  recall {self.recall:.3f}  "
            f"(tp {self.tp}, fp {self.fp}, fn {self.fn}, tn {self.tn})",
            f"market+side accuracy on signals {self.market_side_accuracy:.3f} "
            f"({self.market_side_right}/{self.both_signal})",
            f"levels stated in calls read right {self.levels_accuracy:.3f} "
            f"({self.levels_right}/{self.levels_checked})",
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
            levels = {k: Decimal(str(d[k])) for k in NAMES if d.get(k) is not None}
            rows.append(
                Labelled(
                    str(d.get("id") or f"line{n}"),  # ids are optional: the line number
                    d["text"],
                    bool(d["is_signal"]),
                    d.get("market"),
                    d.get("side"),
                    d.get("category", ""),
                    levels,
                )
            )
        except (ValueError, KeyError, TypeError, InvalidOperation) as exc:
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
        read = levels_of(c.details)
        if r.is_signal and c.is_signal:
            report.tp += 1
            report.both_signal += 1
            if (c.market or "").upper() == (r.market or "").upper() and c.side == r.side:
                report.market_side_right += 1
            else:
                wrong = True
            if r.levels:
                report.levels_checked += 1
                report.levels_right += all(read.get(k) == v for k, v in r.levels.items())
        elif c.is_signal:
            report.fp += 1
            wrong = True
        elif r.is_signal:
            report.fn += 1
            wrong = True
        else:
            report.tn += 1
        report.decisions.append(_decision(r, c, read, wrong))
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


def _decision(
    r: Labelled, c: Classification, read: dict[str, Decimal], wrong: bool
) -> dict[str, Any]:
    return {
        "id": r.id,
        "category": r.category,
        "expected": {"is_signal": r.is_signal, "market": r.market, "side": r.side},
        "got": {
            "is_signal": c.is_signal,
            "market": c.market,
            "side": c.side,
            "confidence": str(c.confidence),
            "reason": c.reason,
            "by": c.classifier,
            "levels": {k: format(v, "f") for k, v in read.items()},
        },
        "right": not wrong,
    }
