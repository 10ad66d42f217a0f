"""Safe (safe.global) custody for Ostium: the Safe itself makes Maxxit's agent key its Ostium
delegate and approves USDC to Ostium's trading storage, in Safe transactions its owners sign in
their Safe app (``build_safe_call_tx``; wallets/ostium_delegation.safe_setup_txs). The agent
key then trades for the Safe through Ostium's ``delegatedAction``, which can open and close
trades and never withdraw.

There is no Maxxit module any more: a Safe module may make any call from the Safe
(``execTransactionFromModule``, DELEGATECALL included), so a module holding Maxxit's server
key could move every asset in the Safe. The module state is still read, to warn a user who
enabled one earlier and to show them how to remove it (``build_enable_module_tx`` remains for
the tests that set up such a Safe).

Everything here is async on ``web3.AsyncWeb3``. The Safe Transaction Service client of
safe-eth-py is blocking (requests), so ``TransactionServiceIndex`` runs it in a worker thread.

Finding a user's Safes is two steps: a ``SafeIndex`` proposes candidate addresses, and
``find_owned_safes`` keeps only those whose on-chain ``getOwners()`` lists the wallet, so a
stale or hostile index can never make Maxxit act on someone else's Safe.

Works with Safe 1.3.0, 1.4.1 and 1.5.0 (L2 or not): the functions used here have the same
signatures in all of them.
"""

from __future__ import annotations

import asyncio
import json
import time
import warnings
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from enum import IntEnum
from typing import Any, Protocol

from eth_abi import encode as abi_encode
from eth_typing import ChecksumAddress, HexStr
from eth_utils import keccak, to_checksum_address

with warnings.catch_warnings():
    # web3 7 imports websockets.legacy at import time; the test suite turns that
    # DeprecationWarning into an error, and nothing here uses websockets.
    warnings.filterwarnings("ignore", "websockets.legacy", DeprecationWarning)
    from safe_eth.eth import EthereumNetwork
    from safe_eth.eth.contracts import load_contract_interface
    from safe_eth.safe import SafeTx
    from safe_eth.safe.api import TransactionServiceApi
    from web3 import AsyncWeb3
    from web3.contract import AsyncContract
    from web3.exceptions import ContractLogicError, Web3Exception

NULL_ADDRESS = ChecksumAddress(HexStr("0x" + "00" * 20))
# Same signatures in 1.3.0-1.5.0; the 1.4.1 L2 artifact is what Arbitrum Safes run.
SAFE_ABI: list[dict[str, Any]] = load_contract_interface("Safe_V1_4_1.json")["abi"]
_PROXY_CREATION = keccak(text="ProxyCreation(address,address)")
TX_BUILDER_VERSION = "1.18.0"


class Operation(IntEnum):
    CALL = 0
    DELEGATECALL = 1


class SafeModuleError(Exception):
    """Base for refusals and failures; ``tx_hash`` is set once a transaction was sent."""

    def __init__(self, message: str, tx_hash: HexStr | None = None) -> None:
        super().__init__(message)
        self.tx_hash = tx_hash


class NotASafe(SafeModuleError):
    pass


class ModuleNotEnabled(SafeModuleError):
    """The Safe refused the module (revert GS104): it was never enabled or was disabled."""


@dataclass(frozen=True)
class SafeStatus:
    address: ChecksumAddress
    version: str
    owners: tuple[ChecksumAddress, ...]
    threshold: int
    nonce: int
    module: ChecksumAddress
    module_enabled: bool


@dataclass(frozen=True)
class SafeTxRequest:
    """A Safe transaction for the owners to sign and execute in their Safe app.

    No gas refund: safeTxGas, baseGas and gasPrice are 0 and the executor pays the gas.
    """

    chain_id: int
    safe: ChecksumAddress
    safe_version: str
    to: ChecksumAddress
    value: int
    data: HexStr
    operation: Operation
    nonce: int
    # How the Transaction Builder shows the call to the user instead of raw calldata.
    method: dict[str, Any] = field(compare=False)
    method_args: dict[str, str] = field(compare=False)

    def safe_tx(self) -> SafeTx:
        """safe-eth-py's SafeTx; it hashes offline since nonce, version and chain are set."""
        no_refund = (0, 0, 0, NULL_ADDRESS, NULL_ADDRESS)  # safeTxGas .. refundReceiver
        return SafeTx(
            None,  # type: ignore[arg-type]  # a client is only needed to call the chain
            *(self.safe, self.to, self.value, _bytes(self.data), int(self.operation)),
            *no_refund,
            safe_nonce=self.nonce,
            safe_version=self.safe_version,
            chain_id=self.chain_id,
        )

    @property
    def safe_tx_hash(self) -> HexStr:
        """What the owners sign (EIP-712) and what the Safe app lists the transaction by."""
        return HexStr("0x" + bytes(self.safe_tx().safe_tx_hash).hex())

    def typed_data(self) -> dict[str, Any]:
        """EIP-712 payload for eth_signTypedData_v4, JSON-ready; it hashes to safe_tx_hash."""
        payload = self.safe_tx().eip712_structured_data
        names = [f["name"] for f in payload["types"]["SafeTx"]]
        message = {n: payload["message"][n] for n in names} | {"data": self.data}
        return {**payload, "message": message}

    def tx_builder_batch(
        self, name: str = "Enable Maxxit module", created_at_ms: int | None = None
    ) -> dict[str, Any]:
        """A Safe{Wallet} Transaction Builder batch file, to import in the app as JSON.

        The app picks the nonce itself on import, so unlike ``safe_tx_hash`` this stays
        usable when the user executes other transactions first.
        """
        batch: dict[str, Any] = {
            "version": "1.0",
            "chainId": str(self.chain_id),
            "createdAt": int(time.time() * 1000) if created_at_ms is None else created_at_ms,
            "meta": {
                "name": name,
                "description": "",
                "txBuilderVersion": TX_BUILDER_VERSION,
                "createdFromSafeAddress": self.safe,
                "createdFromOwnerAddress": "",
            },
            "transactions": [
                {
                    "to": self.to,
                    "value": str(self.value),
                    "data": None,
                    "contractMethod": self.method,
                    "contractInputsValues": self.method_args,
                }
            ],
        }
        batch["meta"]["checksum"] = tx_builder_checksum(batch)
        return batch


class SafeIndex(Protocol):
    """Proposes addresses that may be Safes owned by ``owner``; need not be exact."""

    async def candidates(self, owner: ChecksumAddress) -> list[str]: ...


class TransactionServiceIndex:
    """Safe Transaction Service lookup (the index behind the Safe app), for real networks."""

    def __init__(
        self,
        network: EthereumNetwork = EthereumNetwork.ARBITRUM_ONE,
        *,
        api_key: str | None = None,
        base_url: str | None = None,
        api: Any = None,
    ) -> None:
        if api is None:
            # Passing api_key=None would override the library's own env default.
            kwargs: dict[str, Any] = {"base_url": base_url}
            if api_key is not None:
                kwargs["api_key"] = api_key
            api = TransactionServiceApi(network, **kwargs)
        self._api = api

    async def candidates(self, owner: ChecksumAddress) -> list[str]:
        return list(await asyncio.to_thread(self._api.get_safes_for_owner, owner))


class ProxyFactoryIndex:
    """Every proxy a Safe proxy factory created, from its ProxyCreation logs.

    Meant for local and test chains: on Arbitrum an unbounded log scan is too slow and
    most RPCs cap the block range; use ``TransactionServiceIndex`` there.
    """

    def __init__(self, w3: AsyncWeb3, factory: str, from_block: int = 0) -> None:
        self._w3 = w3
        self._factory = to_checksum_address(factory)
        self._from_block = from_block

    async def candidates(self, owner: ChecksumAddress) -> list[str]:
        query = {"address": self._factory, "topics": [_PROXY_CREATION]}
        logs = await self._w3.eth.get_logs({**query, "fromBlock": self._from_block})
        found = []
        for log in logs:
            # 1.4.1+ indexes the proxy address; 1.3.0 puts both addresses in data.
            word = log["topics"][1] if len(log["topics"]) > 1 else log["data"][:32]
            found.append(to_checksum_address(bytes(word)[-20:]))
        return found


class StaticIndex:
    """Fixed candidates, e.g. an address the user pasted in the chat."""

    def __init__(self, addresses: Iterable[str]) -> None:
        self._addresses = list(addresses)

    async def candidates(self, owner: ChecksumAddress) -> list[str]:
        return list(self._addresses)


def safe_contract(w3: AsyncWeb3, safe: str) -> AsyncContract:
    return w3.eth.contract(address=to_checksum_address(safe), abi=SAFE_ABI)


async def find_owned_safes(w3: AsyncWeb3, owner: str, index: SafeIndex) -> list[ChecksumAddress]:
    """Candidates from ``index`` whose on-chain owners include ``owner``, in index order."""
    owner = to_checksum_address(owner)
    seen: dict[ChecksumAddress, None] = {}
    for address in await index.candidates(owner):
        seen.setdefault(to_checksum_address(address))
    candidates = list(seen)

    async def owners_of(address: ChecksumAddress) -> list[str]:
        try:
            return await safe_contract(w3, address).functions.getOwners().call()
        except (Web3Exception, ValueError):
            return []  # no code, or not a Safe

    owner_lists = await asyncio.gather(*(owners_of(a) for a in candidates))
    return [a for a, owners in zip(candidates, owner_lists, strict=True) if owner in owners]


async def safe_status(w3: AsyncWeb3, safe: str, module: str) -> SafeStatus:
    contract = safe_contract(w3, safe)
    module = to_checksum_address(module)
    fns = contract.functions
    try:
        version, owners, threshold, nonce, enabled = await asyncio.gather(
            fns.VERSION().call(),
            fns.getOwners().call(),
            fns.getThreshold().call(),
            fns.nonce().call(),
            fns.isModuleEnabled(module).call(),
        )
    except (Web3Exception, ValueError) as exc:
        raise NotASafe(f"{contract.address} does not answer as a Safe: {exc}") from exc
    owners = tuple(to_checksum_address(o) for o in owners)
    return SafeStatus(contract.address, version, owners, threshold, nonce, module, enabled)


def encode_enable_module(module: str) -> HexStr:
    return _encode("enableModule", [to_checksum_address(module)])


async def build_safe_call_tx(
    w3: AsyncWeb3,
    safe: str,
    to: str,
    data: str,
    method: dict[str, Any],
    method_args: dict[str, str],
    nonce_offset: int = 0,
) -> SafeTxRequest:
    """A plain CALL from the Safe (no value), at its current nonce plus ``nonce_offset`` (for
    the second of two transactions signed together), for its owners to sign."""
    contract = safe_contract(w3, safe)
    try:
        version, nonce = await asyncio.gather(
            contract.functions.VERSION().call(), contract.functions.nonce().call()
        )
    except (ContractLogicError, Web3Exception) as exc:
        raise NotASafe(f"{contract.address} is not a Safe: {exc}") from exc
    return SafeTxRequest(
        chain_id=await w3.eth.chain_id,
        safe=contract.address,
        safe_version=version,
        to=to_checksum_address(to),
        value=0,
        data=HexStr(data),
        operation=Operation.CALL,
        nonce=nonce + nonce_offset,
        method=method,
        method_args=method_args,
    )


async def build_enable_module_tx(w3: AsyncWeb3, safe: str, module: str) -> SafeTxRequest:
    """The ``enableModule(module)`` SafeTx at the Safe's current nonce, with its safeTxHash."""
    status = await safe_status(w3, safe, module)
    inputs = next(e for e in SAFE_ABI if e.get("name") == "enableModule")["inputs"]
    return SafeTxRequest(
        chain_id=await w3.eth.chain_id,
        safe=status.address,
        safe_version=status.version,
        to=status.address,
        value=0,
        data=encode_enable_module(status.module),
        operation=Operation.CALL,
        nonce=status.nonce,
        method={"inputs": inputs, "name": "enableModule", "payable": False},
        method_args={"module": status.module},
    )


def tx_builder_checksum(batch: dict[str, Any]) -> HexStr:
    """The Transaction Builder's own checksum (apps/tx-builder/src/lib/checksum.ts).

    The app warns on import when it does not match, so it must be byte-compatible with its
    JavaScript serialisation: sorted key list first, then each value followed by a comma,
    with ``meta.name`` nulled and ``meta.checksum`` left out.
    """
    meta = {k: v for k, v in batch["meta"].items() if k != "checksum"}
    serialised = _serialise_js({**batch, "meta": {**meta, "name": None}})
    return HexStr("0x" + keccak(text=serialised).hex())


def _serialise_js(value: Any) -> str:
    if isinstance(value, list):
        return "[" + ",".join(_serialise_js(v) for v in value) + "]"
    if isinstance(value, dict):
        keys = sorted(value)
        return "{" + _js_json(keys) + "".join(_serialise_js(value[k]) + "," for k in keys) + "}"
    return _js_json(value)


def _js_json(value: Any) -> str:
    return json.dumps(value, separators=(",", ":"), ensure_ascii=False)


def _encode(fn_name: str, args: Sequence[Any]) -> HexStr:
    entry = next(e for e in SAFE_ABI if e.get("type") == "function" and e["name"] == fn_name)
    types = [i["type"] for i in entry["inputs"]]
    selector = keccak(text=f"{fn_name}({','.join(types)})")[:4]
    return HexStr("0x" + (selector + abi_encode(types, list(args))).hex())


def _wei(value: int) -> int:
    # bool is an int and a float would lose wei: both are caller bugs.
    if isinstance(value, bool) or not isinstance(value, int) or value < 0:
        raise TypeError(f"value must be a non-negative int of wei, not {value!r}")
    return value


def _bytes(data: bytes | str) -> bytes:
    if isinstance(data, str):
        return bytes.fromhex(data.removeprefix("0x"))
    return bytes(data)
