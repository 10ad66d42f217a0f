"""The LLM classifier through the real openai client against a local OpenAI-compatible
server: structured answers become classifications with their tokens; every failure (server
error, timeout, malformed or schema-breaking JSON, refusal) falls back to the rules and says
so; a post already classified costs no second call."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from decimal import Decimal
from pathlib import Path

import pytest
from openai import AsyncOpenAI
from sqlalchemy import select

from engine.classify.call_levels import levels_of
from engine.classify.llm import LLMClassifier
from engine.classify.rules import RulesClassifier
from engine.ingest import IncomingPost
from handlers.alerts import render
from storage.models import ClassificationRow, OutboxMessage, Position
from tests.chat_helpers import NOW, make_world
from tests.peers.openai_api import OpenAIPeer

DATA = Path(__file__).parent / "data" / "posts_labeled.jsonl"
HELDOUT = Path(__file__).parent / "data" / "posts_heldout.jsonl"
LABELS = {
    r["text"]: r for path in (DATA, HELDOUT) for r in map(json.loads, path.read_text().splitlines())
}
MARKETS = ["BTC", "ETH", "SOL", "XAU", "kPEPE"]


def _level(label: dict, name: str) -> float | None:
    return float(label[name]) if label.get(name) is not None else None


def model(messages: list[dict], schema: dict | None) -> dict:
    """A stand-in model: answers labelled posts as labelled, anything else by a keyword."""
    system, text = messages[0]["content"], messages[-1]["content"]
    assert "ETH" in system and "XAU" in system  # the prompt names our markets
    label = LABELS.get(text)
    if label is None:
        side = "long" if "long" in text.lower() else "short" if "short" in text.lower() else None
        label = {"is_signal": side is not None, "market": "ETH" if side else None, "side": side}
    return {
        "is_signal": label["is_signal"], "market": label["market"], "side": label["side"],
        "confidence": 0.9 if label["is_signal"] else 0.1, "timeframe": "swing",
        "entry": _level(label, "entry"), "entry_to": _level(label, "entry_to"),
        "stop_loss": _level(label, "stop_loss"),
        "take_profit": (_level(label, "take_profit") or 2400.5) if label["is_signal"] else None,
        "rationale": "Author opens a position." if label["is_signal"] else "No trade call.",
    }  # fmt: skip


@pytest.fixture
async def peer():
    async with OpenAIPeer(model) as p:
        yield p


def classifier(peer: OpenAIPeer, timeout: float = 5.0) -> LLMClassifier:
    client = AsyncOpenAI(base_url=peer.base_url + "/v1", api_key=peer.api_key, max_retries=0)
    return LLMClassifier(client, "gpt-4o-mini", RulesClassifier(), MARKETS, timeout=timeout)


async def test_a_post_flows_through_the_llm_to_a_position(sessions, peer) -> None:
    world = await make_world(sessions)
    world.engine.classifier = classifier(peer)
    ann = world.person("Ann", 1)
    await ann.say("/create")
    for a in ("Hawk", "@hawk", "HYPERLIQUID", "100", "3", "3", "none", "none", "ignore", "10"):
        await ann.say(a)
    await ann.choose(ann.last.replies[0], "Create")
    await ann.say("/deploy Hawk")
    await ann.say("100")
    await ann.say("2")
    r = await ann.say("Trade automatically")
    await ann.choose(r.replies[0], "Deploy")
    await world.engine.ingest(IncomingPost("x", "@hawk", "1", "going long here", NOW))
    # the same words from another source: classified from the cache, no second call
    await world.engine.ingest(IncomingPost("x", "@other", "2", "going long here", NOW))
    assert peer.calls == 1
    async with sessions() as s:
        rows = (
            (await s.execute(select(ClassificationRow).order_by(ClassificationRow.id)))
            .scalars()
            .all()
        )
        positions = (await s.execute(select(Position))).scalars().all()
    assert [r.classifier for r in rows] == ["llm", "llm"]
    assert rows[0].tokens_in > 0 and rows[0].tokens_out > 0
    assert (rows[1].tokens_in, rows[1].tokens_out) == (0, 0)  # cached: not paid twice
    assert rows[0].reason == "Author opens a position."
    assert rows[0].details["take_profit"] == "2400.5" and rows[0].details["timeframe"] == "swing"
    assert [(p.market, p.side) for p in positions] == [("ETH", "long")]
    async with sessions() as s:
        opened = (
            await s.execute(select(OutboxMessage).where(OutboxMessage.kind == "position_opened"))
        ).scalar_one()
    assert "Why: Author opens a position." in render("position_opened", opened.payload, "en")


@pytest.mark.parametrize(
    "kind", ["500", "timeout", "malformed", "schema_violation", "refusal", "429"]
)
async def test_any_llm_failure_falls_back_to_the_rules(peer, kind: str) -> None:
    peer.fail_next(kind)
    c = classifier(peer, timeout=1.0)
    result = await c.classify("Long $ETH here, stop 1900")
    assert (result.is_signal, result.market, result.side) == (True, "ETH", "long")
    assert result.classifier == "rules"
    assert result.details["fallback_from"] == "llm" and result.details["llm_error"]
    again = await c.classify("Short $BTC, sl 95k")  # the next one is the model's again
    assert again.classifier == "llm"


async def test_unlisted_markets_and_non_signals(peer) -> None:
    c = classifier(peer)
    r = await c.classify("Longing $FARTCOIN 1.12, sl 0.98. it's going higher, don't ask why 💨")
    assert (r.is_signal, r.market, r.side) == (True, "FARTCOIN", "long")
    r = await c.classify("gm")
    assert not r.is_signal and r.market is None and r.confidence == Decimal(0)


def test_eval_classifier_with_llm_against_a_compatible_server(tmp_path: Path) -> None:
    import asyncio
    import threading

    ready, stop = threading.Event(), threading.Event()
    url: list[str] = []

    def serve() -> None:
        async def main() -> None:
            async with OpenAIPeer(model) as p:
                url.append(p.base_url)
                ready.set()
                await asyncio.to_thread(stop.wait)

        asyncio.run(main())

    thread = threading.Thread(target=serve, daemon=True)
    thread.start()
    assert ready.wait(10)
    try:
        env = {
            **os.environ,
            "OPENAI_BASE_URL": url[0] + "/v1",
            "OPENAI_API_KEY": "sk-test-maxxit-0000",
        }
        out = subprocess.run(
            [sys.executable, "-m", "bot", "eval-classifier", "--llm", "--data", str(DATA)],
            capture_output=True, text=True, timeout=300, cwd=tmp_path, env=env,
        )  # fmt: skip
        # no --data: development and held-out, each with the levels the calls state
        both = subprocess.run(
            [sys.executable, "-m", "bot", "eval-classifier", "--llm", "--json"],
            capture_output=True, text=True, timeout=300, cwd=tmp_path, env=env,
        )  # fmt: skip
    finally:
        stop.set()
        thread.join(10)
    assert out.returncode == 0, out.stderr
    assert "classifier: llm" in out.stdout and "is_signal precision 1.000" in out.stdout
    assert both.returncode == 0, both.stderr
    figures = {name: part["figures"] for name, part in json.loads(both.stdout).items()}
    assert set(figures) == {"development", "held_out"}
    assert figures["held_out"]["precision"] == 1.0 and figures["held_out"]["recall"] == 1.0
    assert figures["held_out"]["levels_checked"] >= 10
    assert figures["held_out"]["levels_right"] == figures["held_out"]["levels_checked"]
    no_key = subprocess.run(
        [sys.executable, "-m", "bot", "eval-classifier", "--llm", "--data", str(DATA)],
        capture_output=True, text=True, timeout=120, cwd=tmp_path,
        env={k: v for k, v in os.environ.items() if not k.startswith("OPENAI")},
    )  # fmt: skip
    assert no_key.returncode == 2 and "OPENAI_API_KEY" in no_key.stderr


async def test_the_llm_reads_an_entry_range_and_which_spx_a_post_means(peer) -> None:
    llm = classifier(peer)
    ranged = await llm.classify("Long $ETH 3,100-3,180, stop 2,990, tp 3,500")
    assert ranged.classifier == "llm"
    # the same levels the rules read (engine/classify/call_levels.py), the entry range's too
    rules = await RulesClassifier().classify("Long $ETH 3,100-3,180, stop 2,990, tp 3,500")
    assert levels_of(ranged.details) == levels_of(rules.details)
    assert levels_of(ranged.details)["entry_to"] == Decimal(3180)
    index = await llm.classify("Short the S&P 500, equities look heavy")
    token = await llm.classify("Long $SPX, best meme token on HL")
    assert (index.market, index.details.get("market_venue")) == ("SPX", "OSTIUM")
    assert (token.market, token.details.get("market_venue")) == ("SPX", "HYPERLIQUID")
