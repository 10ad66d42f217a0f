"""Going live, as a user does it: link a wallet, choose Live in /deploy, approve Maxxit's
agent key with the wallet's own signature (the connect page's endpoints), Hyperliquid
confirms it, the deployment goes live, and the next call trades on the user's account signed
by the agent key from the vault."""

from __future__ import annotations

import base64
import logging
import os
from decimal import Decimal

import httpx
import pytest
from eth_account import Account
from sqlalchemy import select

from bot import web_wallet
from bot.live_trading import signer_lookup
from bot.web import make_app
from engine.venues.hyperliquid import HyperliquidConfig, HyperliquidVenue
from engine.venues.routed import AccountRoutedVenue
from storage.models import AgentKey, Deployment, Position
from tests.chat_helpers import make_world, sign_text, text_of
from tests.peers.hyperliquid_api import HyperliquidPeer
from tests.peers.telegram_api import serve_app
from wallets.vault import MasterKey, Vault, load_agent


@pytest.fixture
async def peer():
    async with HyperliquidPeer(mids={"ETH": "2000", "BTC": "90000", "SOL": "150"}) as p:
        yield p


async def test_link_approve_deploy_live_and_trade_on_the_users_account(
    sessions, peer, caplog
) -> None:
    caplog.set_level(logging.DEBUG)  # every log line of the whole flow, for the leak check
    world = await make_world(sessions)
    master = base64.b64encode(os.urandom(32)).decode()
    vault = Vault(MasterKey.parse(master))
    services = world.bot.services
    services.vault, services.hyperliquid_url = vault, peer.base_url
    live = HyperliquidVenue(
        HyperliquidConfig(base_url=peer.base_url, timeout=3),
        signer_lookup(sessions, vault),
        prices=world.engine.prices,
    )
    await live.refresh_markets()
    world.engine.venues["HYPERLIQUID"] = AccountRoutedVenue(
        world.engine.venues["HYPERLIQUID"], live
    )
    wallet = Account.create()  # the user's own wallet: Maxxit never holds this key
    peer.fund(wallet.address, Decimal(5000))
    ann = world.person("Ann", 1)

    app = make_app(extra=web_wallet.routes(services))
    async with serve_app(app) as root, httpx.AsyncClient(base_url=root) as web:
        services.public_url = root
        # 1. link the wallet (the connect page's calls)
        link = text_of(await ann.say("/link"))
        token = link.split("t=")[1].split()[0]
        issued = (
            await web.post("/api/siwe/nonce", json={"token": token, "address": wallet.address})
        ).json()
        r = await web.post(
            "/api/siwe/verify",
            json={
                "token": token,
                "message": issued["message"],
                "signature": sign_text(issued["message"], wallet),
            },
        )
        assert r.status_code == 200
        await ann.say("/cancel")

        # 2. an agent on Hyperliquid, deployed live: approval comes first
        await ann.say("/create")
        for answer in (
            "Hawk",
            "@CryptoHawk",
            "HYPERLIQUID",
            "100",
            "5",
            "3",
            "none",
            "none",
            "ignore",
            "10",
        ):
            await ann.say(answer)
        await ann.choose(ann.last.replies[0], "Create")
        r = await ann.say("/deploy Hawk")
        assert "Paper (simulated money) or live" in text_of(r)
        r = await ann.choose(r.replies[0], "Live (Hyperliquid)")
        r = await ann.say("100")
        r = await ann.say("3")
        r = await ann.choose(r.replies[0], "Trade automatically")
        assert "live on your Hyperliquid account" in text_of(r)
        r = await ann.choose(r.replies[0], "Deploy")
        text = text_of(r)
        assert "approve Maxxit's trading key" in text
        url = next(w for w in text.split() if w.startswith(root))
        async with sessions() as s:
            key = (await s.execute(select(AgentKey))).scalar_one()
            assert (await s.execute(select(Deployment))).first() is None  # not live yet
        assert key.address in text and key.approved_at is None
        r = await ann.choose(r.replies[0], "Check approval")
        assert r.refused and "not" in (r.notice or "")

        # 3. the page: the wallet signs approveAgent; the server submits and confirms
        page_token = url.split("t=")[1].split("&")[0]
        req = (await web.post("/api/hyperliquid/approval", json={"token": page_token})).json()
        assert req["agent"] == key.address and req["account"] == wallet.address
        forged = dict(req["action"], agentAddress=Account.create().address)
        bad = await web.post(
            "/api/hyperliquid/approve",
            json={"token": page_token, "action": forged, "signature": "0x" + "11" * 65},
        )
        assert bad.json()["reason"] == "wrong_agent"
        signed = Account.sign_typed_data(wallet.key, full_message=req["typedData"])
        ok = await web.post(
            "/api/hyperliquid/approve",
            json={
                "token": page_token,
                "action": req["action"],
                "signature": signed.signature.to_0x_hex(),
            },
        )
        assert ok.status_code == 200 and ok.json() == {"approved": True}
        assert [a.address.lower() for a in peer.agents(wallet.address)] == [key.address.lower()]

    # 4. deploy again: live now
    r = await ann.say("/deploy Hawk")
    r = await ann.choose(r.replies[0], "Live (Hyperliquid)")
    await ann.say("100")
    await ann.say("3")
    r = await ann.choose(ann.last.replies[0], "Trade automatically")
    r = await ann.choose(r.replies[0], "Deploy")
    assert "is deployed" in text_of(r)
    async with sessions() as s:
        dep = (await s.execute(select(Deployment))).scalar_one()
    assert dep.mode == "live" and dep.account == wallet.address

    # 5. a call trades on the user's own Hyperliquid account, signed by the agent key
    await world.post("@CryptoHawk", "Long $ETH, breakout", "p1")
    async with sessions() as s:
        pos = (await s.execute(select(Position))).scalar_one()
    assert pos.account == wallet.address
    held = peer.positions(wallet.address)["ETH"]
    assert held.szi == pos.size > 0
    assert "LONG ETH" in text_of(await ann.say("/positions"))
    assert "Wallet:" in text_of(await ann.say("/wallet"))

    # no key material anywhere: not in a log line, not in anything the bot said
    async with sessions() as s:
        agent = await load_agent(s, vault, dep.user_id, "HYPERLIQUID")
    assert agent is not None
    secrets = [bytes(agent.key).hex(), "0x" + bytes(agent.key).hex(), master]
    logged = caplog.text + "\n".join(r.getMessage() for r in caplog.records)
    shown = "\n".join(ann.seen)
    for secret in secrets:
        assert secret not in logged and secret not in shown
