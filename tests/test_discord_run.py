"""`maxxit run` starts Discord whenever a token (gateway) or a public key (HTTP interactions)
is set, beside Telegram, and one account's alerts reach the app where it can be reached."""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import httpx
import pytest
from pydantic import SecretStr

from bot import service
from bot.settings import Settings
from bot.web import EmbeddedServer, bound_port, server
from tests.chat_helpers import step
from tests.peers.discord_api import DiscordPeer
from tests.peers.discord_users import SimUser
from tests.peers.telegram_api import TelegramPeer


@contextlib.asynccontextmanager
async def running(settings: Settings, monkeypatch: pytest.MonkeyPatch) -> AsyncIterator[str]:
    """`maxxit run` on a port the system picks (PORT=0); yields the web server's root."""
    servers: list[EmbeddedServer] = []

    def keep(app: Any, host: str, port: int) -> EmbeddedServer:
        servers.append(server(app, host, port))
        return servers[-1]

    monkeypatch.setattr(service, "server", keep)
    stop = asyncio.Event()
    task = asyncio.create_task(service.run(settings, stop))
    try:
        for _ in range(600):
            if task.done():
                task.result()
            if servers and servers[0].started:
                break
            await asyncio.sleep(0.05)
        yield f"http://127.0.0.1:{bound_port(servers[0])}"
    finally:
        stop.set()
        await asyncio.wait_for(task, 30)


async def start(user: SimUser, expect: str) -> None:
    interaction = await user.command("start")
    await user.answer(interaction, expect)


async def test_run_with_a_discord_token_answers_through_the_gateway(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    async with DiscordPeer() as peer:
        settings = Settings(
            data_dir=tmp_path,
            database_url=None,
            host="127.0.0.1",
            port=0,
            price_feed="none",  # never Hyperliquid's public prices from a test
            discord_bot_token=SecretStr(peer.token),
            discord_api_url=peer.base_url,  # the gateway: the same host
        )
        assert settings.discord_gateway() == peer.gateway_url
        async with running(settings, monkeypatch) as root:
            assert peer.gateway.identifies == 1
            assert "deploy" in {c["name"] for c in peer.commands[""]}
            await start(peer.user(31, "Ann", "ru"), "Maxxit")
            async with httpx.AsyncClient() as client:
                health = (await client.get(f"{root}/healthz")).json()
            assert health["discord"] == "gateway" and health["telegram"] == "off"


async def test_run_with_a_public_key_serves_http_interactions_beside_telegram(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    async with DiscordPeer() as peer, TelegramPeer() as tg:
        settings = Settings(
            data_dir=tmp_path,
            database_url=None,
            host="127.0.0.1",
            port=0,
            price_feed="none",
            telegram_bot_token=tg.token,
            telegram_api_url=tg.base_url.removesuffix("/bot"),
            discord_bot_token=SecretStr(peer.token),
            discord_public_key=peer.public_key,
            discord_api_url=peer.base_url,
        )
        async with running(settings, monkeypatch) as root:
            peer.mode, peer.interactions_url = "http", f"{root}/discord/interactions"
            assert peer.gateway.identifies == 0  # Discord posts to us: no gateway session
            assert "deploy" in {c["name"] for c in peer.commands[""]}
            await start(peer.user(32, "Ann", "en-US"), "Welcome to Maxxit")
            await step(tg.user(33, "Bob", "en"), "/start", "Welcome to Maxxit")
