"""`maxxit run` when it cannot start as configured: no token explains how to get one and
mentions `maxxit chat`; a rejected token or a port in use give one clear line on stderr and an
exit code, never a traceback; an unreachable Telegram leaves the web server serving while the
bot retries."""

from __future__ import annotations

import asyncio
import logging
import socket

import httpx
import pytest
from pydantic import SecretStr

from bot.cli import main
from bot.service import run
from bot.settings import Settings
from bot.startup import PORT_IN_USE, TOKEN_REJECTED
from tests.chat_helpers import step
from tests.peers.telegram_api import TelegramPeer
from tests.test_discord_run import running


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


async def _health(client: httpx.AsyncClient, root: str, state: str) -> httpx.Response:
    """/healthz once it reports Telegram in `state` (polled: the bot retries on its own)."""
    for _ in range(400):
        answer = await client.get(f"{root}/healthz")
        if answer.json()["telegram"] == state:
            return answer
        await asyncio.sleep(0.05)
    raise AssertionError(f"telegram never {state}: {answer.text}")


async def test_healthz_serves_while_telegram_is_down_and_the_bot_connects_once_it_is_up(
    tmp_path, monkeypatch
) -> None:  # type: ignore[no-untyped-def]
    down = socket.socket(socket.AF_INET, socket.SOCK_STREAM, socket.IPPROTO_TCP)
    down.bind(("127.0.0.1", 0))  # bound, not listening: connections refused, the port kept
    peer = TelegramPeer(token="123:SECRETVALUE", sock=down)  # serves there once entered
    settings = Settings(
        _env_file=None,
        data_dir=tmp_path,
        host="127.0.0.1",
        port=0,
        price_feed="none",
        telegram_bot_token=SecretStr(peer.token),
        telegram_api_url=f"http://127.0.0.1:{down.getsockname()[1]}",
        telegram_retry_seconds=0.05,
        telegram_retry_max_seconds=0.2,
    )
    async with running(settings, monkeypatch) as root, httpx.AsyncClient() as client:
        health = await _health(client, root, "unreachable")
        # 200: a load balancer keeps sending webhooks and the connect page here; the body
        # says which part is down
        assert health.status_code == 200
        assert health.json()["status"] == "degraded" and health.json()["down"] == ["telegram"]
        assert "SECRETVALUE" not in health.text
        async with peer:  # the Bot API is back: the bot connects without a restart
            health = await _health(client, root, "on")
            assert health.json()["status"] == "ok" and "down" not in health.json()
            await step(peer.user(41, "Ann", "en"), "/start", "Welcome to Maxxit")


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
