"""Ostium (synthetic perps on Arbitrum) through ostium-python-sdk, unmodified.

Custody by delegation: the user's wallet made Maxxit's agent key its Ostium delegate
(`setDelegate`) and let Ostium's trading storage take USDC; the agent key signs
`delegatedAction(trader, ...)`, which runs as the trader, so collateral and profits only ever
return to the trader (wallets/ostium_delegation.py builds the user's transactions).

A market order is two steps: the transaction asks for a price and gets an order id; a keeper
fills or cancels it later. `place_order` waits `fill_wait` seconds for the outcome and
otherwise leaves the order pending (a retryable refusal): the engine looks it up later, and a
restart adopts the outcome from the journal (engine/venues/ostium_requests.py), never sending
twice. An order stuck past Ostium's market timeout is ended with the timeout call.

The SDK does not raise on a reverted transaction (receipt status 0, no order id): every call
is preflighted with eth_call for the revert reason in words, and every receipt is checked.
The SDK builds the calls (its contract objects and ABI) and reads (subgraph, prices); the agent
key's transactions are signed here with nonces claimed from the database, so replicas sharing
a key never sign the same one (engine/venues/ostium_nonces.py), and broadcast to
`submit_rpc_url` from our settings (the SDK's default is the public Arbitrum sequencer). A
close for part of a trade sends Ostium's closePercentage. The SDK is synchronous: its calls
run on worker threads.
"""

from __future__ import annotations

import asyncio
import logging
import time
from collections.abc import Awaitable, Callable, Mapping
from dataclasses import dataclass, field, replace
from decimal import ROUND_DOWN, Decimal
from typing import Any

from eth_account.signers.local import LocalAccount
from ostium_python_sdk import OstiumSDK
from ostium_python_sdk.config import NetworkConfig
from web3.exceptions import ContractLogicError

from engine.markets import MarketInfo
from engine.prices import PriceBook
from engine.venues.base import Fill, OrderRequest, VenueRejected
from engine.venues.cost_terms import CostTerms
from engine.venues.ostium_chain import OstiumChain, Settlement
from engine.venues.ostium_errors import CANCEL_REASONS, decode, refusal, revert_data
from engine.venues.ostium_nonces import Journal, NonceBook, Sender
from engine.venues.ostium_pairs import OstiumPair, parse_pair
from engine.venues.ostium_recovery import OstiumRecovery
from engine.venues.ostium_requests import Request, RequestJournal
from engine.venues.ostium_trades import OstiumTrades

log = logging.getLogger(__name__)
E18 = Decimal(10**18)
CENT = Decimal("0.01")
FULL_CLOSE = 10_000  # closePercentage x100
WHOLE = Decimal("0.999")  # a close of at least this share of the trade closes all of it


def close_share(size: Decimal, trade_units: int) -> int:
    """Ostium's closePercentage (x100) for closing `size` of a trade of `trade_units` (1e18):
    the whole trade from 99.9 % up, else rounded down (never more than the books asked),
    at least 0.01 %."""
    whole = Decimal(trade_units) / E18
    if size >= whole * WHOLE:
        return FULL_CLOSE
    return max(1, int(size / whole * FULL_CLOSE))


SignerLookup = Callable[[str], Awaitable[LocalAccount | None]]


@dataclass(frozen=True, slots=True)
class OstiumConfig:
    rpc_url: str
    submit_rpc_url: str  # where signed transactions go; never left to the SDK's default
    graph_url: str
    price_url: str
    contracts: Mapping[str, str] = field(default_factory=lambda: NetworkConfig.mainnet().contracts)
    testnet: bool = False
    fill_wait: float = 20.0  # seconds place_order waits for the keeper before leaving it pending
    poll_interval: float = 0.25
    default_slippage_bps: Decimal = Decimal(200)  # the SDK's default 2 %
    stuck_after: float = 120.0  # seconds pending before the market-timeout call ends it


class OstiumVenue(OstiumRecovery, OstiumTrades):
    name = "OSTIUM"

    def __init__(
        self,
        config: OstiumConfig,
        signer_for: SignerLookup,
        journal: RequestJournal,
        prices: PriceBook | None = None,
    ) -> None:
        self.config = config
        self.signer_for = signer_for
        self.journal = journal
        self.prices = prices
        self.network = NetworkConfig(config.graph_url, dict(config.contracts), config.testnet)
        self._reader: OstiumSDK | None = None
        self._pairs: dict[str, OstiumPair] = {}
        self._markets: dict[str, MarketInfo] = {}
        self._chain: OstiumChain | None = None
        self._sender: Sender | None = None
        self._quotes: dict[str, tuple[Decimal, Decimal, Decimal]] = {}

    # -- plumbing ------------------------------------------------------------------------

    def _sdk(self, key: str | None) -> OstiumSDK:
        sdk = OstiumSDK(
            self.network,
            key,
            self.config.rpc_url,
            use_delegation=True,
            submit_rpc_url=self.config.submit_rpc_url,
        )
        sdk.price.base_url = self.config.price_url.rstrip("/")
        return sdk

    async def reader(self) -> OstiumSDK:
        if self._reader is None:
            reader = await asyncio.to_thread(self._sdk, None)
            o = reader.ostium
            chain_id = await asyncio.to_thread(lambda: o.chain_id)
            self._chain = OstiumChain(reader.w3, o.ostium_trading_contract)
            nonces = NonceBook(self.journal.sessions, chain_id)
            self._sender = Sender(
                reader.w3,
                self.config.submit_rpc_url,
                nonces,
                o.gas_limit,
                o.max_fee_per_gas,
                o.max_priority_fee_per_gas,
            )
            self._reader = reader
        return self._reader

    async def _send(self, signer: LocalAccount, call: Any, journal: Journal | None = None) -> Any:
        """The agent key's transaction, signed here with a nonce claimed from the database
        (engine/venues/ostium_nonces.py); the mined receipt, its status for the caller."""
        await self.reader()
        assert self._sender is not None

        async def nothing(_nonce: int, _tx_hash: str) -> None:
            return None

        return await self._sender.send(signer, call, journal or nothing)

    async def chain(self) -> OstiumChain:
        await self.reader()
        assert self._chain is not None
        return self._chain

    async def _trader_sdk(self, account: str) -> tuple[OstiumSDK, LocalAccount]:
        """The SDK (for its contract objects) and the agent key that signs for this trader,
        once we know the trader made it their delegate."""
        signer = await self.signer_for(account)
        if signer is None:
            raise VenueRejected(
                "delegation_missing", "no Ostium agent key for this wallet: connect it first"
            )
        delegate = await self.delegate_of(account)
        if delegate is None or delegate.lower() != signer.address.lower():
            raise refusal("NoDelegate", "")
        # the SDK's contract objects build the calls; the transactions are signed and sent
        # with nonces from the database (engine/venues/ostium_nonces.py), not by the SDK
        return await self.reader(), signer

    async def _key_rotated_since(self, trader: str, signed_by: str) -> bool:
        """Whether the trader's agent key is no longer the one that signed (a rotation
        switched keys while the transaction was out)."""
        current = await self.signer_for(trader)
        return current is not None and current.address.lower() != signed_by.lower()

    async def delegate_of(self, trader: str) -> str | None:
        trading = (await self.reader()).ostium.ostium_trading_contract
        found = await asyncio.to_thread(trading.functions.delegations(trader).call)
        return None if int(found, 16) == 0 else found

    # -- listing and prices --------------------------------------------------------------

    async def refresh_markets(self) -> dict[str, MarketInfo]:
        raw = await (await self.reader()).subgraph.get_pairs()
        pairs = [parse_pair(p) for p in raw]
        self._pairs = {p.market: p for p in pairs}
        self._markets = {p.market: p.market_info() for p in pairs}
        return self._markets

    def markets(self) -> Mapping[str, MarketInfo]:
        return self._markets

    def pair(self, market: str) -> OstiumPair | None:
        return self._pairs.get(market)

    async def quotes(self) -> dict[str, tuple[Decimal, Decimal, Decimal]]:
        """(bid, mid, ask) per market from Ostium's price API (floats there: read back by
        their shortest repr, which is what the API sent)."""
        rows = await (await self.reader()).price.get_latest_prices()
        by_pair = {(p.base, p.quote): p.market for p in self._pairs.values()}
        out = {}
        for row in rows:
            market = by_pair.get((row.get("from"), row.get("to")))
            if market is not None and row.get("isMarketOpen", True):
                out[market] = tuple(Decimal(repr(row[k])) for k in ("bid", "mid", "ask"))
        self._quotes = out  # type: ignore[assignment]
        return out  # type: ignore[return-value]

    def cost_terms(self, market: str) -> CostTerms | None:
        """A round trip's cost for routing: the opening fee (Ostium charges no closing fee),
        rollover per hour, and the spread of the last quote."""
        pair = self._pairs.get(market)
        if pair is None:
            return None
        bid, mid, ask = self._quotes.get(market, (Decimal(0), Decimal(0), Decimal(0)))
        return CostTerms(
            pair.opening_fee_rate(),
            Decimal(0),
            pair.rollover_per_hour(),
            (ask - bid) / mid if mid else Decimal(0),
            pair.min_position_usd,
            pair.min_leverage,
            pair.max_leverage,
        )

    async def mid(self, market: str) -> Decimal:
        price = self.prices.price(market) if self.prices is not None else None
        if price is None:
            quote = (await self.quotes()).get(market)
            if quote is None:
                raise VenueRejected("no_price", f"no Ostium price for {market}", retryable=True)
            price = quote[1]
        return price

    # -- orders --------------------------------------------------------------------------

    async def place_order(self, order: OrderRequest) -> Fill:
        pair = self._pairs.get(order.market)
        if pair is None:
            raise VenueRejected("not_listed", f"{order.market} is not listed on Ostium")
        sdk, signer = await self._trader_sdk(order.account)
        if order.reduce_only:
            request, call = await self._close_call(sdk, order, pair, signer)
        else:
            request, call = await self._open_call(sdk, order, pair, signer)
        await self._preflight(sdk, order, pair, signer, call)

        async def journal(nonce: int, tx_hash: str) -> None:
            # before the broadcast: a crash after it finds the transaction by its hash
            await self.journal.write(replace(request, nonce=nonce, tx_hash=tx_hash))

        receipt = await self._send(signer, call, journal)
        tx_hash = receipt["transactionHash"].to_0x_hex()
        found = await asyncio.to_thread((await self.chain()).order_of, tx_hash)
        await self.journal.sent(order.client_order_id, tx_hash, found)
        if receipt["status"] != 1 or found is None:
            # mined and reverted (the receipt says so, nothing raises)
            if await self._key_rotated_since(order.account, signer.address):
                # the trader's setDelegate(new key) was mined just before it: a reverted
                # transaction can never fill, so the order goes again under the new key
                raise VenueRejected(
                    "key_rotated",
                    "the agent key changed before the order was mined",
                    retryable=True,
                )
            await self._preflight(sdk, order, pair, signer, call)  # the reason, from a replay
            raise VenueRejected("reverted", f"Ostium reverted the transaction {tx_hash}")
        order_id = found
        settled = await self._await_settlement(order_id, request.from_block)
        if settled is None:
            raise VenueRejected(
                "pending", f"order {order_id} waits for Ostium's keeper", retryable=True
            )
        return self._fill(order.client_order_id, order_id, settled, request)

    async def _open_call(
        self, sdk: OstiumSDK, order: OrderRequest, pair: OstiumPair, signer: LocalAccount
    ) -> tuple[Request, Any]:
        price = await self.mid(order.market)
        leverage = max(Decimal(1), order.leverage.to_integral_value(rounding=ROUND_DOWN))
        if not pair.min_leverage <= leverage <= pair.max_leverage:
            raise self._refusal("WrongLeverage", pair, leverage)
        collateral = (order.size * price / leverage).quantize(CENT, rounding=ROUND_DOWN)
        if collateral * leverage < pair.min_position_usd:
            raise self._refusal("BelowMinLevPos", pair, leverage)
        slippage = order.max_slippage_bps or self.config.default_slippage_bps
        trading = sdk.ostium.ostium_trading_contract
        trade = (
            int(collateral * 10**6),
            int(price.quantize(Decimal("0.00001")) * E18),
            0,
            0,
            signer.address,
            int(leverage * 100),
            pair.id,
            0,
            order.side == "long",
            False,
        )
        inner = trading.encode_abi("openTrade", [trade, ("0x" + "0" * 40, 0), 0, int(slippage)])
        call = trading.functions.delegatedAction(order.account, inner)
        request = await self._request(order, "open", pair, signer)
        return request, call

    async def _close_call(
        self, sdk: OstiumSDK, order: OrderRequest, pair: OstiumPair, signer: LocalAccount
    ) -> tuple[Request, Any]:
        trades, _ = await sdk.get_open_trades(order.account.lower())
        mine = [t for t in trades if int(t["pair"]["id"]) == pair.id]
        if not mine:
            raise refusal("NoTradeFound", order.market)
        trade = mine[0]
        index, units = int(trade["index"]), int(trade["tradeNotional"])
        share = close_share(order.size, units)
        # what that share closes, as the contract divides the trade's size (1e18 units)
        closed = Decimal(units if share == FULL_CLOSE else units * share // FULL_CLOSE) / E18
        price = await self.mid(order.market)
        slippage = order.max_slippage_bps or self.config.default_slippage_bps
        trading = sdk.ostium.ostium_trading_contract
        inner = trading.encode_abi(
            "closeTradeMarket",
            [
                pair.id,
                index,
                share,
                int(price.quantize(Decimal("0.00001")) * E18),
                int(slippage),
            ],
        )
        call = trading.functions.delegatedAction(order.account, inner)
        request = await self._request(order, "close", pair, signer, index, closed)
        return request, call

    async def _request(
        self,
        order: OrderRequest,
        action: str,
        pair: OstiumPair,
        signer: LocalAccount,
        trade_index: int = 0,
        size: Decimal | None = None,
    ) -> Request:
        w3 = (await self.reader()).w3
        block = await asyncio.to_thread(lambda: w3.eth.block_number)
        return Request(
            order.client_order_id,
            action,
            order.account,
            signer.address,
            -1,  # the nonce claimed when it is signed (engine/venues/ostium_nonces.py)
            block,
            pair.id,
            trade_index,
            size,
        )

    async def _preflight(
        self,
        sdk: OstiumSDK,
        order: OrderRequest,
        pair: OstiumPair,
        signer: LocalAccount,
        call: Any,
    ) -> None:
        """eth_call of the exact call: a revert comes back with its reason, in words."""
        try:
            await asyncio.to_thread(call.call, {"from": signer.address})
        except ContractLogicError as exc:
            leverage = max(Decimal(1), order.leverage.to_integral_value(rounding=ROUND_DOWN))
            raise self._refusal(decode(revert_data(exc)), pair, leverage) from None

    def _refusal(self, error: str, pair: OstiumPair, leverage: Decimal) -> VenueRejected:
        return refusal(
            error,
            pair.market,
            pair.min_position_usd,
            leverage,
            (pair.min_leverage, pair.max_leverage),
        )

    async def _await_settlement(self, order_id: int, from_block: int) -> Settlement | None:
        chain = await self.chain()
        deadline = time.monotonic() + self.config.fill_wait
        while True:
            settled = await asyncio.to_thread(chain.settlement, order_id, from_block)
            if settled is not None or time.monotonic() >= deadline:
                return settled
            await asyncio.sleep(self.config.poll_interval)

    def _fill(self, cloid: str, order_id: int, s: Settlement, request: Request) -> Fill:
        if not s.filled:
            if s.timed_out:
                raise VenueRejected("not_filled", f"order {order_id} timed out on Ostium")
            words = CANCEL_REASONS.get(s.cancel_reason or 0, f"reason {s.cancel_reason}")
            raise VenueRejected("not_filled", f"Ostium canceled the order: {words}")
        if request.action == "open":
            return Fill(cloid, s.price, s.size, s.fee, str(order_id), s.at)
        # Ostium charges no closing fee: the rollover and funding it settles with a close are
        # the position's holding costs (replacing what the books accrued while it was open)
        size = request.size or Decimal(0)
        return Fill(cloid, s.price, size, Decimal(0), str(order_id), s.at, -s.holding_total)
