"""The local Ostium: `async with OstiumPeer() as peer:` starts anvil with the mock contracts,
serves the subgraph (POST /subgraph) and the price API (GET /PricePublish/latest-prices) on
127.0.0.1, and runs the keeper. ostium-python-sdk is pointed at it with a NetworkConfig of the
local addresses (`peer.network()`), `rpc_url` and `submit_rpc_url` the local chain, and
`sdk.price.base_url` the local price API.

The keeper stands in for Ostium's oracle and automation: it watches the trading contract for
orders asking a price and fills them at the local price (or cancels them, when a test says
so, with a cancel reason), and closes trades whose stop loss or take profit the price crossed.
`peer.keeper.hold = True` leaves orders pending (a keeper that is late, or down)."""

from __future__ import annotations

import asyncio
import contextlib
import threading
from collections.abc import Iterator
from dataclasses import dataclass, field
from decimal import Decimal
from types import TracebackType
from typing import Any

from eth_account.signers.local import LocalAccount
from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import JSONResponse
from starlette.routing import Route
from web3 import Web3

from tests.peers.ostium import subgraph
from tests.peers.ostium.chain import Anvil, Deployed, deploy, dev_account, find_anvil, send
from tests.peers.telegram_api import serve_app

E18 = 10**18
E6 = 10**6
TAKE_PROFIT, STOP_LOSS = 0, 1  # Ostium's LimitOrder types for triggers on a trade


@dataclass
class PeerPair:
    id: int
    base: str
    quote: str
    group: str
    price: Decimal
    min_leverage: int = 100  # x100
    max_leverage: int = 5000
    min_lev_pos: int = 5 * E6  # USD notional, 1e6
    maker_fee_p: int = 30_000  # percent, 1e6: 0.03 %
    taker_fee_p: int = 100_000  # 0.10 %
    rollover_per_block: int = 0  # fraction of the notional per block, 1e18
    spread: Decimal = Decimal(0)  # ask - bid

    def raw(self) -> dict[str, Any]:
        """The pair as the subgraph answers it (BigInts as strings)."""
        zero = "0"
        return {
            "id": str(self.id),
            "from": self.base,
            "to": self.quote,
            "feed": "0x" + f"{self.id:064x}",
            "overnightMaxLeverage": zero,
            "longOI": zero,
            "shortOI": zero,
            "maxOI": str(10**9 * E6),
            "makerFeeP": str(self.maker_fee_p),
            "takerFeeP": str(self.taker_fee_p),
            "makerMaxLeverage": "2000",
            "curFundingLong": zero,
            "curFundingShort": zero,
            "curRollover": zero,
            "totalOpenTrades": zero,
            "totalOpenLimitOrders": zero,
            "accRollover": zero,  # at lastRolloverBlock 0: the SDK adds blocks x the rate
            "lastRolloverBlock": zero,
            "rolloverFeePerBlock": str(self.rollover_per_block),
            "accFundingLong": zero,
            "accFundingShort": zero,
            "lastFundingBlock": zero,
            "maxFundingFeePerBlock": zero,
            "lastFundingRate": zero,
            "hillInflectionPoint": zero,
            "hillPosScale": zero,
            "hillNegScale": zero,
            "springFactor": zero,
            "sFactorUpScaleP": zero,
            "sFactorDownScaleP": zero,
            "lastTradePrice": str(int(self.price * E18)),
            "maxLeverage": str(self.max_leverage),
            "spreadP": zero,
            "group": {
                "id": self.group,
                "name": self.group,
                "minLeverage": str(self.min_leverage),
                "maxLeverage": zero,  # 0: the pair's own maxLeverage applies
                "maxCollateralP": "1500",
                "longCollateral": zero,
                "shortCollateral": zero,
            },
            "fee": {"minLevPos": str(self.min_lev_pos)},
        }


def default_pairs() -> list[PeerPair]:
    return [
        PeerPair(0, "BTC", "USD", "crypto", Decimal(90000)),
        PeerPair(1, "ETH", "USD", "crypto", Decimal(2000)),
        PeerPair(
            2,
            "XAU",
            "USD",
            "commodities",
            Decimal(2000),
            max_leverage=10000,
            min_lev_pos=250 * E6,
            maker_fee_p=40_000,
            taker_fee_p=40_000,
            rollover_per_block=10**12,  # 1e-6 of the notional a block
        ),
        PeerPair(3, "EUR", "USD", "forex", Decimal("1.08"), max_leverage=10000),
        PeerPair(4, "SPX", "USD", "indices", Decimal(5800)),
    ]


@dataclass
class Keeper:
    hold: bool = False  # leave orders pending
    triggers: bool = True  # close trades whose stop loss or take profit the price crossed
    cancel_next: list[int] = field(default_factory=list)  # cancel reasons for the next orders
    filled: list[int] = field(default_factory=list)
    canceled: list[int] = field(default_factory=list)
    triggered: list[tuple[int, int]] = field(default_factory=list)  # (tradeId, orderType)
    seen_orders: int = 0
    waiting: list[int] = field(default_factory=list)


class OstiumPeer:
    def __init__(self, pairs: list[PeerPair] | None = None) -> None:
        self.pairs = {p.id: p for p in (pairs or default_pairs())}
        self.keeper = Keeper()
        self._stack = contextlib.AsyncExitStack()
        self._gov_lock = threading.Lock()
        self._task: asyncio.Task[None] | None = None
        self.anvil: Anvil | None = None
        self.base_url = ""

    # -- lifecycle ---------------------------------------------------------------------------

    async def __aenter__(self) -> OstiumPeer:
        binary = find_anvil()
        if binary is None:
            raise RuntimeError("anvil not installed (.ci/run installs it)")
        self.anvil = await asyncio.to_thread(Anvil, binary)
        self.w3: Web3 = self.anvil.w3
        self.gov: LocalAccount = dev_account(0)
        self.contracts: Deployed = await asyncio.to_thread(deploy, self.w3, self.gov)
        for p in self.pairs.values():
            await asyncio.to_thread(self._set_pair, p)
        # the vault's liquidity: traders' profits are paid from it
        vault = self.contracts.usdc.functions.mint(self.contracts.ostium.address, 10**7 * E6)
        await asyncio.to_thread(self._gov, vault)
        app = Starlette(
            routes=[
                Route("/subgraph", self._subgraph, methods=["POST"]),
                Route("/PricePublish/latest-prices", self._prices, methods=["GET"]),
            ]
        )
        self.base_url = await self._stack.enter_async_context(serve_app(app))
        self._task = asyncio.create_task(self._keep())
        return self

    async def __aexit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        if self._task is not None:
            self._task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._task
        await self._stack.aclose()
        if self.anvil is not None:
            self.anvil.stop()

    # -- what tests use ----------------------------------------------------------------------

    @property
    def rpc_url(self) -> str:
        assert self.anvil is not None
        return self.anvil.url

    @property
    def graph_url(self) -> str:
        return self.base_url + "/subgraph"

    def addresses(self) -> dict[str, str]:
        """The SDK's NetworkConfig contracts: the mock is trading and trading storage both."""
        c = self.contracts
        return {
            "usdc": c.usdc.address,
            "trading": c.ostium.address,
            "tradingStorage": c.ostium.address,
        }

    def pair(self, name: str) -> PeerPair:
        return next(p for p in self.pairs.values() if p.base == name or p.base + p.quote == name)

    def set_price(self, market: str, price: str | Decimal) -> None:
        self.pair(market).price = Decimal(price)

    def fund(self, address: str, usdc: str | Decimal = "10000") -> None:
        """Gas money (anvil_setBalance) and USDC (the mock's open mint)."""
        self.w3.provider.make_request("anvil_setBalance", [address, hex(10**18)])
        amount = int(Decimal(usdc) * E6)
        self._gov(self.contracts.usdc.functions.mint(address, amount))

    def usdc_balance(self, address: str) -> Decimal:
        return Decimal(self.contracts.usdc.functions.balanceOf(address).call()) / E6

    def send_as(self, signer: LocalAccount, call: Any) -> Any:
        """A transaction from a user's own wallet (what they sign on the connect page)."""
        return send(self.w3, signer, call)

    def open_trades(self, trader: str | None = None) -> list[dict[str, Any]]:
        return self._open_trades(trader)

    # -- the keeper --------------------------------------------------------------------------

    async def _keep(self) -> None:
        while True:
            try:
                await asyncio.to_thread(self._keep_once)
            except Exception as exc:  # a test's chain going away mid-poll
                if self.anvil is None or self.anvil.process.poll() is not None:
                    return
                print("ostium keeper:", repr(exc))
            await asyncio.sleep(0.05)

    def _keep_once(self) -> None:
        ostium, k = self.contracts.ostium, self.keeper
        latest = ostium.functions.orderCounter().call()
        k.waiting += range(k.seen_orders + 1, latest + 1)
        k.seen_orders = latest
        if not k.hold:
            for order_id in list(k.waiting):
                k.waiting.remove(order_id)
                order, trade_id, active = ostium.functions.pendingOf(order_id).call()
                if not active:
                    continue  # timed out, or a trigger's own id
                if k.cancel_next:
                    self._gov(ostium.functions.keeperCancel(order_id, k.cancel_next.pop(0)))
                    k.canceled.append(order_id)
                    continue
                pair = self.pairs[order[3][6]]
                is_buy = order[3][8] if trade_id == 0 else not order[3][8]
                self._gov(ostium.functions.keeperExecute(order_id, self._fill_price(pair, is_buy)))
                k.filled.append(order_id)
        for trade in self._open_trades(None) if k.triggers else []:
            pair = self.pairs[int(trade["pair"]["id"])]
            sl, tp = int(trade["stopLossPrice"]), int(trade["takeProfitPrice"])
            price = int(pair.price * E18)
            buy = trade["isBuy"]
            hit_sl = sl and (price <= sl if buy else price >= sl)
            hit_tp = tp and (price >= tp if buy else price <= tp)
            if hit_sl or hit_tp:
                kind = STOP_LOSS if hit_sl else TAKE_PROFIT
                trade_id = int(trade["tradeID"])
                self._gov(ostium.functions.keeperTrigger(trade_id, kind, price))
                k.triggered.append((trade_id, kind))

    def _fill_price(self, pair: PeerPair, is_buy: bool) -> int:
        half = pair.spread / 2
        return int((pair.price + half if is_buy else pair.price - half) * E18)

    # -- plumbing ----------------------------------------------------------------------------

    def _gov(self, call: Any) -> Any:
        with self._gov_lock:
            receipt = send(self.w3, self.gov, call)
        assert receipt.status == 1, f"keeper transaction reverted: {call.fn_name}"
        return receipt

    def _set_pair(self, p: PeerPair) -> None:
        self._gov(
            self.contracts.ostium.functions.setPair(
                p.id,
                p.min_leverage,
                p.max_leverage,
                p.min_lev_pos,
                p.taker_fee_p,
                p.rollover_per_block,
            )
        )

    def _open_trades(self, trader: str | None) -> list[dict[str, Any]]:
        ostium = self.contracts.ostium
        out = []
        for trade_id in range(1, ostium.functions.tradeCounter().call() + 1):
            t, notional, open_block, active, closing = ostium.functions.tradeOf(trade_id).call()
            if not active or (trader and t[4].lower() != trader.lower()):
                continue
            pair = self.pairs[t[6]]
            notional_usd = notional * t[1] // 10**30
            out.append(
                {
                    "id": str(trade_id),
                    "tradeID": str(trade_id),
                    "trader": t[4].lower(),
                    "pair": pair.raw(),
                    "index": str(t[7]),
                    "collateral": str(t[0]),
                    "leverage": str(t[5]),
                    "highestLeverage": str(t[5]),
                    "openPrice": str(t[1]),
                    "stopLossPrice": str(t[3]),
                    "takeProfitPrice": str(t[2]),
                    "isOpen": True,
                    "closeInitiated": closing,
                    "timestamp": str(self.w3.eth.get_block(open_block)["timestamp"]),
                    "isBuy": t[8],
                    "notional": str(notional_usd),
                    "tradeNotional": str(notional),
                    "funding": "0",
                    # the pair's accRollover when the trade opened (accRollover is 0 at block
                    # 0 and grows rolloverFeePerBlock a block): what the SDK subtracts
                    "rollover": str(pair.rollover_per_block * open_block),
                    "tradeType": "trade",
                    "closePrice": None,
                }
            )
        return out

    async def _subgraph(self, request: Request) -> JSONResponse:
        body = await request.json()
        answer = await asyncio.to_thread(
            subgraph.answer, body, lambda: [p.raw() for p in self.pairs.values()], self._open_trades
        )
        return JSONResponse(answer)

    async def _prices(self, _request: Request) -> JSONResponse:
        out = []
        for p in self.pairs.values():
            half = p.spread / 2
            out.append(
                {
                    "feed_id": "0x" + f"{p.id:064x}",
                    "bid": float(p.price - half),
                    "mid": float(p.price),
                    "ask": float(p.price + half),
                    "isMarketOpen": True,
                    "isDayTradingClosed": False,
                    "secondsToToggleIsDayTradingClosed": -1,
                    "from": p.base,
                    "to": p.quote,
                    "timestampSeconds": 1_764_000_000,
                }
            )
        return JSONResponse(out)


def iter_events(receipt: Any, event: Any) -> Iterator[Any]:
    from web3.logs import DISCARD

    yield from event().process_receipt(receipt, errors=DISCARD)
