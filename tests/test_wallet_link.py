"""Linking a wallet as a user does it: /link in Telegram, the connect page's endpoints (or the
signature pasted in chat), the confirmation in chat, /wallet, /unlink with confirm."""

from __future__ import annotations

import json
from collections.abc import AsyncIterator
from dataclasses import dataclass

import httpx
import pytest
from eth_account import Account
from sqlalchemy import select

from bot import web_wallet
from bot.telegram import TelegramBot, TelegramTransport
from bot.telegram_limits import ChatRateLimiter
from bot.telegram_webapp import sign_init_data
from bot.web import make_app
from engine.notify import Dispatcher
from storage.models import Wallet
from tests.chat_helpers import World, make_world, sign_text, step
from tests.peers.telegram_api import TelegramPeer, serve_app


@dataclass
class Site:
    world: World
    peer: TelegramPeer
    root: str
    dispatcher: Dispatcher


@pytest.fixture
async def site(sessions) -> AsyncIterator[Site]:
    world = await make_world(sessions)
    async with TelegramPeer() as peer:
        services = world.bot.services
        app = make_app(extra=web_wallet.routes(services, peer.token))
        async with serve_app(app) as root:
            services.public_url = root
            api = peer.base_url.removesuffix("/bot")
            bot = TelegramBot(peer.token, world.bot, api_url=api, limiter=ChatRateLimiter(30, 0.01))
            await bot.start(poll_timeout=1)
            try:
                yield Site(
                    world, peer, root, Dispatcher(sessions, TelegramTransport(bot.bot, sessions))
                )
            finally:
                await bot.stop()


async def test_link_on_the_page_is_confirmed_in_chat_then_wallet_and_unlink(site: Site) -> None:
    ann = site.peer.user(11, "Ann", "en")
    intro = await step(ann, "/link", "Link your wallet")
    url = next(w for w in intro.text.split() if w.startswith(site.root))
    token = url.split("t=")[1]
    wallet = Account.create()
    async with httpx.AsyncClient(base_url=site.root) as web:
        page = await web.get(f"/connect?t={token}")
        assert page.status_code == 200 and "/static/connect.js" in page.text
        assert '<script src="http' not in page.text  # nothing from a CDN
        assert (await web.get("/static/connect.js")).status_code == 200
        issued = (
            await web.post(
                "/api/siwe/nonce",
                json={"token": token, "address": wallet.address.lower(), "chainId": 42161},
            )
        ).json()
        assert wallet.address in issued["message"] and "Chain ID: 42161" in issued["message"]
        bad = await web.post(
            "/api/siwe/verify",
            json={
                "token": token,
                "message": issued["message"],
                "signature": sign_text(issued["message"], Account.create()),
            },
        )
        assert bad.status_code == 400 and bad.json()["reason"] == "bad_signature"
        ok = await web.post(
            "/api/siwe/verify",
            json={
                "token": token,
                "message": issued["message"],
                "signature": sign_text(issued["message"], wallet),
            },
        )
        assert ok.status_code == 200 and ok.json()["address"] == wallet.address
        again = await web.post(
            "/api/siwe/verify",
            json={
                "token": token,
                "message": issued["message"],
                "signature": sign_text(issued["message"], wallet),
            },
        )
        assert again.json()["reason"] == "nonce_used"
        expired = await web.post(
            "/api/siwe/nonce", json={"token": "nope", "address": wallet.address}
        )
        assert expired.status_code == 403 and expired.json()["reason"] == "link_expired"
        garbage = await web.post("/api/siwe/nonce", content=b"[1,2")
        assert garbage.status_code == 400
    await site.dispatcher.deliver_pending()
    await ann.wait_for(f"Wallet {wallet.address} is linked")

    view = await step(ann, "/wallet", "Wallet:")
    assert wallet.address in view.text and "Hyperliquid" in view.text
    ask = await step(ann, "/unlink", "Unlink")
    await ann.press(ask, "Keep it")
    await ann.wait_for("stays linked")
    ask = await step(ann, "/unlink", "Unlink")
    await ann.press(ask, "Yes, unlink")
    await ann.wait_for("is unlinked")
    async with site.world.sessions() as s:
        row = (await s.execute(select(Wallet))).scalar_one()
    assert row.unlinked_at is not None
    assert "No wallet is linked" in (await step(ann, "/wallet", "wallet")).text


async def test_link_by_pasting_a_signature_in_chat(site: Site) -> None:
    bob = site.peer.user(12, "Bob", "en")
    await step(bob, "/link", "Send your wallet address")
    assert "not an Ethereum address" in (await step(bob, "0x1234", "Ethereum")).text
    wallet = Account.create()
    ask = await step(bob, wallet.address, "paste the signature")
    message = ask.text.split("here:\n\n", 1)[1]
    assert message.startswith(site.root.split("//")[1] + " wants you to sign in")
    assert "130 hex" in (await step(bob, "0xnothex", "signature")).text
    await step(bob, sign_text(message, wallet), f"Wallet {wallet.address} is linked")
    async with site.world.sessions() as s:
        assert (await s.execute(select(Wallet.address))).scalar_one() == wallet.address


async def test_mini_app_init_data_is_checked_with_the_bot_token(site: Site) -> None:
    carl = site.peer.user(13, "Carl", "en")
    await step(carl, "/start", "Welcome")
    now = int(site.world.clock[0].timestamp())  # the server's clock
    fields = {
        "auth_date": str(now),
        "query_id": "AAE",
        "user": json.dumps({"id": 13, "first_name": "Carl"}),
    }
    good = (
        "&".join(f"{k}={v}" for k, v in fields.items())
        + "&hash="
        + sign_init_data(fields, site.peer.token)
    )
    forged = (
        "&".join(f"{k}={v}" for k, v in fields.items())
        + "&hash="
        + sign_init_data(fields, "1:other")
    )
    stale_fields = fields | {"auth_date": str(now - 7200)}
    stale = (
        "&".join(f"{k}={v}" for k, v in stale_fields.items())
        + "&hash="
        + sign_init_data(stale_fields, site.peer.token)
    )
    wallet = Account.create()
    async with httpx.AsyncClient(base_url=site.root) as web:
        for bad in (forged, stale, "user=%7B%7D&hash=00"):
            r = await web.post("/api/siwe/nonce", json={"initData": bad, "address": wallet.address})
            assert r.status_code == 403 and r.json()["reason"] == "bad_init_data"
        issued = (
            await web.post("/api/siwe/nonce", json={"initData": good, "address": wallet.address})
        ).json()
        done = await web.post(
            "/api/siwe/verify",
            json={
                "token": issued["token"],
                "message": issued["message"],
                "signature": sign_text(issued["message"], wallet),
            },
        )
        assert done.status_code == 200
    await site.dispatcher.deliver_pending()
    await carl.wait_for("is linked")
