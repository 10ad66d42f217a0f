"""The connect page's Ostium section in headless Chromium, against the local Ostium chain: the
page shows the delegation state, and the injected wallet (EIP-1193, signing with the user's
test key and sending to anvil) sends the setDelegate and USDC approve transactions it built;
afterwards /wallet shows the delegation active, and the page says so too."""

from __future__ import annotations

import base64
import os
from datetime import UTC, datetime

from sqlalchemy import select
from starlette.requests import Request
from starlette.responses import JSONResponse
from starlette.routing import Route

from bot import web_wallet
from bot.web import make_app
from storage.models import User
from tests.chat_helpers import make_world, text_of
from tests.ostium_helpers import contracts, funded_trader, sign_and_send
from tests.peers.ostium.chain import CHAIN_ID
from tests.peers.telegram_api import serve_app
from tests.test_connect_page_browser import INJECTED, headless_chromium, pytestmark  # noqa: F401
from wallets import ostium_delegation, siwe_link
from wallets.ostium_delegation import DelegationReader, UnsignedTx
from wallets.vault import MasterKey, Vault


def sending_wallet(ostium, account) -> Route:
    """The browser wallet: eth_sendTransaction signed with the user's key, sent to anvil."""
    sent: list[str] = []

    async def rpc(request: Request) -> JSONResponse:
        body = await request.json()
        method, params = body["method"], body["params"]
        if method in ("eth_requestAccounts", "eth_accounts"):
            return JSONResponse({"result": [account.address]})
        if method == "eth_chainId":
            return JSONResponse({"result": hex(CHAIN_ID)})
        if method == "eth_sendTransaction":
            [tx] = params
            assert tx["from"].lower() == account.address.lower()
            sign_and_send(ostium, account, UnsignedTx(tx["to"], tx["data"], int(tx["value"], 16)))
            sent.append(tx["data"][:10])
            return JSONResponse({"result": "0x" + "00" * 32})
        return JSONResponse({"error": f"unsupported {method}"})

    rpc.sent = sent  # type: ignore[attr-defined]
    return Route("/test-wallet/rpc", rpc, methods=["POST"])


async def test_connect_page_sets_up_the_ostium_delegation_in_chromium(sessions, ostium) -> None:
    world = await make_world(sessions)
    services = world.bot.services
    services.vault = Vault(MasterKey.parse(base64.b64encode(os.urandom(32)).decode()))
    services.ostium = DelegationReader(ostium.rpc_url, contracts(ostium))
    trader = funded_trader(ostium, usdc="1500", delegated=False)
    ann = world.person("Ann", 1)
    await ann.say("/start")
    async with sessions() as s, s.begin():
        user_id = (await s.execute(select(User.id))).scalar_one()
        await siwe_link._link(s, user_id, trader.user.address, CHAIN_ID, datetime.now(UTC))
    wallet = sending_wallet(ostium, trader.user)
    app = make_app(extra=[*web_wallet.routes(services), wallet])
    async with serve_app(app) as root:
        services.public_url = root
        before = text_of(await ann.say("/wallet"))
        assert "Ostium: not set up" in before
        url = next(w for w in before.split() if w.startswith(root) and "ost=1" in w)
        async with headless_chromium() as browser:
            page = await browser.new_page(viewport={"width": 390, "height": 844})
            await page.add_init_script(INJECTED)
            await page.goto(url)
            state = page.locator("#oststate")
            await state.filter(has_text="Delegation:").wait_for(timeout=10_000)
            shown = await state.inner_text()
            assert "not set up" in shown and "set delegate, approve usdc" in shown
            agent = await page.inner_text("#ostagent")
            await page.click("#delegate")
            await page.locator("#oststatus.ok").wait_for(timeout=20_000)
            assert "Delegation: active" in await state.inner_text()
    # the two transactions the page built, sent by the user's own wallet
    trading = ostium.contracts.ostium
    assert (
        wallet.endpoint.sent
        == [  # type: ignore[attr-defined]
            trading.encode_abi("setDelegate", [agent])[:10],
            ostium.contracts.usdc.encode_abi("approve", [agent, 0])[:10],
        ]
    )
    chain = ostium_delegation.delegation_state(ostium.w3, contracts(ostium), trader.user.address)
    assert chain.delegated_to(agent)
    after = text_of(await ann.say("/wallet"))
    assert f"Maxxit's key {agent} trades for you" in after
    assert "USDC approved: 1,500.00" in after
