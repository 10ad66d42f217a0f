"""The commands a user types on a fresh machine."""

from __future__ import annotations

import asyncio
import os
import subprocess
import sys
from pathlib import Path

from sqlalchemy import create_engine, inspect

from bot.service import run
from bot.settings import Settings

ROOT = Path(__file__).resolve().parents[1]


def test_db_upgrade_creates_every_table_under_the_data_dir(tmp_path: Path) -> None:
    env = {**os.environ, "DATA_DIR": str(tmp_path / "d"), "DATABASE_URL": ""}
    out = subprocess.run(
        [sys.executable, "-m", "bot", "db", "upgrade"],
        env=env,
        cwd=tmp_path,
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert out.returncode == 0, out.stderr
    assert "database at head" in out.stdout
    tables = set(
        inspect(create_engine(f"sqlite:///{tmp_path / 'd' / 'maxxit.db'}")).get_table_names()
    )
    assert {
        "users",
        "agents",
        "deployments",
        "orders",
        "positions",
        "ledger",
        "outbox",
        "signals",
        "routing_decisions",
        "conversations",
        "processed_events",
    } <= tables


def test_unknown_command_is_a_clear_usage_error() -> None:
    out = subprocess.run(
        [sys.executable, "-m", "bot", "fly"], capture_output=True, text=True, timeout=60, cwd=ROOT
    )
    assert out.returncode == 2
    assert "invalid choice: 'fly'" in out.stderr


async def test_run_delivers_what_a_previous_process_left_and_stops_cleanly(
    tmp_path: Path, capsys
) -> None:
    from storage.db import create_engine as create_async
    from storage.db import session_factory, sqlite_url
    from storage.migrate import upgrade
    from storage.models import OutboxMessage, User

    url = sqlite_url(tmp_path / "maxxit.db")
    await upgrade(url)
    db = create_async(url)
    async with session_factory(db)() as s, s.begin():
        s.add(User(id=7, display_name="ann"))
        await s.flush()
        s.add(
            OutboxMessage(
                user_id=7,
                kind="order_failed",
                dedupe_key="k1",
                payload={
                    "agent": "Hawk",
                    "purpose": "open",
                    "side": "long",
                    "market": "ETH",
                    "reason": "below_min_notional",
                },
            )
        )
    await db.dispose()

    stop = asyncio.Event()
    task = asyncio.create_task(
        run(Settings(data_dir=tmp_path, database_url=None, port=0, price_feed="none"), stop)
    )
    for _ in range(50):
        await asyncio.sleep(0.1)
        if "[to user 7]" in capsys.readouterr().out:
            break
    else:
        raise AssertionError("the pending alert was never delivered")
    assert not task.done()
    stop.set()
    await asyncio.wait_for(task, 10)


def test_paper_market_lists_are_configurable() -> None:
    from bot.service import paper_markets

    m = paper_markets(Settings(paper_markets_ostium="XAU, EURUSD,NEWCOIN"))
    assert list(m["OSTIUM"]) == ["XAU", "EURUSD", "NEWCOIN"]
    assert m["OSTIUM"]["NEWCOIN"].size_decimals == 6  # unknown: the default precision
    assert "BTC" in m["HYPERLIQUID"] and m["HYPERLIQUID"]["BTC"].size_decimals == 5


async def test_maxxit_chat_runs_the_handlers_in_a_terminal(tmp_path: Path) -> None:
    from bot.chat import chat

    lines = [
        "/start",
        "#1",  # Browse agents
        "#1",  # Deploy TrendHawk
        "#1",  # suggested collateral
        "#1",  # leverage
        "#1",  # trade automatically
        "#1",  # Deploy
        "!post @CryptoHawk Long $ETH here",
        "/positions",
        "!price ETH 2000",
        "!price nonsense",
        "#99",
        "/pnl",
    ]

    async def feed():
        for line in lines:
            yield line

    out: list[str] = []
    await chat(Settings(data_dir=tmp_path, database_url=None), feed(), out.append)
    text = "\n".join(out)
    assert "[1] Browse agents" in text
    assert "TrendHawk is deployed" in text
    assert "🔔 [PAPER] TrendHawk opened LONG ETH" in text  # the alert, with its Close button
    assert "LONG ETH on HYPERLIQUID" in text
    assert "ETH = 2000; closed: " in text  # 2000 is through the 3% stop from 3050
    assert "usage: !price" in text or "simulator:" in text
    assert "There is no button #99." in text
    assert "realized -$" in text


def test_a_copied_env_example_runs_the_demo(tmp_path: Path) -> None:
    """A newcomer's first step: `cp .env.example .env`, then `maxxit demo`. Its empty values
    (`TELEGRAM_WEBHOOK_SECRET=`, `REPLICA_ID=`) mean unset, not an invalid empty string."""
    root = Path(__file__).resolve().parent.parent
    (tmp_path / ".env").write_text((root / ".env.example").read_text())
    env = {k: v for k, v in os.environ.items() if k not in ("DATABASE_URL",)}
    done = subprocess.run(
        [sys.executable, "-m", "bot", "demo", "--json"],
        cwd=tmp_path,
        env={**env, "PYTHONPATH": str(root)},
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert done.returncode == 0, done.stderr[-2000:]
    assert '"positions"' in done.stdout
