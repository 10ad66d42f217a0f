"""wallets/safe.py against the real Safe contracts (the L2 builds safe-eth-py ships) on a
local py-evm chain: find the user's Safes, enable the Maxxit module the way the user would
in their Safe app, and trade through it with the module key."""

from __future__ import annotations

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
        get_example_erc20_contract,
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
        ModuleCallFailed,
        ModuleNotEnabled,
        ModuleTxPending,
        NotASafe,
        Operation,
        ProxyFactoryIndex,
        SafeTxRequest,
        StaticIndex,
        TransactionServiceIndex,
        build_enable_module_tx,
        encode_enable_module,
        encode_exec_from_module,
        exec_module_tx,
        find_owned_safes,
        safe_contract,
        safe_status,
        tx_builder_checksum,
    )

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


# Hand-assembled because there is no compiler here: succeeds only while gasleft() > 200000.
# GAS PUSH3 200000 LT PUSH1 0x0d JUMPI PUSH1 0 DUP1 REVERT JUMPDEST STOP
GAS_GATED_RUNTIME = bytes.fromhex("5a62030d4010600d57600080fd5b00")


async def deploy_runtime(chain: Chain, runtime: bytes) -> str:
    # init code: CODECOPY the runtime that follows these 12 bytes and RETURN it
    init = bytes([0x60, len(runtime), 0x60, 12, 0x60, 0, 0x39, 0x60, len(runtime), 0x60, 0, 0xF3])
    tx_hash = await chain.w3.eth.send_transaction({"from": chain.funder, "data": init + runtime})
    return (await chain.mined(tx_hash))["contractAddress"]


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


async def test_enable_module_then_trade_through_it(chain: Chain) -> None:
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

    # ETH out of the Safe, signed by the module key alone.
    await chain.fund(mine, 2 * ETH)
    recipient = Account.create().address
    result = await exec_module_tx(w3, mine, module, recipient, ETH // 10)
    assert await w3.eth.get_balance(recipient) == ETH // 10
    assert await w3.eth.get_balance(mine) == 2 * ETH - ETH // 10
    assert (result.safe, result.to, result.value, result.operation) == (
        mine, recipient, ETH // 10, Operation.CALL
    )  # fmt: skip
    assert (await w3.eth.get_transaction(result.tx_hash))["from"] == module.address

    # A token call: the Safe is msg.sender, so it spends its own balance.
    token_cls = get_example_erc20_contract(w3)
    tx_hash = await token_cls.constructor("USD Coin", "USDC", 6, mine, 1_000 * 10**6).transact(
        {"from": chain.funder}
    )
    token = get_example_erc20_contract(w3, (await chain.mined(tx_hash))["contractAddress"])
    transfer = token.encode_abi("transfer", [recipient, 250 * 10**6])
    await exec_module_tx(w3, mine, module, token.address, 0, transfer)
    assert await token.functions.balanceOf(recipient).call() == 250 * 10**6
    assert await token.functions.balanceOf(mine).call() == 750 * 10**6

    # A call that would fail inside the Safe is caught by simulation; nothing is sent.
    sent = await w3.eth.get_transaction_count(module.address)
    too_much = token.encode_abi("transfer", [recipient, 10_000 * 10**6])
    with pytest.raises(ModuleCallFailed) as failed:
        await exec_module_tx(w3, mine, module, token.address, 0, too_much)
    assert failed.value.tx_hash is None
    assert await w3.eth.get_transaction_count(module.address) == sent

    # A call that only succeeds with enough gas: the Safe forwards 63/64 of what is left and
    # swallows the inner failure, so the outer estimate alone is too low and an on-chain
    # failure shows only as an event. The default gas budget covers it...
    gated = await deploy_runtime(chain, GAS_GATED_RUNTIME)
    outer = safe.functions.execTransactionFromModule(gated, 0, b"", 0)
    assert await outer.estimate_gas({"from": module.address}) < 200_000
    await exec_module_tx(w3, mine, module, gated, 0)
    # ...and a caller's too-small one is reported, with the hash of the mined transaction.
    with pytest.raises(ModuleCallFailed, match="failed on chain") as failed:
        await exec_module_tx(w3, mine, module, gated, 0, gas=150_000)
    receipt = await w3.eth.get_transaction_receipt(failed.value.tx_hash)
    assert receipt["status"] == 1


async def test_module_not_enabled_is_refused(chain: Chain) -> None:
    w3 = chain.w3
    user, maxxit, impostor = [await funded_account(chain) for _ in range(3)]
    safe_address = await chain.create_safe([user.address])
    await chain.fund(safe_address, ETH)
    recipient = Account.create().address

    # Raw, as the Safe itself answers a module it does not know.
    exec_call = safe_contract(w3, safe_address).functions.execTransactionFromModule(
        recipient, 1, b"", 0
    )
    with pytest.raises(ContractLogicError, match="GS104"):
        await exec_call.call({"from": maxxit.address})
    with pytest.raises(ModuleNotEnabled):
        await exec_module_tx(w3, safe_address, maxxit, recipient, 1)

    # Enabling Maxxit's module does not let another key in.
    await enable_module_as_owner(
        chain, user, await build_enable_module_tx(w3, safe_address, maxxit.address)
    )
    with pytest.raises(ModuleNotEnabled):
        await exec_module_tx(w3, safe_address, impostor, recipient, 1)
    assert await w3.eth.get_transaction_count(impostor.address) == 0
    assert await w3.eth.get_balance(recipient) == 0
    await exec_module_tx(w3, safe_address, maxxit, recipient, 1)
    assert await w3.eth.get_balance(recipient) == 1


@pytest.mark.parametrize("chain", ["1.4.1"], indirect=True)
async def test_slow_transaction_is_reported_with_its_hash(chain: Chain) -> None:
    w3, user, maxxit = chain.w3, await funded_account(chain), await funded_account(chain)
    safe_address = await chain.create_safe([user.address])
    await chain.fund(safe_address, ETH)
    await enable_module_as_owner(
        chain, user, await build_enable_module_tx(w3, safe_address, maxxit.address)
    )
    recipient = Account.create().address
    tester = w3.provider.ethereum_tester
    tester.disable_auto_mine_transactions()
    with pytest.raises(ModuleTxPending) as pending:
        await exec_module_tx(w3, safe_address, maxxit, recipient, 5, wait_seconds=0.3)
    tester.mine_blocks()
    receipt = await w3.eth.get_transaction_receipt(pending.value.tx_hash)
    assert receipt["status"] == 1
    assert await w3.eth.get_balance(recipient) == 5


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
    data = encode_exec_from_module(module, 5, b"\x01\x02", Operation.DELEGATECALL)
    args = abi_encode(["address", "uint256", "bytes", "uint8"], [module, 5, b"\x01\x02", 1])
    assert data == "0x468721a7" + args.hex()
    selectors = {
        e["name"]: keccak(text=f"{e['name']}({','.join(i['type'] for i in e['inputs'])})")[:4]
        for e in SAFE_ABI
        if e["type"] == "function"
    }
    assert selectors["isModuleEnabled"].hex() == "2d9ad53d"
    for bad in (1.5, Decimal(1), True, -1):
        with pytest.raises(TypeError):
            encode_exec_from_module(module, bad, b"")


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
# contract's getTransactionHash in test_enable_module_then_trade_through_it, and here
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
