"""wallets/safe.py against the real Safe contracts (the L2 builds safe-eth-py ships) on a
local py-evm chain: find the user's Safes, read their module state (a Safe that enabled a
Maxxit module earlier is warned), and custody for Ostium by delegation: the Safe's owners sign
Safe transactions that make Maxxit's agent key the Safe's Ostium delegate and approve USDC
(on the mock Ostium contracts of tests/peers/ostium); the agent key trades for the Safe and
cannot move its USDC; Maxxit has no module path (a module could make any call)."""

from __future__ import annotations

import ast
import json
import warnings
from dataclasses import dataclass
from decimal import Decimal
from typing import Any

import pytest
from eth_abi import encode as abi_encode
from eth_account import Account
from eth_account.messages import encode_typed_data
from eth_account.signers.local import LocalAccount
from eth_utils import keccak, to_checksum_address

with warnings.catch_warnings():
    # web3 7 imports websockets.legacy, which warns; the suite turns warnings into errors.
    warnings.filterwarnings("ignore", "websockets.legacy", DeprecationWarning)
    from eth_tester.exceptions import TransactionFailed
    from safe_eth.eth.contracts import (
        get_proxy_factory_V1_3_0_contract,
        get_proxy_factory_V1_4_1_contract,
        get_proxy_factory_V1_5_0_contract,
        get_safe_V1_3_0_contract,
        get_safe_V1_4_1_contract,
        get_safe_V1_5_0_contract,
    )
    from web3 import AsyncWeb3
    from web3.exceptions import ContractLogicError
    from web3.providers.eth_tester import AsyncEthereumTesterProvider

    from wallets.safe import (
        NULL_ADDRESS,
        SAFE_ABI,
        NotASafe,
        Operation,
        ProxyFactoryIndex,
        SafeTxRequest,
        StaticIndex,
        TransactionServiceIndex,
        build_enable_module_tx,
        encode_enable_module,
        find_owned_safes,
        safe_contract,
        safe_status,
        tx_builder_checksum,
    )

from engine.venues.ostium_errors import decode, revert_data
from tests.peers.ostium.chain import artifacts
from wallets.ostium_delegation import Contracts, safe_setup_txs
from wallets.ostium_rotation import safe_rotation_txs

ETH = 10**18
CONTRACTS = {
    "1.3.0": (get_safe_V1_3_0_contract, get_proxy_factory_V1_3_0_contract),
    "1.4.1": (get_safe_V1_4_1_contract, get_proxy_factory_V1_4_1_contract),
    "1.5.0": (get_safe_V1_5_0_contract, get_proxy_factory_V1_5_0_contract),
}


class NodeLikeTesterProvider(AsyncEthereumTesterProvider):
    """eth-tester raises a revert as a Python exception where a node answers a JSON-RPC
    error that web3 turns into ContractLogicError; answer like geth so that safe.py is
    tested on what it will see in production."""

    async def make_request(self, method: Any, params: Any) -> Any:
        try:
            return await super().make_request(method, params)
        except TransactionFailed as exc:
            reason = str(exc).removeprefix("execution reverted: ")
            data = "0x08c379a0" + abi_encode(["string"], [reason]).hex()
            error = {"code": 3, "message": f"execution reverted: {reason}", "data": data}
            return {"jsonrpc": "2.0", "id": self._current_request_id, "error": error}


@dataclass
class Chain:
    w3: AsyncWeb3
    version: str
    singleton: str
    factory: str
    funder: str

    async def mined(self, tx_hash: Any) -> Any:
        receipt = await self.w3.eth.wait_for_transaction_receipt(tx_hash)
        assert receipt["status"] == 1
        return receipt

    async def fund(self, to: str, wei: int) -> None:
        await self.mined(
            await self.w3.eth.send_transaction({"from": self.funder, "to": to, "value": wei})
        )

    async def send_as(self, account: LocalAccount, fn: Any) -> Any:
        tx = await fn.build_transaction(
            {
                "from": account.address,
                "nonce": await self.w3.eth.get_transaction_count(account.address),
            }
        )
        signed = account.sign_transaction(tx)
        return await self.mined(await self.w3.eth.send_raw_transaction(signed.raw_transaction))

    async def create_safe(self, owners: list[str], threshold: int = 1, salt: int = 0) -> str:
        setup = safe_contract(self.w3, self.singleton).encode_abi(
            "setup",
            [owners, threshold, NULL_ADDRESS, b"", NULL_ADDRESS, NULL_ADDRESS, 0, NULL_ADDRESS],
        )
        factory = CONTRACTS[self.version][1](self.w3, self.factory)
        create = factory.functions.createProxyWithNonce(self.singleton, setup, salt)
        address = await create.call({"from": self.funder})
        await self.mined(await create.transact({"from": self.funder}))
        return address


@pytest.fixture(params=sorted(CONTRACTS))
async def chain(request: pytest.FixtureRequest) -> Chain:
    w3 = AsyncWeb3(NodeLikeTesterProvider())
    funder = (await w3.eth.accounts)[0]
    singleton_cls, factory_cls = CONTRACTS[request.param]
    addresses = []
    for cls in (singleton_cls, factory_cls):
        tx_hash = await cls(w3).constructor().transact({"from": funder})
        receipt = await w3.eth.wait_for_transaction_receipt(tx_hash)
        addresses.append(receipt["contractAddress"])
    return Chain(w3, request.param, addresses[0], addresses[1], funder)


async def funded_account(chain: Chain, wei: int = ETH) -> LocalAccount:
    account = Account.create()
    await chain.fund(account.address, wei)
    return account


async def enable_module_as_owner(chain: Chain, owner: LocalAccount, request: SafeTxRequest) -> None:
    """What the Safe app does: the owner signs the EIP-712 SafeTx and submits execTransaction."""
    typed = json.loads(json.dumps(request.typed_data()))  # must survive the trip to a wallet
    signature = owner.sign_typed_data(full_message=typed).signature
    safe = safe_contract(chain.w3, request.safe)
    await chain.send_as(
        owner,
        safe.functions.execTransaction(
            request.to, request.value, request.data, request.operation,
            0, 0, 0, NULL_ADDRESS, NULL_ADDRESS, signature,
        ),
    )  # fmt: skip


async def test_find_safes_and_enable_a_module_as_the_safe_app_does(chain: Chain) -> None:
    w3 = chain.w3
    user, module = await funded_account(chain), await funded_account(chain)
    stranger = Account.create()
    mine = await chain.create_safe([user.address], salt=1)
    await chain.create_safe([stranger.address], salt=2)
    shared = await chain.create_safe([stranger.address, user.address], threshold=2, salt=3)

    # Every proxy the factory made is a candidate; only Safes the wallet owns come back.
    index = ProxyFactoryIndex(w3, chain.factory)
    assert len(await index.candidates(user.address)) == 3
    assert await find_owned_safes(w3, user.address, index) == [mine, shared]
    assert await find_owned_safes(w3, stranger.address.lower(), StaticIndex([mine])) == []

    status = await safe_status(w3, mine, module.address)
    assert (status.version, status.owners, status.threshold) == (chain.version, (user.address,), 1)
    assert (status.nonce, status.module_enabled) == (0, False)

    request = await build_enable_module_tx(w3, mine, module.address)
    assert (request.to, request.value, request.operation, request.nonce) == (mine, 0, 0, 0)
    assert request.data == encode_enable_module(module.address)
    assert request.data.startswith("0x610b5925")
    safe = safe_contract(w3, mine)
    on_chain = await safe.functions.getTransactionHash(
        request.to, 0, request.data, 0, 0, 0, 0, NULL_ADDRESS, NULL_ADDRESS, 0
    ).call()
    assert request.safe_tx_hash == "0x" + on_chain.hex()
    signable = encode_typed_data(full_message=request.typed_data())
    assert (
        request.safe_tx_hash == "0x" + keccak(b"\x19\x01" + signable.header + signable.body).hex()
    )

    await enable_module_as_owner(chain, user, request)
    status = await safe_status(w3, mine, module.address)
    assert (status.nonce, status.module_enabled) == (1, True)


@pytest.mark.parametrize("chain", ["1.4.1"], indirect=True)
async def test_transaction_service_index_is_checked_on_chain(chain: Chain) -> None:
    user = Account.create()
    mine = await chain.create_safe([user.address], salt=7)
    theirs = await chain.create_safe([Account.create().address], salt=8)

    class FakeApi:
        def __init__(self) -> None:
            self.asked: list[str] = []

        def get_safes_for_owner(self, owner: str) -> list[str]:
            self.asked.append(owner)
            # What a lagging index could say: a Safe since handed over, an EOA, a repeat.
            return [theirs, mine.lower(), user.address, mine]

    api = FakeApi()
    index = TransactionServiceIndex(api=api)
    assert await find_owned_safes(chain.w3, user.address.lower(), index) == [mine]
    assert api.asked == [user.address]
    with pytest.raises(NotASafe):
        await safe_status(chain.w3, user.address, NULL_ADDRESS)


def test_transaction_service_index_defaults_to_arbitrum() -> None:
    index = TransactionServiceIndex(api_key="k")
    assert index._api.base_url.endswith("/arb1")  # no request is made until asked
    assert index._api.api_key == "k"


def test_calldata_uses_the_safe_selectors() -> None:
    module = "0x" + "ab" * 20
    assert encode_enable_module(module) == "0x610b5925" + "00" * 12 + "ab" * 20
    selectors = {
        e["name"]: keccak(text=f"{e['name']}({','.join(i['type'] for i in e['inputs'])})")[:4]
        for e in SAFE_ABI
        if e["type"] == "function"
    }
    assert selectors["isModuleEnabled"].hex() == "2d9ad53d"
    # Maxxit never calls a Safe as a module any more: nothing here builds that call
    import wallets.safe

    assert not [n for n in dir(wallets.safe) if "exec" in n.lower() and "module" in n.lower()]


def _enable_request() -> SafeTxRequest:
    safe, module = to_checksum_address("0x" + "5a" * 20), to_checksum_address("0x" + "11" * 20)
    return SafeTxRequest(
        chain_id=42161,
        safe=safe,
        safe_version="1.4.1",
        to=safe,
        value=0,
        data=encode_enable_module(module),
        operation=Operation.CALL,
        nonce=7,
        method={
            "inputs": [{"internalType": "address", "name": "module", "type": "address"}],
            "name": "enableModule",
            "payable": False,
        },
        method_args={"module": module},
    )


# Pinned for _enable_request(). The computation itself is checked against the Safe
# contract's getTransactionHash in test_find_safes_and_enable_a_module_as_the_safe_app_does,
# and here
# against eth_account's independent EIP-712 encoder.
SAFE_TX_HASH_VECTOR = "0xb6d7d0dbf5071e80ef5c506ed1802a632971eb92de10e1e7591e3f7f59ee5f14"
# Produced by a JavaScript transcription of the Transaction Builder's checksum.ts run under
# Node 20 on this batch (same serialised string byte for byte, then keccak256).
TX_BUILDER_CHECKSUM_VECTOR = "0x3b5aa1ddf1ad30a84033bacebff114a148d4a8cafef47d5af587e8425f23f85e"


def test_safe_tx_hash_known_vector() -> None:
    request = _enable_request()
    signable = encode_typed_data(full_message=request.typed_data())
    assert (
        request.safe_tx_hash == "0x" + keccak(b"\x19\x01" + signable.header + signable.body).hex()
    )
    assert request.safe_tx_hash == SAFE_TX_HASH_VECTOR


def test_tx_builder_batch() -> None:
    request = _enable_request()
    batch = json.loads(json.dumps(request.tx_builder_batch(created_at_ms=1_700_000_000_000)))
    assert batch["chainId"] == "42161"
    assert batch["meta"]["createdFromSafeAddress"] == request.safe
    (tx,) = batch["transactions"]
    assert (tx["to"], tx["value"], tx["data"]) == (request.safe, "0", None)
    # What the Transaction Builder will encode from the method and its inputs:
    inputs = tx["contractMethod"]["inputs"]
    encoded = keccak(text=f"{tx['contractMethod']['name']}(address)")[:4] + abi_encode(
        [i["type"] for i in inputs], [tx["contractInputsValues"][i["name"]] for i in inputs]
    )
    assert "0x" + encoded.hex() == request.data
    # The app ignores the name and the checksum itself when it checks the checksum.
    assert batch["meta"]["checksum"] == TX_BUILDER_CHECKSUM_VECTOR
    renamed = {**batch, "meta": {**batch["meta"], "name": "other"}}
    assert tx_builder_checksum(renamed) == batch["meta"]["checksum"]


@pytest.mark.parametrize("chain", ["1.4.1"], indirect=True)
async def test_a_safe_delegates_on_ostium_and_the_agent_cannot_move_its_usdc(
    chain: Chain,
) -> None:
    w3, e6 = chain.w3, 10**6
    owner, agent = await funded_account(chain), await funded_account(chain)
    safe_address = await chain.create_safe([owner.address])
    safe = safe_contract(w3, safe_address)
    built = artifacts()["contracts"]

    async def deploy(name: str, *args: Any) -> Any:
        factory = w3.eth.contract(abi=built[name]["abi"], bytecode=built[name]["bytecode"])
        tx_hash = await factory.constructor(*args).transact({"from": chain.funder})
        address = (await chain.mined(tx_hash))["contractAddress"]
        return w3.eth.contract(address=address, abi=built[name]["abi"])

    usdc = await deploy("MockUSDC")
    ostium = await deploy("MockOstium", usdc.address)  # trading and trading storage
    gov = {"from": chain.funder}
    await chain.mined(await ostium.functions.setPair(2, 100, 10000, 250 * e6, 0, 0).transact(gov))
    await chain.mined(await usdc.functions.mint(safe_address, 1000 * e6).transact(gov))

    # the owners sign the two Safe transactions in their Safe app
    where = Contracts(ostium.address, ostium.address, usdc.address)
    requests = await safe_setup_txs(w3, safe_address, where, agent.address, Decimal(500))
    assert [(r.to, r.nonce) for r in requests] == [(ostium.address, 0), (usdc.address, 1)]
    for request in requests:
        await enable_module_as_owner(chain, owner, request)
    assert await ostium.functions.delegations(safe_address).call() == agent.address
    assert await usdc.functions.allowance(safe_address, ostium.address).call() == 500 * e6
    assert not await safe.functions.isModuleEnabled(agent.address).call()

    # the agent key trades for the Safe: the Safe's USDC becomes the trade's collateral
    trade = (100 * e6, 2000 * 10**18, 0, 0, agent.address, 500, 2, 0, True, False)
    opening = ostium.encode_abi("openTrade", [trade, (NULL_ADDRESS, 0), 0, 200])
    await chain.send_as(agent, ostium.functions.delegatedAction(safe_address, opening))
    assert await usdc.functions.balanceOf(safe_address).call() == 900 * e6

    # a transfer of the Safe's USDC by the agent key reverts, whichever way it is tried
    thief = Account.create().address
    transfer = usdc.encode_abi("transfer", [thief, e6])
    attempts = [
        usdc.functions.transferFrom(safe_address, thief, e6),
        usdc.functions.transfer(thief, e6),
        ostium.functions.delegatedAction(safe_address, transfer),
        ostium.functions.delegatedAction(safe_address, ostium.encode_abi("setDelegate", [thief])),
        # no module path: the Safe refuses a module call from Maxxit's key (GS104)
        safe.functions.execTransactionFromModule(usdc.address, 0, transfer, 0),
    ]
    for attempt in attempts:
        with pytest.raises(ContractLogicError):
            await attempt.call({"from": agent.address})
    assert await usdc.functions.balanceOf(thief).call() == 0
    assert await usdc.functions.balanceOf(safe_address).call() == 900 * e6

    # a key rotation: the owners sign one Safe transaction, setDelegate(new key); from then
    # on the old key's delegatedAction reverts and the new key acts for the Safe's trade
    new_agent = await funded_account(chain)
    [rotation] = await safe_rotation_txs(w3, safe_address, where, new_agent.address)
    assert (rotation.to, rotation.nonce) == (ostium.address, 2)
    await enable_module_as_owner(chain, owner, rotation)
    assert await ostium.functions.delegations(safe_address).call() == new_agent.address
    with pytest.raises(ContractLogicError) as refused:
        await ostium.functions.delegatedAction(safe_address, opening).call({"from": agent.address})
    # this node hands the custom error back as the text of its bytes
    assert decode(ast.literal_eval(decode(revert_data(refused.value))).hex()) == "NotDelegate"
    await chain.send_as(new_agent, ostium.functions.delegatedAction(safe_address, opening))
    assert await usdc.functions.balanceOf(safe_address).call() == 800 * e6
