"""Reading Ostium's outcome of an order from the chain, in integers (the SDK's own tracker
turns amounts into floats, which money must never be): the callbacks contract's settlement
events (fill or cancel, with the opening fee and the rollover charged), the trading contract's
market-timeout events, and the order a mined transaction asked for. Synchronous web3 (the
SDK's); the venue calls these on worker threads."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import UTC, datetime
from decimal import Decimal
from typing import Any

from ostium_python_sdk.abi.callbacks_abi import callbacks_abi
from web3 import Web3
from web3.contract import Contract
from web3.exceptions import TransactionNotFound
from web3.logs import DISCARD

E6, E18 = Decimal(10**6), Decimal(10**18)
REGISTRY_ABI = [
    {
        "inputs": [{"internalType": "bytes32", "name": "name", "type": "bytes32"}],
        "name": "getContractAddress",
        "outputs": [{"internalType": "address", "name": "", "type": "address"}],
        "stateMutability": "view",
        "type": "function",
    }
]
OPEN_FILLED = "MarketOpenExecuted"
CLOSE_FILLED = ("MarketCloseExecutedV2", "MarketCloseExecuted", "LimitCloseExecuted")
CANCELED = ("MarketOpenCanceled", "MarketCloseCanceled")
TIMED_OUT = ("MarketOpenTimeoutExecutedV2", "MarketCloseTimeoutExecutedV2")
INITIATED = ("MarketOpenOrderInitiated", "MarketCloseOrderInitiatedV2")
LIMIT_KINDS = {0: "tp", 1: "sl", 2: "liquidation"}  # Ostium's LimitOrder enum: TP, SL, LIQ


@dataclass(frozen=True, slots=True)
class Settlement:
    filled: bool
    price: Decimal = Decimal(0)
    size: Decimal = Decimal(0)  # an open's size in asset units; 0 for a close (its trade's)
    fee: Decimal = Decimal(0)  # opening fee, or the rollover and funding charged at a close
    usdc_sent: Decimal = Decimal(0)  # a close: what went back to the trader
    cancel_reason: int | None = None
    timed_out: bool = False
    at: datetime | None = None
    trade_id: int = 0
    # a close: the rollover and funding the trade was charged in all, this close included
    # (earlier partial closes charged their share)
    holding_total: Decimal = Decimal(0)
    percentage: int = 10_000  # a close: the share of the trade closed, x100


def order_topic(order_id: int) -> str:
    return "0x" + format(order_id, "064x")


class OstiumChain:
    def __init__(self, w3: Web3, trading: Contract) -> None:
        self.w3 = w3
        self.trading = trading
        self._callbacks: Contract | None = None

    def callbacks(self) -> Contract:
        """Resolved through the registry, as the SDK does."""
        if self._callbacks is None:
            registry = self.w3.eth.contract(
                address=self.trading.functions.registry().call(), abi=REGISTRY_ABI
            )
            address = registry.functions.getContractAddress(b"callbacks".ljust(32, b"\0")).call()
            self._callbacks = self.w3.eth.contract(address=address, abi=callbacks_abi)
        return self._callbacks

    def _decode(self, contract: Contract, names: tuple[str, ...], log: Any) -> tuple[str, Any]:
        for name in names:
            event = getattr(contract.events, name, None)
            if event is None:
                continue
            try:
                return name, event().process_log(log)
            except Exception:
                continue
        return "", None

    def settlement(self, order_id: int, from_block: int) -> Settlement | None:
        """How Ostium ended the order, or None while it waits for the keeper."""
        callbacks = self.callbacks()
        logs = self.w3.eth.get_logs(
            {
                "address": [callbacks.address, self.trading.address],
                "fromBlock": from_block,
                "toBlock": "latest",
                "topics": [None, order_topic(order_id)],
            }
        )
        for log in logs:
            if log["address"] == self.trading.address:
                name, event = self._decode(self.trading, TIMED_OUT, log)
                if event is not None:
                    return Settlement(False, timed_out=True, at=self._time(log))
                continue
            names = (OPEN_FILLED, *CLOSE_FILLED, *CANCELED)
            name, event = self._decode(callbacks, names, log)
            if event is None:
                continue
            args = event["args"]
            if name in CANCELED:
                return Settlement(
                    False, cancel_reason=int(args["cancelReason"]), at=self._time(log)
                )
            receipt = self.w3.eth.get_transaction_receipt(log["transactionHash"])
            if name == OPEN_FILLED:
                trade = args["t"]
                fees = callbacks.events.VaultOpeningFeeCharged().process_receipt(
                    receipt, errors=DISCARD
                )
                return Settlement(
                    True,
                    price=Decimal(trade["openPrice"]) / E18,
                    size=Decimal(args["tradeNotional"]) / E18,
                    fee=sum((Decimal(f["args"]["amount"]) for f in fees), Decimal(0)) / E6,
                    at=self._time(log),
                )
            trade_id = int(args["tradeId"])
            charged = self.holding_charged(trade_id, order_id)
            return Settlement(
                True,
                price=Decimal(args["price"]) / E18,
                fee=charged.get(order_id, Decimal(0)),
                usdc_sent=Decimal(args["usdcSentToTrader"]) / E6,
                at=self._time(log),
                trade_id=trade_id,
                holding_total=sum(charged.values(), Decimal(0)),
                percentage=int(args.get("percentageClosed", 10_000)),
            )
        return None

    def holding_charged(self, trade_id: int, up_to_order: int | None = None) -> dict[int, Decimal]:
        """The rollover and funding Ostium charged a trade, by close order (its partial closes
        and its last), in USDC: from the callbacks' FeesChargedV2 events (integers)."""
        callbacks = self.callbacks()
        event = callbacks.events.FeesChargedV2()
        logs = self.w3.eth.get_logs(
            {
                "address": callbacks.address,
                "fromBlock": 0,
                "toBlock": "latest",
                "topics": [event.topic, None, order_topic(trade_id)],
            }
        )
        out: dict[int, Decimal] = {}
        for log in logs:
            args = event.process_log(log)["args"]
            order_id = int(args["orderId"])
            if up_to_order is None or order_id <= up_to_order:
                units = int(args["rolloverFees"]) + int(args["fundingFees"])
                out[order_id] = out.get(order_id, Decimal(0)) + Decimal(units) / E6
        return out

    def trade_of_open(self, order_id: int, from_block: int = 0) -> int | None:
        """The trade id an executed open order created (its opening-fee event carries it)."""
        callbacks = self.callbacks()
        logs = self.w3.eth.get_logs(
            {
                "address": callbacks.address,
                "fromBlock": from_block,
                "toBlock": "latest",
                "topics": [None, order_topic(order_id)],
            }
        )
        for log in logs:
            receipt = self.w3.eth.get_transaction_receipt(log["transactionHash"])
            fees = callbacks.events.VaultOpeningFeeCharged().process_receipt(
                receipt, errors=DISCARD
            )
            if fees:
                return int(fees[0]["args"]["tradeId"])
        return None

    def close_of_trade(
        self, trade_id: int, from_block: int = 0
    ) -> tuple[int, str, Settlement] | None:
        """How a trade was closed, if it was: (order id, kind, settlement); kind "tp", "sl",
        "liquidation" for Ostium's automation (LimitCloseExecuted), "market" for a close
        order."""
        callbacks = self.callbacks()
        logs = self.w3.eth.get_logs(
            {
                "address": callbacks.address,
                "fromBlock": from_block,
                "toBlock": "latest",
                "topics": [None, None, order_topic(trade_id)],
            }
        )
        for log in logs:
            name, event = self._decode(callbacks, CLOSE_FILLED, log)
            if event is None:
                continue
            order_id = int(event["args"]["orderId"])
            settled = self.settlement(order_id, log["blockNumber"])
            if settled is None:
                continue
            kind = "market"
            if name == "LimitCloseExecuted":
                kind = LIMIT_KINDS.get(int(event["args"]["orderType"]), "liquidation")
            return order_id, kind, settled
        return None

    def order_of(self, tx_hash: str | bytes) -> int | None:
        """The order id a mined transaction asked for (None: it reverted or asked none)."""
        receipt = self.w3.eth.get_transaction_receipt(tx_hash)
        if receipt["status"] != 1:
            return None
        for name in INITIATED:
            found = getattr(self.trading.events, name)().process_receipt(receipt, errors=DISCARD)
            if found:
                return int(found[0]["args"]["orderId"])
        return None

    def mined_with_nonce(
        self, signer: str, trader: str, nonce: int, from_block: int, pair_index: int
    ) -> tuple[bool, int | None]:
        """Whether the signer's transaction with this nonce was mined, and if it asked Ostium
        for an order (found among the trader's order requests since from_block), its id."""
        if self.w3.eth.get_transaction_count(signer, "latest") <= nonce:
            return False, None
        trader_topic = "0x" + trader.lower()[2:].rjust(64, "0")
        topics = [
            [Web3.keccak(text=sig).to_0x_hex() for sig in self._initiated_signatures()],
            None,
        ]
        logs = self.w3.eth.get_logs(
            {
                "address": self.trading.address,
                "fromBlock": from_block,
                "toBlock": "latest",
                "topics": topics,
            }
        )
        for log in logs:
            if trader_topic not in [t.to_0x_hex() for t in log["topics"][1:]]:
                continue
            _, event = self._decode(self.trading, INITIATED, log)
            if event is None or int(event["args"]["pairIndex"]) != pair_index:
                continue  # another market's order (a replica may share the signer)
            tx = self.w3.eth.get_transaction(log["transactionHash"])
            if tx["from"].lower() == signer.lower() and tx["nonce"] == nonce:
                return True, self.order_of(log["transactionHash"])
        return True, None  # the nonce was spent on a transaction that asked nothing: reverted

    def transaction_state(self, tx_hash: str) -> tuple[str, int | None]:
        """("mined", the order id it asked for, None if it reverted), ("pending", None) while
        in the node's mempool, ("unknown", None) if the node never saw it."""
        try:
            self.w3.eth.get_transaction_receipt(tx_hash)
        except TransactionNotFound:
            try:
                self.w3.eth.get_transaction(tx_hash)
            except TransactionNotFound:
                return "unknown", None
            return "pending", None
        return "mined", self.order_of(tx_hash)

    def pending_nonce(self, signer: str) -> int:
        return self.w3.eth.get_transaction_count(signer, "pending")

    def _initiated_signatures(self) -> list[str]:
        out = []
        for entry in self.trading.abi:
            if entry.get("type") == "event" and entry["name"] in INITIATED:
                types = ",".join(i["type"] for i in entry["inputs"])
                out.append(f"{entry['name']}({types})")
        return out

    def _time(self, log: Any) -> datetime:
        block = self.w3.eth.get_block(log["blockNumber"])
        return datetime.fromtimestamp(int(block["timestamp"]), UTC)
