"""The Discord bot end to end for tests: our handlers and engine behind the real transport
(discord.py on the gateway, or our signed-HTTP endpoint) and the local Discord stand-in."""

from __future__ import annotations

import contextlib
from collections.abc import AsyncIterator
from dataclasses import dataclass

from starlette.applications import Starlette

from bot.discord import DiscordGatewayBot
from bot.discord_commands import register_commands
from bot.discord_delivery import DiscordTransport
from bot.discord_http import interactions_route
from bot.discord_rest import DiscordRest
from engine.notify import Dispatcher
from tests.chat_helpers import World, make_world
from tests.peers.discord_api import DiscordPeer
from tests.peers.discord_models import Message
from tests.peers.discord_users import SimUser
from tests.peers.telegram_api import serve_app


@dataclass
class DiscordStack:
    world: World
    peer: DiscordPeer
    rest: DiscordRest
    dispatcher: Dispatcher
    mode: str

    async def deliver(self) -> int:
        return await self.dispatcher.deliver_pending()


@contextlib.asynccontextmanager
async def discord_stack(sessions, mode: str) -> AsyncIterator[DiscordStack]:  # type: ignore[no-untyped-def]
    world = await make_world(sessions)
    async with DiscordPeer() as peer:
        rest = DiscordRest(peer.token, peer.base_url)
        await register_commands(rest, peer.application_id)
        dispatcher = Dispatcher(sessions, DiscordTransport(rest, sessions))
        stack = DiscordStack(world, peer, rest, dispatcher, mode)
        try:
            if mode == "gateway":
                gateway = DiscordGatewayBot(
                    peer.token, world.bot, world.bot.services, rest, peer.base_url,
                    peer.gateway_url, guild_ready_timeout=0.05,
                )  # fmt: skip
                await gateway.start(ready_within=10)
                try:
                    yield stack
                finally:
                    await gateway.stop()
            else:
                route = interactions_route(peer.public_key, world.bot, world.bot.services, rest)
                async with serve_app(Starlette(routes=[route])) as root:
                    peer.mode, peer.interactions_url = "http", f"{root}/discord/interactions"
                    yield stack
        finally:
            await rest.aclose()


async def run(user: SimUser, command: str, expect: str, **options: object) -> Message:
    """A slash command; the answer once it reads `expect`."""
    interaction = await user.command(command, **options)
    return await user.answer(interaction, expect)


async def say(user: SimUser, text: str, expect: str) -> Message:
    """Free text for the current wizard step, through /answer."""
    return await run(user, "answer", expect, text=text)


async def press(user: SimUser, message: Message, label: str, expect: str) -> Message:
    interaction = await user.press(message, label)
    return await user.answer(interaction, expect)


async def create_and_deploy(ann: SimUser, approval: str = "Trade automatically") -> None:
    await run(ann, "create", "What is its name?")
    await say(ann, "Hawk", "Which X accounts")
    bad = await say(ann, "@way_too_long_handle_here", "not valid X handles")
    assert "way_too_long_handle_here" in bad.text
    venue = await say(ann, "@CryptoHawk @MacroMia", "Where should Hawk trade?")
    assert venue.button_labels()[:3] == ["HYPERLIQUID", "OSTIUM", "MULTI"]
    await press(ann, venue, "HYPERLIQUID", "collateral per trade")
    await say(ann, "100", "Maximum leverage")
    await say(ann, "5", "Stop loss")
    await say(ann, "3", "Trailing stop")
    await say(ann, "2", "Trail at what distance")
    await say(ann, "1", "Take profit")
    await say(ann, "8", "the agent already holds")
    await say(ann, "Ignore", "Your share as the creator")
    summary = await say(ann, "10", "Create it?")
    done = await press(ann, summary, "Create", "is live in the marketplace")
    assert done.id == summary.id  # the summary became the confirmation
    ask = await press(ann, done, "Deploy Hawk", "Deploying Hawk")
    ask = await press(ann, ask, "$100.00", "Leverage for Hawk")
    ask = await press(ann, ask, "3x", "manual approval")
    ask = await press(ann, ask, approval, "Confirm?")
    await press(ann, ask, "Deploy", "is deployed")
