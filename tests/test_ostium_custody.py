"""Custody by delegation: the agent key Maxxit holds trades for the user's wallet through
Ostium's delegatedAction and can never move the user's USDC anywhere: not by transferFrom, not
by smuggling a token call through delegatedAction, not by taking over the delegation, not with
the SDK's withdraw; a delegated close pays the trader. The user's wallet sets it up and revokes
it with the transactions wallets/ostium_delegation.py builds."""

from __future__ import annotations

import asyncio
from decimal import Decimal

import pytest
from eth_account import Account

from engine.venues.base import OrderRequest, VenueRejected
from tests.ostium_helpers import contracts, funded_trader, sign_and_send, venue_for
from tests.peers.ostium.chain import send
from tests.peers.ostium.peer import OstiumPeer
from tests.test_ostium_peer import sdk_for
from wallets import ostium_delegation

E6 = 10**6


def status_of(peer: OstiumPeer, signer, call) -> int:
    return int(send(peer.w3, signer, call)["status"])


async def test_the_agent_key_cannot_move_the_users_usdc(sessions, ostium) -> None:
    trader = funded_trader(ostium, usdc="1000")
    user, agent = trader.user.address, trader.agent
    usdc, trading = ostium.contracts.usdc, ostium.contracts.ostium
    thief = Account.create().address

    # the allowance is Ostium's trading storage's, not the agent's
    assert status_of(ostium, agent, usdc.functions.transferFrom(user, thief, 10 * E6)) == 0
    # a token call through delegatedAction runs on Ostium's contract, which has no such call
    smuggled = usdc.encode_abi("transfer", [thief, 10 * E6])
    assert status_of(ostium, agent, trading.functions.delegatedAction(user, smuggled)) == 0
    steal_from_storage = usdc.encode_abi("transferFrom", [user, thief, 10 * E6])
    assert (
        status_of(ostium, agent, trading.functions.delegatedAction(user, steal_from_storage)) == 0
    )
    # nor can it hand the delegation to another key, or drop the user's
    other = trading.encode_abi("setDelegate", [thief])
    assert status_of(ostium, agent, trading.functions.delegatedAction(user, other)) == 0
    revoke = trading.encode_abi("removeDelegate", [])
    assert status_of(ostium, agent, trading.functions.delegatedAction(user, revoke)) == 0
    assert trading.functions.delegations(user).call() == agent.address

    # the SDK's withdraw, with the agent key, sends the signer's own USDC: it has none of the
    # user's
    sdk = await asyncio.to_thread(sdk_for, ostium, agent.key.to_0x_hex())
    withdrawn = await asyncio.to_thread(sdk.ostium.withdraw, 10, thief)
    assert withdrawn["status"] == 0

    # a trade opened and closed by the agent pays the trader, never the agent
    venue = venue_for(ostium, sessions, [trader])
    await venue.refresh_markets()
    await venue.place_order(
        OrderRequest("0x" + "a" * 32, user, "XAU", "long", Decimal("0.25"), Decimal(5))
    )
    ostium.set_price("XAU", "2100")
    await venue.place_order(
        OrderRequest(
            "0x" + "b" * 32, user, "XAU", "long", Decimal("0.25"), Decimal(5), reduce_only=True
        )
    )
    assert ostium.usdc_balance(thief) == 0 and ostium.usdc_balance(agent.address) == 0
    assert ostium.usdc_balance(user) > Decimal(1000)


async def test_the_user_sets_up_and_revokes_the_delegation(sessions, ostium) -> None:
    trader = funded_trader(ostium, usdc="500", delegated=False)
    where = contracts(ostium)
    before = ostium_delegation.delegation_state(ostium.w3, where, trader.user.address)
    assert (before.delegate, before.allowance, before.balance) == (None, 0, Decimal(500))
    assert not before.delegated_to(trader.agent.address)

    for tx in ostium_delegation.setup_txs(where, trader.agent.address, Decimal(300)):
        sign_and_send(ostium, trader.user, tx)
    after = ostium_delegation.delegation_state(ostium.w3, where, trader.user.address)
    assert after.delegated_to(trader.agent.address) and after.allowance == Decimal(300)

    sign_and_send(ostium, trader.user, ostium_delegation.remove_delegate_tx(where))
    assert (
        ostium_delegation.delegation_state(ostium.w3, where, trader.user.address).delegate is None
    )
    venue = venue_for(ostium, sessions, [trader])
    await venue.refresh_markets()
    with pytest.raises(VenueRejected) as refused:
        await venue.place_order(
            OrderRequest(
                "0x" + "c" * 32, trader.user.address, "XAU", "long", Decimal("0.25"), Decimal(5)
            )
        )
    assert refused.value.reason == "delegation_missing"
