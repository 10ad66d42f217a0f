"""Hyperliquid through the official SDK (hyperliquid-python-sdk), unmodified.

Opens are IOC limit orders at mid +/- the allowed slippage (Hyperliquid's market-order
practice), priced and sized by its tick rules (engine/venues/hyperliquid_rules.py); closes are
reduce-only IOC orders. Our client order id is the order's `cloid`, so a lost answer is found
again by cloid and never sent twice. Orders are signed by the user's approved agent key for
the user's own account. Every request goes through the shared weight limiter.

The SDK is synchronous (requests): each call runs in a worker thread. It takes floats on its
wire boundary; we hand it values already rounded to Hyperliquid's rules, which its
`float_to_wire` renders back exactly.
"""

from __future__ import annotations

import asyncio
import logging
import time
from collections.abc import Awaitable, Callable, Mapping
from dataclasses import dataclass
from decimal import Decimal
from typing import Any

from eth_account.signers.local import LocalAccount
from hyperliquid.exchange import Exchange
from hyperliquid.info import Info
from hyperliquid.utils.error import ClientError
from hyperliquid.utils.types import Cloid

from engine.markets import MarketInfo, half_initial_at_max
from engine.prices import PriceBook
from engine.venues.base import Fill, OrderLookup, OrderRequest, OrderState, VenueRejected
from engine.venues.hyperliquid_errors import reason_for
from engine.venues.hyperliquid_limits import WeightLimiter, exchange_weight, info_weight
from engine.venues.hyperliquid_rules import (
    MIN_NOTIONAL,
    TESTNET_URL,
    round_price,
    round_size,
)

log = logging.getLogger(__name__)
IOC = {"limit": {"tif": "Ioc"}}
BPS = Decimal(10_000)

SignerLookup = Callable[[str], Awaitable[LocalAccount | None]]


@dataclass(frozen=True, slots=True)
class HyperliquidConfig:
    base_url: str = TESTNET_URL
    default_slippage_bps: Decimal = Decimal(50)
    # the taker fee used for a fill's fee until reconciliation reads the venue's own
    taker_fee_bps: Decimal = Decimal("4.5")
    timeout: float = 10.0


@dataclass(frozen=True, slots=True)
class VenuePosition:
    market: str
    size: Decimal  # signed: positive long, negative short
    entry_price: Decimal


def parse_meta(meta: dict[str, Any]) -> dict[str, MarketInfo]:
    out = {}
    for asset in meta.get("universe", []):
        if asset.get("isDelisted"):
            continue
        max_leverage = Decimal(asset.get("maxLeverage", 50))
        out[asset["name"]] = MarketInfo(
            asset["name"],
            int(asset["szDecimals"]),
            max_leverage,
            MIN_NOTIONAL,
            half_initial_at_max(max_leverage),  # HL: maintenance = half initial at max
        )
    return out


class HyperliquidVenue:
    name = "HYPERLIQUID"

    def __init__(
        self,
        config: HyperliquidConfig,
        signer_for: SignerLookup,
        limiter: WeightLimiter | None = None,
        prices: PriceBook | None = None,
    ) -> None:
        self.config = config
        self.signer_for = signer_for
        self.limiter = limiter or WeightLimiter()
        self.prices = prices
        # empty meta given: the SDK would otherwise fetch meta and spotMeta right here
        self._info = Info(
            config.base_url,
            skip_ws=True,
            meta={"universe": []},
            spot_meta={"universe": [], "tokens": []},
            timeout=config.timeout,
        )
        self._meta: dict[str, Any] = {"universe": []}
        self._markets: dict[str, MarketInfo] = {}
        self._exchanges: dict[tuple[str, str], Exchange] = {}
        self._leverage: dict[tuple[str, str], tuple[Decimal, bool]] = {}
        # per signer: one signed action at a time, each in a later millisecond than the last
        self._signing: dict[str, tuple[asyncio.Lock, list[int]]] = {}

    # -- plumbing ------------------------------------------------------------------------

    async def _call(self, weight: int, fn: Callable[..., Any], *args: Any, **kwargs: Any) -> Any:
        spent = await self.limiter.acquire(weight)
        try:
            return await asyncio.to_thread(fn, *args, **kwargs)
        except ClientError as exc:
            if exc.status_code == 429:
                self.limiter.backoff(10.0)
                raise VenueRejected(
                    "rate_limited", "Hyperliquid is rate limiting us", True
                ) from None
            raise
        finally:
            self.limiter.settle(spent)

    async def _signed(self, exchange: Exchange, fn: Callable[..., Any], *args: Any) -> Any:
        """An /exchange action. The SDK takes its nonce from the clock in milliseconds and
        Hyperliquid refuses a signer's duplicate nonce, so two actions of one signer must not
        share a millisecond: they go one at a time, each after the previous one's clock."""
        lock, last = self._signing.setdefault(exchange.wallet.address, (asyncio.Lock(), [0]))
        async with lock:
            while time.time_ns() // 1_000_000 <= last[0]:  # noqa: ASYNC110 - a clock, not an event
                await asyncio.sleep(0.0005)
            try:
                return await self._call(exchange_weight(1), fn, *args)
            finally:
                last[0] = time.time_ns() // 1_000_000  # not before the SDK read its nonce

    async def info(self, kind: str, body: dict[str, Any]) -> Any:
        return await self._call(info_weight(kind), self._info.post, "/info", {"type": kind, **body})

    async def refresh_markets(self) -> dict[str, MarketInfo]:
        meta = await self.info("meta", {})
        self._meta = meta
        self._markets = parse_meta(meta)
        self._exchanges.clear()  # they hold the old asset table
        return self._markets

    def markets(self) -> Mapping[str, MarketInfo]:
        return self._markets

    async def _exchange(self, account: str) -> Exchange:
        signer = await self.signer_for(account)
        if signer is None:
            raise VenueRejected("agent_not_approved", "no approved agent key for this account")
        key = (signer.address, account.lower())
        exchange = self._exchanges.get(key)
        if exchange is None:
            # meta given: the SDK would otherwise fetch meta and spotMeta on construction
            exchange = Exchange(
                signer,
                self.config.base_url,
                meta=self._meta,
                account_address=account,
                spot_meta={"universe": [], "tokens": []},
                timeout=self.config.timeout,
            )
            self._exchanges[key] = exchange
        return exchange

    async def mid(self, market: str) -> Decimal:
        price = self.prices.price(market) if self.prices is not None else None
        if price is None:
            mids = await self.info("allMids", {})
            if market not in mids:
                raise VenueRejected("no_price", f"no mid price for {market}", retryable=True)
            price = Decimal(mids[market])
        return price

    # -- orders --------------------------------------------------------------------------

    async def place_order(self, order: OrderRequest) -> Fill:
        market = self._markets.get(order.market)
        if market is None:
            raise VenueRejected("not_listed", f"{order.market} is not listed on Hyperliquid")
        exchange = await self._exchange(order.account)
        size = round_size(order.size, market.size_decimals)
        if size <= 0:
            raise VenueRejected("size_rounds_to_zero")
        is_buy = (order.side == "long") != order.reduce_only
        mid = await self.mid(order.market)
        slippage = (order.max_slippage_bps or self.config.default_slippage_bps) / BPS
        limit = round_price(
            mid * (1 + slippage if is_buy else 1 - slippage), market.size_decimals, is_buy
        )
        if not order.reduce_only:
            if size * limit < MIN_NOTIONAL:
                raise VenueRejected("below_min_notional", "Hyperliquid's minimum order is $10")
            await self._set_leverage(exchange, order)
        result = await self._signed(
            exchange,
            exchange.order,
            order.market,
            is_buy,
            float(size),
            float(limit),
            IOC,
            order.reduce_only,
            Cloid.from_str(order.client_order_id),
        )
        return self._fill(order.client_order_id, result)

    async def _set_leverage(self, exchange: Exchange, order: OrderRequest) -> None:
        key = (order.account.lower(), order.market)
        wanted = max(Decimal(1), order.leverage.to_integral_value(rounding="ROUND_DOWN"))
        if self._leverage.get(key) == (wanted, order.isolated):
            return
        result = await self._signed(
            exchange, exchange.update_leverage, int(wanted), order.market, not order.isolated
        )
        if result.get("status") != "ok":
            text = str(result.get("response"))
            raise VenueRejected(reason_for(text), text)
        self._leverage[key] = (wanted, order.isolated)

    def _fill(self, cloid: str, result: dict[str, Any]) -> Fill:
        if result.get("status") != "ok":
            text = str(result.get("response"))
            raise VenueRejected(reason_for(text), text)
        status = result["response"]["data"]["statuses"][0]
        if "filled" in status:
            f = status["filled"]
            price, size = Decimal(f["avgPx"]), Decimal(f["totalSz"])
            fee = price * size * self.config.taker_fee_bps / BPS
            return Fill(cloid, price, size, fee, str(f["oid"]))
        if "error" in status:
            raise VenueRejected(reason_for(status["error"]), status["error"])
        raise VenueRejected("not_filled", f"unexpected order status {status}")

    async def find_order(self, account: str, client_order_id: str) -> Fill | None:
        found = await self.look_up(account, client_order_id)
        if found.state == OrderState.CANCELED:
            raise VenueRejected("not_filled", f"order {found.detail} without a fill")
        return found.fill if found.state == OrderState.FILLED else None

    async def look_up(self, account: str, client_order_id: str) -> OrderLookup:
        answer = await self.info("orderStatus", {"user": account, "oid": client_order_id})
        if answer.get("status") != "order":
            return OrderLookup(OrderState.UNKNOWN)  # unknownOid: never reached Hyperliquid
        order, status = answer["order"]["order"], answer["order"]["status"]
        if status != "filled":
            if status in ("open", "triggered"):
                return OrderLookup(OrderState.OPEN, detail=status)
            # seen and done without a fill (an IOC that found no liquidity): final
            return OrderLookup(OrderState.CANCELED, detail=status)
        oid = order["oid"]
        fills = [f for f in await self.info("userFills", {"user": account}) if f["oid"] == oid]
        if not fills:
            return OrderLookup(OrderState.FILLED_FILLS_PENDING)
        size = sum((Decimal(f["sz"]) for f in fills), Decimal(0))
        price = sum((Decimal(f["px"]) * Decimal(f["sz"]) for f in fills), Decimal(0)) / size
        fee = sum((Decimal(f["fee"]) for f in fills), Decimal(0))
        return OrderLookup(OrderState.FILLED, Fill(client_order_id, price, size, fee, str(oid)))

    # -- reconciliation reads ------------------------------------------------------------

    async def positions(self, account: str) -> list[VenuePosition]:
        state = await self.info("clearinghouseState", {"user": account})
        out = []
        for item in state.get("assetPositions", []):
            p = item["position"]
            if Decimal(p["szi"]) != 0:
                out.append(VenuePosition(p["coin"], Decimal(p["szi"]), Decimal(p["entryPx"] or 0)))
        return out

    async def user_fills(self, account: str) -> list[dict[str, Any]]:
        return list(await self.info("userFills", {"user": account}))

    async def approved_agents(self, account: str) -> list[str]:
        agents = await self.info("extraAgents", {"user": account})
        return [a["address"].lower() for a in agents]
