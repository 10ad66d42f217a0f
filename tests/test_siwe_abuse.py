"""The sign-in endpoints under abuse, over HTTP against our own web server: a token hammered
for nonces writes only what its limit allows and the rest get 429 with Retry-After; two
verifies of one link token at once link exactly once (SQLite and PostgreSQL); a used or
expired token opens nothing, the Hyperliquid endpoints included; a message signed for another
page is refused; the purge deletes what expired and nothing else."""

from __future__ import annotations

import asyncio
import base64
import os
from collections.abc import AsyncIterator
from dataclasses import dataclass
from datetime import timedelta

import httpx
import pytest
from eth_account import Account
from sqlalchemy import func, select

from bot import abuse, web_wallet
from bot.web import make_app
from bot.web_limits import WebLimits
from handlers.base import Services
from handlers.wallet import siwe_config
from storage.models import SiweNonce, Wallet
from tests.chat_helpers import World, make_world, sign_text, text_of
from tests.peers.telegram_api import serve_app
from wallets import siwe_link
from wallets.vault import MasterKey, Vault


@dataclass
class Site:
    world: World
    web: httpx.AsyncClient
    services: Services


@pytest.fixture
async def site(sessions, peer) -> AsyncIterator[Site]:
    world = await make_world(sessions)
    services = world.bot.services
    services.vault = Vault(MasterKey.parse(base64.b64encode(os.urandom(32)).decode()))
    services.hyperliquid_url = peer.base_url
    app = make_app(extra=web_wallet.routes(services, limits=WebLimits()))  # the defaults
    async with serve_app(app) as root, httpx.AsyncClient(base_url=root) as web:
        services.public_url = root
        yield Site(world, web, services)


async def link_token(site: Site, uid: int = 1) -> str:
    text = text_of(await site.world.person(f"U{uid}", uid).say("/link"))
    return text.split("t=")[1].split()[0]


async def nonce_rows(site: Site, token: str) -> int:
    async with site.world.sessions() as s:
        return (
            await s.execute(select(func.count(SiweNonce.id)).where(SiweNonce.link_token == token))
        ).scalar_one()


async def test_500_nonce_requests_on_one_token_write_only_the_allowed_rows(site: Site) -> None:
    token = await link_token(site)
    wallet = Account.create()
    body = {"token": token, "address": wallet.address, "chainId": 1}
    codes: list[int] = []
    retry_after: set[str] = set()
    for _ in range(500):
        r = await site.web.post("/api/siwe/nonce", json=body)
        codes.append(r.status_code)
        if r.status_code == 429:
            retry_after.add(r.headers["Retry-After"])
            assert r.json()["reason"] == "too_many_requests"
    allowed = WebLimits().per_token.amount  # 10 per 10 minutes
    assert codes.count(200) == allowed and codes.count(429) == 500 - allowed
    assert all(int(v) > 0 for v in retry_after)
    assert await nonce_rows(site, token) == 1 + allowed  # /link's own row and the nonces


async def test_one_client_ip_is_limited_across_tokens(site: Site) -> None:
    tokens = [await link_token(site, uid) for uid in range(1, 9)]
    codes = []
    for i in range(80):
        r = await site.web.post(
            "/api/siwe/nonce", json={"token": tokens[i % 8], "address": Account.create().address}
        )
        codes.append(r.status_code)
    assert codes.count(200) == WebLimits().per_ip.amount  # 60 a minute from one address
    assert set(codes[60:]) == {429}


async def _signed(site: Site, token: str, wallet) -> dict:  # type: ignore[no-untyped-def]
    """What the connect page sends to verify: a nonce's message, signed by the wallet."""
    issued = (
        await site.web.post("/api/siwe/nonce", json={"token": token, "address": wallet.address})
    ).json()
    message = issued["message"]
    return {"token": token, "message": message, "signature": sign_text(message, wallet)}


@pytest.mark.parametrize("same", [False, True], ids=["two-nonces", "one-message-twice"])
async def test_two_concurrent_verifies_of_one_link_token_link_exactly_once(
    site: Site, same: bool
) -> None:
    token = await link_token(site)
    first = await _signed(site, token, Account.create())
    # two messages of one link (say, two wallets of the same person), or one message twice
    second = first if same else await _signed(site, token, Account.create())
    results = await asyncio.gather(
        site.web.post("/api/siwe/verify", json=first),
        site.web.post("/api/siwe/verify", json=second),
    )
    codes = sorted(r.status_code for r in results)
    assert codes == [200, 400], [r.text for r in results]
    loser = next(r for r in results if r.status_code == 400)
    assert loser.json()["reason"] in ("link_used", "nonce_used")
    async with site.world.sessions() as s:
        linked = (await s.execute(select(Wallet))).scalars().all()
    assert len(linked) == 1


async def test_a_used_link_token_opens_nothing_the_hyperliquid_endpoints_included(
    site: Site,
) -> None:
    token = await link_token(site)
    wallet = Account.create()
    # while the token is valid the approval endpoint answers
    fresh = await site.web.post("/api/hyperliquid/approval", json={"token": token})
    assert fresh.status_code == 400 and fresh.json()["reason"] == "no_wallet"
    body = await _signed(site, token, wallet)
    done = await site.web.post("/api/siwe/verify", json=body)
    assert done.status_code == 200
    handed = done.json()["token"]  # the page's next step gets a token of its own
    assert handed != token
    for path, payload in (
        ("/api/hyperliquid/approval", {"token": token}),
        ("/api/hyperliquid/approve", {"token": token, "action": {}, "signature": "0x"}),
    ):
        r = await site.web.post(path, json=payload)
        assert r.status_code == 403 and r.json()["reason"] == "link_expired", path
    again = await site.web.post(
        "/api/siwe/nonce", json={"token": token, "address": Account.create().address}
    )
    assert again.status_code == 400 and again.json()["reason"] == "link_used"
    # the handed-over token works for the approval step
    ok = await site.web.post("/api/hyperliquid/approval", json={"token": handed})
    assert ok.status_code == 200 and ok.json()["account"] == wallet.address


async def test_an_expired_link_token_opens_nothing(site: Site) -> None:
    token = await link_token(site)
    site.world.advance(siwe_link.LINK_TTL.total_seconds() + 1)
    r = await site.web.post("/api/hyperliquid/approval", json={"token": token})
    assert r.status_code == 403
    r = await site.web.post(
        "/api/siwe/nonce", json={"token": token, "address": Account.create().address}
    )
    assert r.status_code == 403 and r.json()["reason"] == "link_expired"


async def test_a_message_signed_for_another_page_is_refused(site: Site) -> None:
    token = await link_token(site)
    wallet = Account.create()
    issued = (
        await site.web.post("/api/siwe/nonce", json={"token": token, "address": wallet.address})
    ).json()
    config = siwe_config(site.services)
    page = f"{config.uri}"
    forged = issued["message"].replace(f"URI: {page}", "URI: https://evil.example/connect")
    assert forged != issued["message"]
    r = await site.web.post(
        "/api/siwe/verify",
        json={"token": token, "message": forged, "signature": sign_text(forged, wallet)},
    )
    assert r.status_code == 400 and r.json()["reason"] == "wrong_uri"
    # the genuine message still links: the refusal changed nothing
    r = await site.web.post(
        "/api/siwe/verify",
        json={
            "token": token,
            "message": issued["message"],
            "signature": sign_text(issued["message"], wallet),
        },
    )
    assert r.status_code == 200


async def test_the_purge_removes_expired_nonces_and_tokens_only(site: Site) -> None:
    old = await link_token(site, 1)
    await site.web.post("/api/siwe/nonce", json={"token": old, "address": Account.create().address})
    site.world.advance(siwe_link.LINK_TTL.total_seconds() + 1)
    current = await link_token(site, 2)
    await site.web.post(
        "/api/siwe/nonce", json={"token": current, "address": Account.create().address}
    )
    assert await nonce_rows(site, old) == 2 and await nonce_rows(site, current) == 2
    assert await abuse.purge(site.world.sessions, site.world.engine) == 2
    assert await nonce_rows(site, old) == 0 and await nonce_rows(site, current) == 2
    site.world.advance(timedelta(minutes=16).total_seconds())
    assert await abuse.purge(site.world.sessions, site.world.engine) == 2
    assert await nonce_rows(site, current) == 0


class _NotOurs:
    """Another replica holds every singleton job."""

    replica_id = "other"

    def runs(self, job: str) -> bool:
        return False


async def test_the_purge_is_a_scheduled_singleton_job(site: Site) -> None:
    from apscheduler.schedulers.asyncio import AsyncIOScheduler

    from bot.replicas import SINGLETON_JOBS
    from bot.settings import Settings

    assert abuse.PURGE_JOB in SINGLETON_JOBS
    scheduler = AsyncIOScheduler()
    settings = Settings(_env_file=None, purge_seconds=120)  # type: ignore[call-arg]
    abuse.schedule_purge(scheduler, settings, site.world.sessions, site.world.engine)
    job = scheduler.get_job(abuse.PURGE_JOB)
    assert job is not None and job.trigger.interval == timedelta(seconds=120)

    token = await link_token(site)
    site.world.advance(siwe_link.LINK_TTL.total_seconds() + 1)
    engine = site.world.engine
    mine = engine.ownership
    engine.ownership = _NotOurs()  # type: ignore[assignment]
    try:
        assert await abuse.purge(site.world.sessions, engine) == 0  # another replica purges
    finally:
        engine.ownership = mine
    assert await nonce_rows(site, token) == 1
    assert await abuse.purge(site.world.sessions, engine) == 1
