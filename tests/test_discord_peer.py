"""The Discord stand-in, driven by discord.py's own client over HTTP and the gateway: what
we test our bot against must behave like Discord for the real library first."""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import AsyncIterator

import discord
import pytest
import yarl
from discord.gateway import DiscordWebSocket
from discord.http import Route

from tests.peers.discord_api import DiscordPeer
from tests.peers.discord_users import post_signed

COMMANDS = [{"name": "status", "description": "Your status", "type": 1,
             "options": [{"name": "market", "description": "m", "type": 3}]}]  # fmt: skip


@pytest.fixture
async def peer(monkeypatch: pytest.MonkeyPatch) -> AsyncIterator[DiscordPeer]:
    async with DiscordPeer() as p:
        monkeypatch.setattr(Route, "BASE", p.base_url)
        monkeypatch.setattr(DiscordWebSocket, "DEFAULT_GATEWAY", yarl.URL(p.gateway_url))
        yield p


@contextlib.asynccontextmanager
async def running(client: discord.Client, peer: DiscordPeer) -> AsyncIterator[None]:
    task = asyncio.create_task(client.start(peer.token))
    try:
        await asyncio.wait_for(client.wait_until_ready(), 10)
        yield
    finally:
        await client.close()
        with contextlib.suppress(asyncio.CancelledError):
            await task


async def test_login_sync_command_reply_button_and_resume(peer: DiscordPeer) -> None:
    gid, channel = peer.guild()
    client = discord.Client(intents=discord.Intents(guilds=True), guild_ready_timeout=0.05)
    seen: list[discord.Interaction] = []

    @client.event
    async def on_interaction(interaction: discord.Interaction) -> None:
        seen.append(interaction)
        if interaction.type is discord.InteractionType.application_command:
            view = discord.ui.View(timeout=None)
            view.add_item(discord.ui.Button(label="Close", custom_id="pc:7"))
            view.stop()  # answered in on_interaction, not through the view
            await interaction.response.send_message("ETH long", view=view, ephemeral=True)
        else:
            await interaction.response.edit_message(content="Closed", view=None)

    async with running(client, peer):
        assert client.user is not None and str(client.user.id) == peer.application_id
        assert [g.id for g in client.guilds] == [int(gid)]
        await client.http.bulk_upsert_global_commands(int(peer.application_id), COMMANDS)
        assert [c["name"] for c in peer.commands[""]] == ["status"]

        ann = peer.user(42, "Ann", "es-ES")
        i = await ann.command("status", channel=channel, market="ETH")
        shown = await ann.answer(i, "ETH long")
        assert shown.ephemeral and shown.button_labels() == ["Close"]
        eve = peer.user(43, "Eve")
        assert shown not in eve.messages  # ephemeral: only Ann sees it
        assert seen[0].locale is discord.Locale.spain_spanish
        assert seen[0].data is not None and seen[0].data["options"][0]["value"] == "ETH"

        await peer.gateway.reconnect()  # Discord asks for a reconnect; events meanwhile
        press = await ann.press(shown, "Close")
        assert (await ann.answer(press, "Closed")).button_labels() == []
        for _ in range(50):
            if peer.gateway.resumes:
                break
            await asyncio.sleep(0.05)
        assert peer.gateway.resumes == 1 and peer.gateway.identifies == 1


async def test_dm_rate_limit_429_and_closed_dms(peer: DiscordPeer) -> None:
    peer.user(42, "Ann")
    peer.user(44, "Bob")
    peer.close_dms("44")
    client = discord.Client(intents=discord.Intents.none(), guild_ready_timeout=0.05)
    async with running(client, peer):
        ann = await client.fetch_user(42)
        peer.fail_next("/channels/{channel}/messages", retry_after=0.3)
        sent = await ann.send("hello")  # discord.py waits the 429 out and retries
        assert sent.content == "hello"
        statuses = [c.status for c in peer.calls_to("/channels/{channel}/messages")]
        assert statuses == [429, 200]
        bob = await client.fetch_user(44)
        with pytest.raises(discord.Forbidden) as refused:
            await bob.send("hi")
        assert refused.value.code == 50007
        with pytest.raises(discord.HTTPException) as bad:
            await ann.send("x" * 2001)
        assert bad.value.code == 50035


async def test_signed_http_interactions_reach_an_endpoint(peer: DiscordPeer) -> None:
    from starlette.applications import Starlette
    from starlette.requests import Request
    from starlette.responses import JSONResponse
    from starlette.routing import Route as WebRoute

    from tests.peers.telegram_api import serve_app

    async def endpoint(request: Request) -> JSONResponse:
        import nacl.exceptions
        import nacl.signing

        body = await request.body()
        key = nacl.signing.VerifyKey(bytes.fromhex(peer.public_key))
        try:
            key.verify(
                request.headers["X-Signature-Timestamp"].encode() + body,
                bytes.fromhex(request.headers["X-Signature-Ed25519"]),
            )
        except (KeyError, ValueError, nacl.exceptions.BadSignatureError):
            return JSONResponse({"error": "bad signature"}, 401)
        return JSONResponse({"type": 1})

    async with serve_app(Starlette(routes=[WebRoute("/i", endpoint, methods=["POST"])])) as root:
        peer.interactions_url = f"{root}/i"
        assert (await post_signed(peer, {"type": 1})).body == {"type": 1}
        assert (await post_signed(peer, {"type": 1}, signature="00" * 64)).status == 401
        assert (await post_signed(peer, {"type": 1}, signature=None)).status == 401
