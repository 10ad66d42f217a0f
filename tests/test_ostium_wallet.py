"""/wallet and the connect page for Ostium: the delegation state read from the chain, and the
transactions the user's own wallet sends (setDelegate to Maxxit's vault key, approve USDC to
Ostium's trading storage), served by the connect page's API; once sent, /wallet says so and
the vault's key trades for the wallet through delegatedAction."""

from __future__ import annotations

import base64
import os
from datetime import UTC, datetime
from decimal import Decimal

import httpx
from sqlalchemy import select

from bot import web_wallet
from bot.ostium_trading import signer_lookup
from bot.web import make_app
from engine.venues.base import OrderRequest
from storage.models import User
from tests.chat_helpers import make_world, text_of
from tests.ostium_helpers import contracts, funded_trader, sign_and_send, venue_for
from tests.peers.telegram_api import serve_app
from wallets import ostium_delegation, siwe_link
from wallets.ostium_delegation import DelegationReader, UnsignedTx
from wallets.vault import MasterKey, Vault


async def test_wallet_shows_the_delegation_and_the_page_builds_it(sessions, ostium) -> None:
    world = await make_world(sessions)
    services = world.bot.services
    vault = Vault(MasterKey.parse(base64.b64encode(os.urandom(32)).decode()))
    services.vault = vault
    services.ostium = DelegationReader(ostium.rpc_url, contracts(ostium))
    trader = funded_trader(ostium, usdc="1500", delegated=False)  # its agent is not used
    ann = world.person("Ann", 1)
    await ann.say("/start")
    async with sessions() as s, s.begin():
        user_id = (await s.execute(select(User.id))).scalar_one()
        await siwe_link._link(s, user_id, trader.user.address, 42161, datetime.now(UTC))

    before = text_of(await ann.say("/wallet"))
    assert "Ostium: not set up" in before and "ost=1" in before
    token = before.split("?t=")[1].split("&")[0]

    app = make_app(extra=web_wallet.routes(services))
    async with serve_app(app) as root, httpx.AsyncClient(base_url=root) as web:
        refused = await web.post("/api/ostium/delegation", json={"token": "forged"})
        assert refused.status_code == 403
        answer = await web.post("/api/ostium/delegation", json={"token": token})
        asked = answer.json()
        assert answer.status_code == 200, asked
    assert asked["account"] == trader.user.address and not asked["delegated"]
    purposes = [t["purpose"] for t in asked["transactions"]]
    assert purposes == ["ostium_set_delegate", "ostium_approve_usdc"]
    for tx in asked["transactions"]:  # what the page asks the user's wallet to send
        sign_and_send(ostium, trader.user, UnsignedTx(tx["to"], tx["data"], int(tx["value"], 16)))

    after = text_of(await ann.say("/wallet"))
    assert f"Maxxit's key {asked['agent']} trades for you" in after
    assert "USDC approved: 1,500.00" in after
    state = ostium_delegation.delegation_state(ostium.w3, contracts(ostium), trader.user.address)
    assert state.delegated_to(asked["agent"])

    # the vault's key now trades for the wallet (and only through delegation); it pays gas
    # in ETH on Arbitrum, which Maxxit keeps it funded with
    ostium.fund(asked["agent"], "0")
    venue = venue_for(ostium, sessions, [])
    venue.signer_for = signer_lookup(sessions, vault)
    await venue.refresh_markets()
    fill = await venue.place_order(
        OrderRequest(
            "0x" + "d" * 32, trader.user.address, "XAU", "long", Decimal("0.25"), Decimal(5)
        )
    )
    assert fill.size == Decimal("0.25")
    assert ostium.usdc_balance(trader.user.address) == Decimal(1400)
