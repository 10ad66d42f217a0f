"""anvil (from npm's @foundry-rs/anvil-linux-amd64, installed by .ci/run) started on a free
port as Arbitrum One's chain id with a zero base fee (the SDK signs with a 0.5 gwei fee cap and
no estimate), and the mock contracts deployed on it. Transactions are signed locally, as the
SDK does; the deployer (anvil's first dev account) is the contracts' governor and keeper."""

from __future__ import annotations

import json
import os
import shutil
import socket
import subprocess
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from eth_account import Account
from eth_account.signers.local import LocalAccount
from web3 import Web3
from web3.contract import Contract

ARTIFACTS = Path(__file__).parent / "contracts" / "artifacts.json"
TOOLS_DIR = Path(os.environ.get("MAXXIT_TOOLS_DIR", Path.home() / ".cache" / "maxxit-tools"))
DEV_MNEMONIC = "test test test test test test test test test test test junk"
CHAIN_ID = 42161


def find_anvil() -> str | None:
    candidates = [
        os.environ.get("MAXXIT_ANVIL"),
        str(TOOLS_DIR / "node_modules" / ".bin" / "anvil"),
        shutil.which("anvil"),
    ]
    return next((c for c in candidates if c and Path(c).is_file()), None)


def dev_account(index: int) -> LocalAccount:
    """anvil's funded dev accounts, derived from its well-known mnemonic (never hard-coded)."""
    Account.enable_unaudited_hdwallet_features()
    return Account.from_mnemonic(DEV_MNEMONIC, account_path=f"m/44'/60'/0'/0/{index}")


def artifacts() -> dict[str, Any]:
    return json.loads(ARTIFACTS.read_text())


class Anvil:
    def __init__(self, binary: str) -> None:
        sock = socket.socket()
        sock.bind(("127.0.0.1", 0))
        self.port = sock.getsockname()[1]
        sock.close()
        self.url = f"http://127.0.0.1:{self.port}"
        self.process = subprocess.Popen(
            [
                binary,
                "--chain-id",
                str(CHAIN_ID),
                "--base-fee",
                "0",
                "--host",
                "127.0.0.1",
                "--port",
                str(self.port),
                "--silent",
            ],
            stdout=subprocess.DEVNULL,
            stderr=subprocess.DEVNULL,
        )
        self.w3 = Web3(Web3.HTTPProvider(self.url, request_kwargs={"timeout": 10}))
        for _ in range(400):
            if self.process.poll() is not None:
                raise RuntimeError(f"anvil exited with {self.process.returncode}")
            try:
                if self.w3.eth.chain_id == CHAIN_ID:
                    return
            except Exception:
                time.sleep(0.025)
        raise RuntimeError("anvil did not answer")

    def stop(self) -> None:
        self.process.terminate()
        try:
            self.process.wait(5)
        except subprocess.TimeoutExpired:
            self.process.kill()


def send(w3: Web3, signer: LocalAccount, call: Any, gas: int = 3_000_000) -> Any:
    """Sign locally and send; the receipt (status checked by the caller)."""
    tx = call.build_transaction(
        {
            "from": signer.address,
            "nonce": w3.eth.get_transaction_count(signer.address),
            "gas": gas,
            "maxFeePerGas": 0,
            "maxPriorityFeePerGas": 0,
            "chainId": CHAIN_ID,
        }
    )
    signed = signer.sign_transaction(tx)
    return w3.eth.wait_for_transaction_receipt(w3.eth.send_raw_transaction(signed.raw_transaction))


@dataclass
class Deployed:
    usdc: Contract
    ostium: Contract  # trading, trading storage and registry in one mock
    callbacks: Contract


def deploy(w3: Web3, gov: LocalAccount) -> Deployed:
    built = artifacts()["contracts"]

    def create(name: str, *args: Any) -> Contract:
        factory = w3.eth.contract(abi=built[name]["abi"], bytecode=built[name]["bytecode"])
        tx = factory.constructor(*args).build_transaction(
            {
                "from": gov.address,
                "nonce": w3.eth.get_transaction_count(gov.address),
                "gas": 12_000_000,
                "maxFeePerGas": 0,
                "maxPriorityFeePerGas": 0,
                "chainId": CHAIN_ID,
            }
        )
        receipt = w3.eth.wait_for_transaction_receipt(
            w3.eth.send_raw_transaction(gov.sign_transaction(tx).raw_transaction)
        )
        assert receipt.status == 1, f"deploying {name} failed"
        return w3.eth.contract(address=receipt.contractAddress, abi=built[name]["abi"])

    usdc = create("MockUSDC")
    ostium = create("MockOstium", usdc.address)
    callbacks = w3.eth.contract(
        address=ostium.functions.callbacks().call(), abi=built["MockCallbacks"]["abi"]
    )
    return Deployed(usdc, ostium, callbacks)
