"""The connect page's Ostium key rotation in headless Chromium: the link from the chat opens
the Ostium section, the user's wallet (a test wallet injected as `window.ethereum`) sends the
one transaction the page asks for, setDelegate(new key), to the local Ostium chain, and the
page waits until the server read the switch from the chain: done, the link spent."""

from __future__ import annotations

from sqlalchemy import select
from starlette.requests import Request
from starlette.responses import JSONResponse
from starlette.routing import Route

from bot import web_wallet
from bot.web import make_app
from storage.models import AgentKey, AuditLog
from storage.types import utcnow
from tests.ostium_helpers import sign_and_send
from tests.peers.ostium.peer import OstiumPeer
from tests.peers.telegram_api import serve_app
from tests.test_connect_page_browser import INJECTED, headless_chromium, pytestmark  # noqa: F401
from tests.test_ostium_key_rotation import rotation_asked
from wallets import siwe_link
from wallets.ostium_delegation import UnsignedTx


def sending_wallet(ostium: OstiumPeer, account) -> Route:  # type: ignore[no-untyped-def]
    """The browser wallet's eth_sendTransaction: signed by the user's key, sent to the chain."""

    async def rpc(request: Request) -> JSONResponse:
        body = await request.json()
        if body["method"] != "eth_sendTransaction":
            return JSONResponse({"error": f"unsupported {body['method']}"})
        [tx] = body["params"]
        assert tx["from"].lower() == account.address.lower()
        sign_and_send(ostium, account, UnsignedTx(tx["to"], tx["data"], int(tx["value"], 16)))
        return JSONResponse({"result": "0x" + "00" * 32})

    return Route("/test-wallet/rpc", rpc, methods=["POST"])


async def test_the_page_sends_set_delegate_and_waits_for_the_switch(sessions, ostium) -> None:
    asked = await rotation_asked(sessions, ostium)
    services, trader = asked.services, asked.trader
    async with sessions() as s, s.begin():
        token = await siwe_link.start_link(s, asked.user_id, utcnow())

    app = make_app(extra=[*web_wallet.routes(services), sending_wallet(ostium, trader.user)])
    async with serve_app(app) as root, headless_chromium() as browser:
        page = await browser.new_page(viewport={"width": 390, "height": 844})
        await page.add_init_script(INJECTED)
        await page.goto(f"{root}/connect?t={token}&ost=1")
        await page.click("#delegate")
        await page.locator("#oststatus.ok").wait_for(timeout=15_000)
        assert "the new key trades for you" in await page.inner_text("#oststatus")
        assert await page.inner_text("#ostagent") == asked.new_agent

    trading = ostium.contracts.ostium
    assert trading.functions.delegations(trader.user.address).call() == asked.new_agent
    async with sessions() as s:
        key = (await s.execute(select(AgentKey))).scalar_one()
        audit = (
            (await s.execute(select(AuditLog).where(AuditLog.action == "rotate_agent_key")))
            .scalars()
            .all()
        )
        assert await siwe_link.token_owner(s, token, utcnow()) is None  # spent
    assert key.address == asked.new_agent
    assert [(a.transport, a.details["old_agent"]) for a in audit] == [("web", asked.old_agent)]
