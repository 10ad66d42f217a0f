"""`maxxit eval-classifier [--llm] [--data FILE]`: the classifier's figures on labelled posts."""

from __future__ import annotations

import sys
from pathlib import Path

from bot.settings import Settings
from engine.classify.evaluate import evaluate, load
from engine.classify.rules import RulesClassifier


def default_data() -> Path | None:
    """The labelled set in a source checkout (tests/data), else none."""
    here = Path(__file__).resolve().parents[1] / "tests" / "data" / "posts_labeled.jsonl"
    return here if here.exists() else None


async def run_eval(settings: Settings, data: Path | None, llm: bool) -> int:
    path = data or default_data()
    if path is None:
        print("error: no labelled set found; pass --data FILE.jsonl", file=sys.stderr)
        return 2
    try:
        rows = load(path)
    except (OSError, ValueError) as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 2
    classifier = RulesClassifier()
    if llm:
        from bot.classifiers import llm_classifier

        built = llm_classifier(settings, classifier)
        if built is None:
            print("error: --llm needs OPENAI_API_KEY (or OPENAI_BASE_URL)", file=sys.stderr)
            return 2
        classifier = built  # type: ignore[assignment]
    report = await evaluate(classifier, rows)
    print("\n".join(report.lines()))
    return 0
