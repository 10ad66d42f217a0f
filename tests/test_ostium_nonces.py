"""Two replicas sending for one agent key at once: each transaction's nonce is claimed from the
shared database (engine/venues/ostium_nonces.py), so none replaces or refuses another, and
every order lands exactly once; the claims follow the chain when the key is used elsewhere and
give back a nonce that was never sent."""

from __future__ import annotations

import asyncio
from decimal import Decimal

from sqlalchemy import select

from engine.ingest import IncomingPost
from engine.prices import PriceTick
from engine.venues.base import OrderRequest
from engine.venues.ostium_nonces import NonceBook
from storage.enums import DeploymentMode
from storage.models import (
    Agent,
    Deployment,
    Order,
    Position,
    SignerNonce,
    Source,
    User,
    agent_sources,
)
from storage.types import utcnow
from tests.ostium_helpers import funded_trader, venue_for
from tests.peers.ostium.chain import CHAIN_ID
from tests.test_ostium_pipeline import live_engine


async def test_two_replicas_sending_for_one_signer_land_every_order_once(sessions, ostium) -> None:
    trader = funded_trader(ostium, usdc="10000")
    replicas = [venue_for(ostium, sessions, [trader]) for _ in range(2)]
    for venue in replicas:
        await venue.refresh_markets()
    account = trader.user.address
    sizes = {"BTC": "0.001", "ETH": "0.05", "SPX": "0.02"}  # ~$90, $100, $116 at 5x
    orders = [
        OrderRequest(f"0x{i:032x}", account, market, "long", Decimal(size), Decimal(5))
        for i, (market, size) in enumerate(list(sizes.items()) * 2, start=1)
    ]
    # both replicas at once, alternating: each reads the same chain nonce at the same time
    fills = await asyncio.gather(*(replicas[i % 2].place_order(o) for i, o in enumerate(orders)))
    assert sorted(f.client_order_id for f in fills) == sorted(o.client_order_id for o in orders)
    ostium_contract = ostium.contracts.ostium
    assert ostium_contract.functions.orderCounter().call() == len(orders)  # none twice
    assert len(ostium.open_trades(account)) == len(orders)  # none dropped
    # the agent key sent exactly one transaction an order, nonces 0..5 all used
    assert ostium.w3.eth.get_transaction_count(trader.agent.address) == len(orders)
    async with sessions() as s:
        row = (await s.execute(select(SignerNonce))).scalar_one()
    assert (row.signer, row.next_nonce) == (trader.agent.address.lower(), len(orders))


async def test_claims_follow_the_chain_and_take_back_an_unsent_nonce(sessions) -> None:
    book = NonceBook(sessions, CHAIN_ID)
    signer = "0x" + "ab" * 20
    assert [await book.claim(signer, 3) for _ in range(2)] == [3, 4]
    assert await book.claim(signer, 0) == 5  # the chain behind our claims: ours go on
    assert await book.claim(signer, 9) == 9  # the key used elsewhere: the chain's count
    await book.give_back(signer, 9, chain_pending=9)  # never broadcast, the last claimed
    assert await book.claim(signer, 9) == 9
    await book.claim(signer, 9)  # 10
    # 9 never went out but 10 did: the row is lowered to the chain's count, the gap refilled
    await book.give_back(signer, 9, chain_pending=9)
    assert await book.claim(signer, 9) == 9


async def _agents_of_one_user(sessions, account: str, markets: list[str]) -> None:
    """One user, one wallet (so one agent key), a pinned Ostium agent per market."""
    async with sessions() as s, s.begin():
        user = User(display_name="u", settings={})
        sources = [Source(kind="x", handle=f"@{m.lower()}") for m in markets]
        agents = [
            Agent(name=m, venue="OSTIUM", leverage=Decimal(5), stop_loss_pct=Decimal("0.05"))
            for m in markets
        ]
        s.add_all([user, *sources, *agents])
        await s.flush()
        links = zip(agents, sources, strict=True)
        await s.execute(
            agent_sources.insert(), [{"agent_id": a.id, "source_id": src.id} for a, src in links]
        )
        terms = {"mode": DeploymentMode.LIVE, "collateral_usd": Decimal(100)}
        s.add_all(
            Deployment(
                user_id=user.id, agent_id=a.id, leverage=Decimal(5), account=account, **terms
            )
            for a in agents
        )


async def test_two_engines_on_one_database_trading_for_one_key_land_every_order_once(
    sessions, ostium
) -> None:
    trader = funded_trader(ostium, usdc="10000")
    markets = ["BTC", "ETH", "XAU", "SPX"]
    await _agents_of_one_user(sessions, trader.user.address, markets)
    engines = []
    for _ in range(2):
        engine, _venue, prices = await live_engine(sessions, ostium, [trader])
        for market in markets:
            prices.update(PriceTick(utcnow(), market, ostium.pair(market).price))
        engines.append(engine)
    posts = [
        IncomingPost("x", f"@{m.lower()}", str(i), f"Long ${m} now", utcnow())
        for i, m in enumerate(markets)
    ]
    # the posts reach the two engines at once: each sends for the same agent key
    await asyncio.gather(*(engines[i % 2].ingest(p) for i, p in enumerate(posts)))
    async with sessions() as s:
        orders = (await s.execute(select(Order))).scalars().all()
        positions = (await s.execute(select(Position))).scalars().all()
    assert sorted((o.market, o.status) for o in orders) == sorted((m, "filled") for m in markets)
    assert sorted(p.market for p in positions) == sorted(markets)
    assert ostium.contracts.ostium.functions.orderCounter().call() == len(markets)
    assert len(ostium.open_trades(trader.user.address)) == len(markets)
    # every transaction the key sent is one of these orders or a stop set on its trade
    sent = ostium.w3.eth.get_transaction_count(trader.agent.address)
    async with sessions() as s:
        row = (await s.execute(select(SignerNonce))).scalar_one()
    assert row.next_nonce == sent
