"""`maxxit` command line: demo, replay, run, chat, eval-classifier, vault rotate, db upgrade."""

from __future__ import annotations

import argparse
import asyncio
import json
import logging
import os
import sys
from importlib import resources
from pathlib import Path

from bot.replay_log import live_log, summary
from bot.runtime import tune_gc
from bot.settings import Settings
from engine.replay.runner import run_scenario
from engine.replay.scenario import ScenarioError, load_scenario, parse_scenario
from storage.db import resolve_url
from storage.migrate import upgrade


def _parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(prog="maxxit", description="Chat-first AI trading agents.")
    sub = p.add_subparsers(dest="command", required=True)
    d = sub.add_parser("demo", help="replay the bundled scenario (no keys, no network)")
    d.add_argument("--json", action="store_true", help="print one JSON object")
    r = sub.add_parser("replay", help="run a scenario file through the whole pipeline")
    r.add_argument("scenario", type=Path)
    r.add_argument("--json", action="store_true", help="print one JSON object")
    sub.add_parser("run", help="run the engine, bots and web server until stopped (Procfile)")
    c = sub.add_parser("chat", help="talk to the bot in this terminal (no token needed)")
    c.add_argument("--language", default=None, help="en, es or ru (default: en)")
    sub.add_parser("stats", help="counts, PnL and the LLM classifier's token cost")
    e = sub.add_parser("eval-classifier", help="precision/recall of a classifier on labelled posts")
    e.add_argument("--data", type=Path, default=None, help="labelled JSONL (default: bundled set)")
    e.add_argument("--llm", action="store_true", help="evaluate the LLM classifier (needs a key)")
    e.add_argument("--json", action="store_true", help="per-post decisions and figures as JSON")
    v = sub.add_parser("vault", help="agent-key vault maintenance")
    v.add_argument(
        "action",
        choices=["rotate", "rotate-agent-key"],
        help="rotate: re-encrypt agent keys under MAXXIT_MASTER_KEY; rotate-agent-key USER "
        "VENUE: a new agent key for one user, approved by them, the old one revoked",
    )
    v.add_argument("user", nargs="?", help="rotate-agent-key: user id, or telegram:<user id>")
    v.add_argument("venue", nargs="?", help="rotate-agent-key: hyperliquid or ostium")
    db = sub.add_parser("db", help="database maintenance")
    db.add_argument("action", choices=["upgrade"])
    return p


def _replay(text_or_path: str | Path, as_json: bool, settings: Settings) -> int:
    try:
        sc = (
            load_scenario(text_or_path)
            if isinstance(text_or_path, Path)
            else parse_scenario(text_or_path, "demo scenario")
        )
    except ScenarioError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 2
    try:
        result = asyncio.run(
            run_scenario(sc, settings.database_url, None if as_json else live_log(print))
        )
        if as_json:
            print(json.dumps(result.as_json(), indent=2))
        else:
            summary(result, print)
        sys.stdout.flush()
    except BrokenPipeError:  # `maxxit demo --json | head`: the reader has all it wanted
        quiet_broken_pipe()
    return 0


def quiet_broken_pipe() -> None:
    """After the reader of our stdout left: no 'Exception ignored' at exit (Python's own
    advice for SIGPIPE), exit code 0 as `head` users expect."""
    devnull = os.open(os.devnull, os.O_WRONLY)
    os.dup2(devnull, sys.stdout.fileno())


async def _stats(settings: Settings) -> int:
    from bot.stats import stats_lines
    from storage.db import create_engine, session_factory

    url = resolve_url(settings.database_url, settings.data_dir)
    await upgrade(url)
    db = create_engine(url)
    try:
        async with session_factory(db)() as s:
            print("\n".join(await stats_lines(s, settings)))
    finally:
        await db.dispose()
    return 0


async def _rotate(settings: Settings) -> int:
    from storage.audit import write_audit
    from storage.db import create_engine, session_factory
    from wallets.vault import Vault, VaultError, rotate
    from wallets.vault_webhooks import rotate_webhook_secrets

    try:
        vault = Vault.from_env(settings.vault_env())
    except VaultError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 2
    url = resolve_url(settings.database_url, settings.data_dir)
    await upgrade(url)
    db = create_engine(url)
    try:
        async with session_factory(db)() as s, s.begin():
            result = await rotate(s, vault)
            hooks = await rotate_webhook_secrets(s, vault)
            await write_audit(
                s, None, "vault_rotate", "cli", "vault", rotated=result.rotated,
                under=vault.current.key_id, unreadable=result.unreadable,
                webhooks_rotated=hooks.rotated, webhooks_unreadable=hooks.unreadable,
            )  # fmt: skip
    finally:
        await db.dispose()
    print(f"re-encrypted {result.rotated} agent key(s) and {hooks.rotated} webhook secret(s) "
          f"under {vault.current.key_id}")  # fmt: skip
    if result.unreadable:
        print(f"could not open {len(result.unreadable)}: ids {result.unreadable}", file=sys.stderr)
    if hooks.unreadable:
        print(f"could not open webhook secrets of channels {hooks.unreadable}", file=sys.stderr)
    return 1 if result.unreadable or hooks.unreadable else 0


def main(argv: list[str] | None = None) -> int:
    args = _parser().parse_args(argv)
    settings = Settings()
    tune_gc()
    logging.basicConfig(
        level=logging.WARNING
        if args.command in ("demo", "replay", "chat", "eval-classifier", "stats")
        else settings.log_level,
        stream=sys.stderr,
        format="%(asctime)s %(levelname)s %(name)s: %(message)s",
    )
    if args.command == "demo":
        text = resources.files("bot").joinpath("scenarios/demo.json").read_text("utf-8")
        return _replay(text, args.json, settings)
    if args.command == "replay":
        return _replay(args.scenario, args.json, settings)
    if args.command == "run":
        from bot.service import run
        from bot.startup import StartupError

        try:
            asyncio.run(run(settings))
        except StartupError as exc:  # one clear line and an exit code, not a traceback
            print(f"maxxit: {exc}", file=sys.stderr)
            return exc.code
        return 0
    if args.command == "chat":
        from bot.chat import chat, stdin_lines

        asyncio.run(chat(settings, stdin_lines(), language=args.language))
        return 0
    if args.command == "stats":
        return asyncio.run(_stats(settings))
    if args.command == "eval-classifier":
        from bot.eval_classifier import run_eval

        return asyncio.run(run_eval(settings, args.data, args.llm, as_json=args.json))
    if args.command == "vault" and args.action == "rotate-agent-key":
        from bot.key_rotation import rotate_agent_key

        return asyncio.run(rotate_agent_key(settings, args.user, args.venue))
    if args.command == "vault":
        return asyncio.run(_rotate(settings))
    if args.command == "db":
        url = resolve_url(settings.database_url, settings.data_dir)
        asyncio.run(upgrade(url))
        print(f"database at head: {url.split('@')[-1]}")
        return 0
    return 1
