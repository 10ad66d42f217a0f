"""The local Ostium holds the unmodified ostium-python-sdk to Ostium's behaviour: a market order
is only a price request until the keeper fills it; a reverted order does not raise (status 0,
no order id); the subgraph answers the SDK's own queries; the committed bytecode is built from
the committed source."""

from __future__ import annotations

import asyncio
import hashlib
from decimal import Decimal

from eth_account import Account
from ostium_python_sdk import OstiumSDK
from ostium_python_sdk.config import NetworkConfig

from tests.peers.ostium.chain import ARTIFACTS, artifacts
from tests.peers.ostium.peer import OstiumPeer


def sdk_for(peer: OstiumPeer, key: str) -> OstiumSDK:
    network = NetworkConfig(peer.graph_url, peer.addresses(), is_testnet=False)
    sdk = OstiumSDK(network, key, peer.rpc_url, submit_rpc_url=peer.rpc_url)
    sdk.price.base_url = peer.base_url
    return sdk


def test_the_committed_bytecode_is_built_from_the_committed_source() -> None:
    source = (ARTIFACTS.parent / "MockOstium.sol").read_bytes()
    assert artifacts()["source_sha256"] == hashlib.sha256(source).hexdigest(), (
        "MockOstium.sol changed: rebuild with `node compile.mjs <node_modules of solc@0.8.30>`"
    )


async def test_an_order_waits_for_the_keeper_then_fills_and_closes(ostium: OstiumPeer) -> None:
    user = Account.create()
    ostium.fund(user.address, "1000")
    sdk = await asyncio.to_thread(sdk_for, ostium, user.key.hex())
    pairs = await sdk.subgraph.get_pairs()
    assert [p["from"] for p in pairs] == ["BTC", "ETH", "XAU", "EUR", "SPX"]
    assert await sdk.price.get_price("XAU", "USD") == (2000.0, True, False)

    ostium.keeper.hold = True
    params = {"collateral": 100, "leverage": 5, "asset_type": 2, "direction": True}
    sent = await asyncio.to_thread(sdk.ostium.perform_trade, params, 2000)
    assert sent["receipt"].status == 1 and sent["order_id"] == 1
    assert await sdk.subgraph.get_open_trades(user.address.lower()) == []  # only requested
    assert ostium.usdc_balance(user.address) == Decimal(900)  # collateral taken already

    ostium.keeper.hold = False
    settled = await sdk.ostium.track_order_and_trade(sdk.subgraph, 1, polling_interval=0.05)
    assert settled["order"]["source"] == "chain" and not settled["order"]["isCancelled"]
    trades = await sdk.subgraph.get_open_trades(user.address.lower())
    assert [(t["openPrice"], t["collateral"]) for t in trades] == [(str(2000 * 10**18), "99800000")]

    ostium.set_price("XAU", "2100")
    closing = await asyncio.to_thread(sdk.ostium.close_trade, 2, 0, 2100)
    settled = await sdk.ostium.track_order_and_trade(
        sdk.subgraph, closing["order_id"], polling_interval=0.05
    )
    assert settled["trade"]["isOpen"] is False
    # 100 in, 0.2 opening fee (0.04 % of 500), +25 profit, rollover of the blocks it was open
    assert Decimal(900) + Decimal("124.8") - ostium.usdc_balance(user.address) < Decimal("0.01")


async def test_a_reverted_order_does_not_raise_in_the_sdk(ostium: OstiumPeer) -> None:
    user = Account.create()
    ostium.fund(user.address, "1000")
    sdk = await asyncio.to_thread(sdk_for, ostium, user.key.hex())
    below_minimum = {"collateral": 10, "leverage": 5, "asset_type": 2, "direction": True}
    sent = await asyncio.to_thread(sdk.ostium.perform_trade, below_minimum, 2000)
    assert sent["receipt"].status == 0 and sent["order_id"] is None
    assert ostium.usdc_balance(user.address) == Decimal(1000)
