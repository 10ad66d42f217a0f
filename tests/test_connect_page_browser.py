"""The connect page in headless Chromium (Debian's package), with a test wallet injected as
`window.ethereum` and backed by eth-account through a test endpoint: click, sign, linked, and
the chat says so."""

from __future__ import annotations

import base64
import contextlib
import json
import os
import shutil
from collections.abc import AsyncIterator
from typing import Any

import pytest
from eth_account import Account
from eth_account.messages import encode_defunct
from starlette.requests import Request
from starlette.responses import JSONResponse
from starlette.routing import Route

from bot import web_wallet
from bot.telegram import TelegramBot, TelegramTransport
from bot.telegram_limits import ChatRateLimiter
from bot.web import make_app
from engine.notify import Dispatcher
from tests.chat_helpers import make_world
from tests.peers.telegram_api import TelegramPeer, serve_app

CHROMIUM = shutil.which("chromium") or shutil.which("chromium-browser")
# CI installs chromium (.ci/run) and must run this test; elsewhere it may be missing
pytestmark = pytest.mark.skipif(
    CHROMIUM is None and os.environ.get("CI") != "true", reason="chromium is not installed"
)

# window.ethereum as a browser wallet provides it (EIP-1193), forwarding to our test wallet
INJECTED = """
window.ethereum = {
  isMetaMask: false,
  request: async ({ method, params }) => {
    const r = await fetch('/test-wallet/rpc', {
      method: 'POST', headers: {'Content-Type': 'application/json'},
      body: JSON.stringify({ method, params: params || [] }),
    });
    const body = await r.json();
    if (body.error) throw new Error(body.error);
    return body.result;
  },
};
"""


@contextlib.asynccontextmanager
async def headless_chromium() -> AsyncIterator[Any]:
    """Debian's chromium driven by Playwright (no browser download)."""
    from playwright.async_api import async_playwright

    async with async_playwright() as pw:
        browser = await pw.chromium.launch(
            executable_path=CHROMIUM, args=["--no-sandbox", "--disable-gpu"]
        )
        try:
            yield browser
        finally:
            await browser.close()


def wallet_endpoint(account, chain_id: int = 1) -> Route:
    async def rpc(request: Request) -> JSONResponse:
        body = await request.json()
        method, params = body["method"], body["params"]
        if method == "eth_requestAccounts":
            return JSONResponse({"result": [account.address]})
        if method == "eth_chainId":
            return JSONResponse({"result": hex(chain_id)})
        if method == "eth_signTypedData_v4":
            address, payload = params
            assert address.lower() == account.address.lower()
            signed = Account.sign_typed_data(account.key, full_message=json.loads(payload))
            return JSONResponse({"result": signed.signature.to_0x_hex()})
        if method == "personal_sign":
            data, address = params
            assert address.lower() == account.address.lower()
            signed = account.sign_message(encode_defunct(hexstr=data))
            return JSONResponse({"result": signed.signature.to_0x_hex()})
        return JSONResponse({"error": f"unsupported {method}"})

    return Route("/test-wallet/rpc", rpc, methods=["POST"])


async def test_connect_page_links_a_wallet_in_headless_chromium(sessions) -> None:
    world = await make_world(sessions)
    wallet = Account.create()
    async with TelegramPeer() as peer:
        services = world.bot.services
        app = make_app(extra=[*web_wallet.routes(services, peer.token), wallet_endpoint(wallet)])
        async with serve_app(app) as root:
            services.public_url = root
            api = peer.base_url.removesuffix("/bot")
            bot = TelegramBot(peer.token, world.bot, api_url=api, limiter=ChatRateLimiter(30, 0.01))
            await bot.start(poll_timeout=1)
            try:
                ann = peer.user(21, "Ann", "en")
                await ann.send("/link")
                intro = await ann.wait_for("Link your wallet")
                url = next(w for w in intro.text.split() if w.startswith(root))
                async with headless_chromium() as browser:
                    page = await browser.new_page(viewport={"width": 390, "height": 844})
                    await page.add_init_script(INJECTED)
                    await page.goto(url)
                    await page.click("#connect")
                    status = page.locator("#status.ok")
                    await status.wait_for(timeout=10_000)
                    assert wallet.address in await status.inner_text()
                    # a phone without a browser wallet is pointed to the chat path
                    bare = await browser.new_page(viewport={"width": 390, "height": 844})
                    await bare.goto(url)
                    await bare.click("#connect")
                    await bare.locator("#manual").wait_for(state="visible", timeout=5_000)
                    assert "No browser wallet" in await bare.inner_text("#status")
                dispatcher = Dispatcher(sessions, TelegramTransport(bot.bot, sessions))
                await dispatcher.deliver_pending()
                await ann.wait_for(f"Wallet {wallet.address} is linked")
            finally:
                await bot.stop()


async def test_connect_page_links_then_approves_the_hyperliquid_agent(sessions) -> None:
    from tests.peers.hyperliquid_api import HyperliquidPeer
    from wallets.vault import MasterKey, Vault

    world = await make_world(sessions)
    wallet = Account.create()
    services = world.bot.services
    services.vault = Vault(MasterKey.parse(base64.b64encode(os.urandom(32)).decode()))
    async with HyperliquidPeer() as hl:
        services.hyperliquid_url = hl.base_url
        hl.fund(wallet.address, 1000)
        app = make_app(extra=[*web_wallet.routes(services), wallet_endpoint(wallet)])
        async with serve_app(app) as root:
            services.public_url = root
            ann = world.person("Ann", 1)
            link = (await ann.say("/link")).replies[0].text
            url = next(w for w in link.split() if w.startswith(root)) + "&hl=1"
            async with headless_chromium() as browser:
                page = await browser.new_page(viewport={"width": 390, "height": 844})
                await page.add_init_script(INJECTED)
                await page.goto(url)
                await page.click("#connect")
                await page.locator("#status.ok").wait_for(timeout=10_000)
                await page.click("#approve")
                await page.locator("#hlstatus.ok").wait_for(timeout=10_000)
                agent = await page.inner_text("#agent")
        assert [a.address.lower() for a in hl.agents(wallet.address)] == [agent.lower()]
        assert "approved" in (await ann.say("/wallet")).replies[0].text
