"""A funded Hyperliquid account with Maxxit's agent approved by the user's own signature,
on the local stand-in."""

from __future__ import annotations

import time
from dataclasses import dataclass
from decimal import Decimal

from eth_account import Account
from eth_account.signers.local import LocalAccount

from engine.prices import PriceBook
from engine.venues.hyperliquid import HyperliquidConfig, HyperliquidVenue
from engine.venues.hyperliquid_limits import WeightLimiter
from tests.peers.hyperliquid_api import HyperliquidPeer
from wallets import hyperliquid_agent


@dataclass
class Trader:
    user: LocalAccount  # the user's own wallet (never held by Maxxit in production)
    agent: LocalAccount  # the agent key Maxxit holds


async def approve(peer: HyperliquidPeer, user: LocalAccount, agent: LocalAccount) -> None:
    action = hyperliquid_agent.approve_action(agent.address, int(time.time() * 1000), False)
    signed = Account.sign_typed_data(user.key, full_message=hyperliquid_agent.typed_data(action))
    ok, answer = await hyperliquid_agent.submit_approval(
        peer.base_url, action, signed.signature.to_0x_hex()
    )
    assert ok, answer
    assert await hyperliquid_agent.is_approved(peer.base_url, user.address, agent.address)


async def funded_trader(
    peer: HyperliquidPeer, usdc: str = "10000", approved: bool = True
) -> Trader:
    trader = Trader(Account.create(), Account.create())
    peer.fund(trader.user.address, Decimal(usdc))
    if approved:
        await approve(peer, trader.user, trader.agent)
    return trader


def venue_for(
    peer: HyperliquidPeer,
    traders: list[Trader],
    prices: PriceBook | None = None,
    limiter: WeightLimiter | None = None,
) -> HyperliquidVenue:
    keys = {t.user.address.lower(): t.agent for t in traders}

    async def signer_for(account: str) -> LocalAccount | None:
        return keys.get(account.lower())

    return HyperliquidVenue(
        HyperliquidConfig(base_url=peer.base_url, timeout=3), signer_for, limiter, prices
    )
