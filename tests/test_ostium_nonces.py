"""Two replicas sending for one agent key at once: each transaction's nonce is claimed from the
shared database (engine/venues/ostium_nonces.py), so none replaces or refuses another, and
every order lands exactly once; the claims follow the chain when the key is used elsewhere and
give back a nonce that was never sent."""

from __future__ import annotations

import asyncio
from decimal import Decimal

from sqlalchemy import select

from engine.venues.base import OrderRequest
from engine.venues.ostium_nonces import NonceBook
from storage.models import SignerNonce
from tests.ostium_helpers import funded_trader, venue_for
from tests.peers.ostium.chain import CHAIN_ID


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
