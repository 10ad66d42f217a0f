"""A chat world trading live on the Hyperliquid stand-in as `maxxit run` composes it: agent
keys in the vault, the venue signing through bot/live_trading.signer_lookup, protective
orders resting on the venue, and the connect page's endpoints on our own web server."""

from __future__ import annotations

import base64
import os
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from dataclasses import dataclass
from decimal import Decimal
from typing import Any

import httpx
from eth_account import Account
from eth_account.signers.local import LocalAccount

from bot import web_wallet
from bot.live_trading import signer_lookup
from bot.web import make_app
from engine.protection_hooks import Protection
from engine.venues.hyperliquid import HyperliquidConfig, HyperliquidVenue
from engine.venues.hyperliquid_protection import HyperliquidProtection
from engine.venues.routed import AccountRoutedVenue
from tests.chat_helpers import Person, World, make_world, sign_text, text_of
from tests.peers.hyperliquid_api import HyperliquidPeer
from tests.peers.telegram_api import serve_app
from wallets.vault import MasterKey, Vault


@dataclass
class Live:
    world: World
    peer: HyperliquidPeer
    vault: Vault
    master: str
    web: httpx.AsyncClient
    root: str
    wallet: LocalAccount  # the user's own wallet (Maxxit never holds it)
    ann: Person


@asynccontextmanager
async def live_world(sessions: Any, peer: HyperliquidPeer) -> AsyncIterator[Live]:
    world = await make_world(sessions)
    master = base64.b64encode(os.urandom(32)).decode()
    vault = Vault(MasterKey.parse(master))
    services = world.bot.services
    services.vault, services.hyperliquid_url = vault, peer.base_url
    venue = HyperliquidVenue(
        HyperliquidConfig(base_url=peer.base_url, timeout=3),
        signer_lookup(sessions, vault),
        prices=world.engine.prices,
    )
    await venue.refresh_markets()
    world.engine.venues["HYPERLIQUID"] = AccountRoutedVenue(
        world.engine.venues["HYPERLIQUID"], venue
    )
    world.engine.protection = Protection(
        sessions, HyperliquidProtection(venue), clock=world.engine.clock
    )
    wallet = Account.create()
    peer.fund(wallet.address, Decimal(5000))
    app = make_app(extra=web_wallet.routes(services))
    async with serve_app(app) as root, httpx.AsyncClient(base_url=root) as web:
        services.public_url = root
        yield Live(world, peer, vault, master, web, root, wallet, world.person("Ann", 1))


async def link_wallet(live: Live) -> str:
    """/link and the connect page's calls; the fresh token verify hands the page back."""
    text = text_of(await live.ann.say("/link"))
    token = text.split("t=")[1].split()[0]
    issued = (
        await live.web.post(
            "/api/siwe/nonce", json={"token": token, "address": live.wallet.address}
        )
    ).json()
    message = issued["message"]
    done = await live.web.post(
        "/api/siwe/verify",
        json={"token": token, "message": message, "signature": sign_text(message, live.wallet)},
    )
    assert done.status_code == 200, done.text
    await live.ann.say("/cancel")
    return str(done.json()["token"])


async def approve_on_page(live: Live, token: str) -> str:
    """The connect page's approval: the user's wallet signs approveAgent for the agent the
    server names; the server submits and confirms it. The agent's address."""
    req = await live.web.post("/api/hyperliquid/approval", json={"token": token})
    assert req.status_code == 200, req.text
    wanted = req.json()
    signed = Account.sign_typed_data(live.wallet.key, full_message=wanted["typedData"])
    ok = await live.web.post(
        "/api/hyperliquid/approve",
        json={
            "token": token,
            "action": wanted["action"],
            "signature": signed.signature.to_0x_hex(),
        },
    )
    assert ok.status_code == 200, ok.text
    return str(wanted["agent"])


async def create_agent(who: Person, name: str = "Hawk", source: str = "@CryptoHawk") -> None:
    await who.say("/create")
    for answer in (name, source, "HYPERLIQUID", "100", "5", "3", "none", "none", "ignore", "10"):
        await who.say(answer)
    assert who.last is not None
    await who.choose(who.last.replies[0], "Create")


async def deploy_live(who: Person, name: str = "Hawk") -> str:
    r = await who.say(f"/deploy {name}")
    r = await who.choose(r.replies[0], "Live (Hyperliquid)")
    await who.say("100")
    await who.say("3")
    assert who.last is not None
    r = await who.choose(who.last.replies[0], "Trade automatically")
    r = await who.choose(r.replies[0], "Deploy")
    return text_of(r)


async def resting_triggers(live: Live) -> list[dict[str, Any]]:
    """The account's trigger orders as Hyperliquid's /info reports them."""
    r = await live.web.post(
        f"{live.peer.base_url}/info",
        json={"type": "frontendOpenOrders", "user": live.wallet.address},
    )
    return [o for o in r.json() if o.get("isTrigger")]
