"""Ostium custody by delegation: the user's own wallet (or their Safe, through a Safe
transaction they sign in the Safe app) sends two transactions, built here for the connect page:

1. `trading.setDelegate(agent)`: Maxxit's agent key (in the vault) may act for the trader
   through `delegatedAction(trader, call)`, which Ostium runs as the trader. Ostium refuses
   `setDelegate` / `removeDelegate` from a delegate, and every trading call pays out only to
   the trader, so the agent key can open, close and move TP/SL, never withdraw.
2. `usdc.approve(tradingStorage, amount)`: Ostium may take collateral for the trades.

`delegation_state` reads both back from the chain: the state /wallet shows. Revoking is
`trading.removeDelegate()` from the user's wallet (built here too). The calldata is encoded
with the ABIs ostium-python-sdk ships, so it is what Ostium's contracts expect.
"""

from __future__ import annotations

import asyncio
from dataclasses import dataclass
from decimal import Decimal
from typing import Any

from ostium_python_sdk.abi.trading_abi import trading_abi
from ostium_python_sdk.abi.usdc_abi import usdc_abi
from web3 import AsyncWeb3, Web3

from wallets.safe import SafeTxRequest, build_safe_call_tx

USDC_UNIT = Decimal(10**6)
ZERO = "0x" + "0" * 40


@dataclass(frozen=True, slots=True)
class Contracts:
    trading: str
    trading_storage: str
    usdc: str


@dataclass(frozen=True, slots=True)
class UnsignedTx:
    """What the user's wallet sends (eth_sendTransaction on the connect page)."""

    to: str
    data: str
    value: int = 0
    purpose: str = ""

    def as_json(self) -> dict[str, Any]:
        return {"to": self.to, "data": self.data, "value": hex(self.value), "purpose": self.purpose}


@dataclass(frozen=True, slots=True)
class DelegationState:
    delegate: str | None  # the trader's Ostium delegate, if any
    allowance: Decimal  # USDC Ostium's trading storage may take
    balance: Decimal  # USDC in the wallet

    def delegated_to(self, agent: str) -> bool:
        return self.delegate is not None and self.delegate.lower() == agent.lower()


def _trading(contracts: Contracts) -> Any:
    return Web3().eth.contract(address=Web3.to_checksum_address(contracts.trading), abi=trading_abi)


def _usdc(contracts: Contracts) -> Any:
    return Web3().eth.contract(address=Web3.to_checksum_address(contracts.usdc), abi=usdc_abi)


def set_delegate_tx(contracts: Contracts, agent: str) -> UnsignedTx:
    data = _trading(contracts).encode_abi("setDelegate", [Web3.to_checksum_address(agent)])
    return UnsignedTx(contracts.trading, data, purpose="ostium_set_delegate")


def remove_delegate_tx(contracts: Contracts) -> UnsignedTx:
    data = _trading(contracts).encode_abi("removeDelegate", [])
    return UnsignedTx(contracts.trading, data, purpose="ostium_remove_delegate")


def approve_usdc_tx(contracts: Contracts, usdc: Decimal) -> UnsignedTx:
    amount = int(usdc * USDC_UNIT)
    spender = Web3.to_checksum_address(contracts.trading_storage)
    data = _usdc(contracts).encode_abi("approve", [spender, amount])
    return UnsignedTx(contracts.usdc, data, purpose="ostium_approve_usdc")


def setup_txs(contracts: Contracts, agent: str, usdc: Decimal) -> list[UnsignedTx]:
    """The transactions that let the agent key trade for the wallet, in order."""
    return [set_delegate_tx(contracts, agent), approve_usdc_tx(contracts, usdc)]


def delegation_state(w3: Web3, contracts: Contracts, trader: str) -> DelegationState:
    """Synchronous reads (call on a worker thread from async code)."""
    trader = Web3.to_checksum_address(trader)
    trading = w3.eth.contract(address=Web3.to_checksum_address(contracts.trading), abi=trading_abi)
    usdc = w3.eth.contract(address=Web3.to_checksum_address(contracts.usdc), abi=usdc_abi)
    delegate = trading.functions.delegations(trader).call()
    spender = Web3.to_checksum_address(contracts.trading_storage)
    allowance = usdc.functions.allowance(trader, spender).call()
    balance = usdc.functions.balanceOf(trader).call()
    return DelegationState(
        None if int(delegate, 16) == 0 else delegate,
        Decimal(allowance) / USDC_UNIT,
        Decimal(balance) / USDC_UNIT,
    )


class DelegationReader:
    """The delegation state of a wallet on an Arbitrum node, for /wallet and the connect
    page (reads only; the user's wallet signs every transaction itself)."""

    def __init__(self, rpc_url: str, contracts: Contracts) -> None:
        self.w3 = Web3(Web3.HTTPProvider(rpc_url, request_kwargs={"timeout": 10}))
        self.contracts = contracts

    async def state(self, trader: str) -> DelegationState:
        return await asyncio.to_thread(delegation_state, self.w3, self.contracts, trader)


async def safe_set_delegate_tx(
    w3: AsyncWeb3, safe: str, contracts: Contracts, agent: str
) -> SafeTxRequest:
    """`setDelegate(agent)` as a Safe transaction at the Safe's next nonce (also a key
    rotation's one transaction: wallets/ostium_rotation.py)."""
    delegate = set_delegate_tx(contracts, agent)
    address = {"internalType": "address", "type": "address", "name": "delegate"}
    return await build_safe_call_tx(
        w3,
        safe,
        delegate.to,
        delegate.data,
        {"inputs": [address], "name": "setDelegate", "payable": False},
        {"delegate": Web3.to_checksum_address(agent)},
    )


async def safe_setup_txs(
    w3: AsyncWeb3, safe: str, contracts: Contracts, agent: str, usdc: Decimal
) -> list[SafeTxRequest]:
    """The same two calls made by a Safe: Safe transactions (consecutive nonces) for its
    owners to sign in their Safe app; the Safe is then the Ostium trader."""
    approve = approve_usdc_tx(contracts, usdc)
    address = {"internalType": "address", "type": "address"}
    return [
        await safe_set_delegate_tx(w3, safe, contracts, agent),
        await build_safe_call_tx(
            w3,
            safe,
            approve.to,
            approve.data,
            {
                "inputs": [
                    {**address, "name": "spender"},
                    {"internalType": "uint256", "name": "value", "type": "uint256"},
                ],
                "name": "approve",
                "payable": False,
            },
            {
                "spender": Web3.to_checksum_address(contracts.trading_storage),
                "value": str(int(usdc * USDC_UNIT)),
            },
            nonce_offset=1,
        ),
    ]
