"""`maxxit run` when it cannot start as configured: no token explains how to get one and
mentions `maxxit chat`; a rejected token, an unreachable Telegram or a port in use give one
clear line on stderr and an exit code, never a traceback."""

from __future__ import annotations

import asyncio
import logging
import socket

import pytest

from bot.cli import main
from bot.service import run
from bot.settings import Settings
from bot.startup import PORT_IN_USE, TELEGRAM_UNREACHABLE, TOKEN_REJECTED
from tests.peers.telegram_api import TelegramPeer


@pytest.fixture
def env(monkeypatch, tmp_path):  # type: ignore[no-untyped-def]
    for key in ("TELEGRAM_BOT_TOKEN", "PUBLIC_URL", "DATABASE_URL"):
        monkeypatch.delenv(key, raising=False)
    monkeypatch.chdir(tmp_path)  # no .env from the repository
    monkeypatch.setenv("DATA_DIR", str(tmp_path))
    monkeypatch.setenv("PORT", "0")
    monkeypatch.setenv("PRICE_FEED", "none")  # no test reaches the internet
    return monkeypatch


async def test_no_token_says_how_to_get_one_and_mentions_maxxit_chat(tmp_path, caplog) -> None:
    caplog.set_level(logging.INFO)
    stop = asyncio.Event()
    settings = Settings(_env_file=None, data_dir=tmp_path, port=0, price_feed="none")
    task = asyncio.create_task(run(settings, stop))
    for _ in range(100):
        await asyncio.sleep(0.05)
        if "TELEGRAM_BOT_TOKEN is not set" in caplog.text:
            break
    stop.set()
    await asyncio.wait_for(task, 10)
    assert "@BotFather" in caplog.text and "`maxxit chat`" in caplog.text


def test_a_rejected_token_is_one_line_and_exit_code_2(env, capsys) -> None:  # type: ignore[no-untyped-def]
    async def with_peer() -> int:
        async with TelegramPeer() as peer:
            env.setenv("TELEGRAM_BOT_TOKEN", "999:WRONG")
            env.setenv("TELEGRAM_API_URL", peer.base_url.removesuffix("/bot"))
            return await asyncio.to_thread(main, ["run"])

    assert asyncio.run(with_peer()) == TOKEN_REJECTED
    err = capsys.readouterr().err
    assert "maxxit: Telegram rejected TELEGRAM_BOT_TOKEN" in err
    assert "Traceback" not in err and "999:WRONG" not in err


def test_an_unreachable_telegram_is_one_line_and_exit_code_3(env, capsys) -> None:  # type: ignore[no-untyped-def]
    closed = socket.socket()
    closed.bind(("127.0.0.1", 0))
    port = closed.getsockname()[1]
    closed.close()  # nothing listens there
    env.setenv("TELEGRAM_BOT_TOKEN", "123:SECRETVALUE")
    env.setenv("TELEGRAM_API_URL", f"http://127.0.0.1:{port}")
    assert main(["run"]) == TELEGRAM_UNREACHABLE
    err = capsys.readouterr().err
    assert "maxxit: Telegram's Bot API is not reachable from here" in err
    assert "Traceback" not in err and "SECRETVALUE" not in err


def test_a_port_in_use_is_one_line_and_exit_code_4(env, capsys) -> None:  # type: ignore[no-untyped-def]
    holder = socket.socket()
    holder.bind(("0.0.0.0", 0))
    holder.listen()
    port = holder.getsockname()[1]
    try:
        env.setenv("PORT", str(port))
        assert main(["run"]) == PORT_IN_USE
    finally:
        holder.close()
    err = capsys.readouterr().err
    assert (
        f"maxxit: port {port} on 0.0.0.0 is in use" in err
        and "set PORT" in err
        and "Traceback" not in err
    )
