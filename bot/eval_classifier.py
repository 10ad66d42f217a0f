"""`maxxit eval-classifier [--llm] [--data FILE] [--json]`: the classifier's figures on labelled
posts. Without --data: the development set and the held-out set, reported separately (the
held-out figures are the ones to quote: no rule was tuned on those posts)."""

from __future__ import annotations

import json
import sys
from pathlib import Path

from bot.settings import Settings
from engine.classify.base import Classifier
from engine.classify.evaluate import Report, evaluate, load
from engine.classify.rules import RulesClassifier

DATA_DIR = Path(__file__).resolve().parents[1] / "tests" / "data"
SETS = {"development": "posts_labeled.jsonl", "held_out": "posts_heldout.jsonl"}


def default_data() -> dict[str, Path]:
    """The labelled sets in a source checkout (tests/data), else none."""
    return {name: DATA_DIR / file for name, file in SETS.items() if (DATA_DIR / file).exists()}


async def run_eval(settings: Settings, data: Path | None, llm: bool, as_json: bool = False) -> int:
    sets = {"data": data} if data is not None else default_data()
    if not sets:
        print("error: no labelled set found; pass --data FILE.jsonl", file=sys.stderr)
        return 2
    try:
        rows = {name: load(path) for name, path in sets.items()}
    except (OSError, ValueError) as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 2
    classifier: Classifier = RulesClassifier()
    if llm:
        from bot.classifiers import llm_classifier

        built = llm_classifier(settings, classifier)
        if built is None:
            print("error: --llm needs OPENAI_API_KEY (or OPENAI_BASE_URL)", file=sys.stderr)
            return 2
        classifier = built
    reports = {name: await evaluate(classifier, part) for name, part in rows.items()}
    if as_json:
        print(json.dumps(_as_json(reports, sets), ensure_ascii=False, indent=1))
        return 0
    for name, report in reports.items():
        print(f"== {name.replace('_', '-')}: {sets[name]}")
        print("\n".join(report.lines()))
    return 0


def _as_json(reports: dict[str, Report], sets: dict[str, Path]) -> dict[str, object]:
    return {
        name: {
            "file": str(sets[name]),
            "figures": report.figures(),
            "decisions": report.decisions,
        }
        for name, report in reports.items()
    }
