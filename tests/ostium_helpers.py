"""A funded Ostium trader whose own wallet made Maxxit's agent key its delegate and approved
USDC to Ostium's trading storage (the transactions wallets/ostium_delegation.py builds for the
connect page, signed by the user's key), and the Ostium venue on the local stand-in."""

from __future__ import annotations

from dataclasses import dataclass
from decimal import Decimal

from eth_account import Account
from eth_account.signers.local import LocalAccount
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from engine.prices import PriceBook
from engine.venues.ostium import OstiumConfig, OstiumVenue
from engine.venues.ostium_requests import RequestJournal
from tests.peers.ostium.chain import CHAIN_ID
from tests.peers.ostium.peer import OstiumPeer
from wallets import ostium_delegation


@dataclass
class Trader:
    user: LocalAccount  # the user's own wallet (never held by Maxxit in production)
    agent: LocalAccount  # the agent key Maxxit holds


def contracts(peer: OstiumPeer) -> ostium_delegation.Contracts:
    a = peer.addresses()
    return ostium_delegation.Contracts(a["trading"], a["tradingStorage"], a["usdc"])


def sign_and_send(peer: OstiumPeer, user: LocalAccount, tx: ostium_delegation.UnsignedTx) -> None:
    """What the user's wallet does with a transaction the connect page hands it."""
    w3 = peer.w3
    signed = user.sign_transaction(
        {
            "to": w3.to_checksum_address(tx.to),
            "data": tx.data,
            "value": tx.value,
            "nonce": w3.eth.get_transaction_count(user.address),
            "gas": 500_000,
            "maxFeePerGas": 0,
            "maxPriorityFeePerGas": 0,
            "chainId": CHAIN_ID,
        }
    )
    receipt = w3.eth.wait_for_transaction_receipt(
        w3.eth.send_raw_transaction(signed.raw_transaction)
    )
    assert receipt.status == 1, tx.purpose


def funded_trader(
    peer: OstiumPeer, usdc: str = "10000", delegated: bool = True, approved: str = "10000"
) -> Trader:
    trader = Trader(Account.create(), Account.create())
    peer.fund(trader.user.address, usdc)
    peer.fund(trader.agent.address, "0")  # gas money only
    if delegated:
        for tx in ostium_delegation.setup_txs(
            contracts(peer), trader.agent.address, Decimal(approved)
        ):
            sign_and_send(peer, trader.user, tx)
    return trader


def venue_for(
    peer: OstiumPeer,
    sessions: async_sessionmaker[AsyncSession],
    traders: list[Trader],
    prices: PriceBook | None = None,
    fill_wait: float = 5.0,
    stuck_after: float = 120.0,
) -> OstiumVenue:
    keys = {t.user.address.lower(): t.agent for t in traders}

    async def signer_for(account: str) -> LocalAccount | None:
        return keys.get(account.lower())

    config = OstiumConfig(
        rpc_url=peer.rpc_url,
        submit_rpc_url=peer.rpc_url,
        graph_url=peer.graph_url,
        price_url=peer.base_url,
        contracts=peer.addresses(),
        fill_wait=fill_wait,
        poll_interval=0.05,
        stuck_after=stuck_after,
    )
    return OstiumVenue(config, signer_for, RequestJournal(sessions), prices)
