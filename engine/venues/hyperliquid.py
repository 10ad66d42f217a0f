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
import functools
import logging
import time
from collections.abc import Awaitable, Callable, Mapping
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from decimal import Decimal
from typing import Any

from eth_account.signers.local import LocalAccount
from hyperliquid.exchange import Exchange
from hyperliquid.info import Info
from hyperliquid.utils.error import ClientError
from hyperliquid.utils.types import Cloid

from engine.markets import MarketInfo, markets_from_meta
from engine.prices import PriceBook
from engine.venues.base import (
    Fill,
    OrderLookup,
    OrderRequest,
    OrderResting,
    OrderState,
    VenueRejected,
)
from engine.venues.hyperliquid_errors import refusal
from engine.venues.hyperliquid_history import (
    FundingPayment,
    VenueFill,
    combine,
    fills_by_time,
    funding_by_time,
)
from engine.venues.hyperliquid_limits import WeightLimiter, exchange_weight, info_weight
from engine.venues.hyperliquid_rules import (
    MIN_NOTIONAL,
    TESTNET_URL,
    round_price,
    round_size,
)

log = logging.getLogger(__name__)
IOC = {"limit": {"tif": "Ioc"}}
GTC = {"limit": {"tif": "Gtc"}}  # a limit entry resting until filled or cancelled
BPS = Decimal(10_000)
OPEN_STATUSES = {"open", "triggered"}
# Refused before matching (HL's "...Rejected" statuses): such an order never has a fill.
# Every other final status ("filled", "canceled", "marginCanceled", ...) may have fills.
FILLS_AFTER_STATUS_MS = 1_000  # an order's last fill is in the block of its final status
CANCEL_SETTLE_MS = 10_000  # a fresh cancel whose part-fills /info may not show yet

SignerLookup = Callable[[str], Awaitable[LocalAccount | None]]


@dataclass(frozen=True, slots=True)
class HyperliquidConfig:
    base_url: str = TESTNET_URL
    default_slippage_bps: Decimal = Decimal(50)
    # the fee rate of a fill's estimated fee, until `fills_of` reads the fee HL charged
    taker_fee_bps: Decimal = Decimal("4.5")
    timeout: float = 10.0


@dataclass(frozen=True, slots=True)
class VenuePosition:
    market: str
    size: Decimal  # signed: positive long, negative short
    entry_price: Decimal


# the tradable perps of a `meta` answer, shared with the paper venue's offline listing
parse_meta = markets_from_meta


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
        self._urgent_threads = ThreadPoolExecutor(8, thread_name_prefix="hl-urgent")

    # -- plumbing ------------------------------------------------------------------------

    async def _call(
        self, weight: int, fn: Callable[..., Any], *args: Any, urgent: bool = False, **kwargs: Any
    ) -> Any:
        spent = await self.limiter.acquire(weight, urgent=urgent)
        try:
            # the SDK is synchronous: urgent calls (closes) run on threads of their own, so a
            # fan-out occupying the shared pool never holds a close back
            pool = self._urgent_threads if urgent else None
            call = functools.partial(fn, *args, **kwargs)
            return await asyncio.get_running_loop().run_in_executor(pool, call)
        except ClientError as exc:
            if exc.status_code == 429:
                self.limiter.backoff(10.0)
                raise VenueRejected(
                    "rate_limited", "Hyperliquid is rate limiting us", True
                ) from None
            raise
        finally:
            self.limiter.settle(spent)

    async def _signed(
        self, exchange: Exchange, fn: Callable[..., Any], *args: Any, urgent: bool = False
    ) -> Any:
        """An /exchange action. The SDK takes its nonce from the clock in milliseconds and
        Hyperliquid refuses a signer's duplicate nonce, so two actions of one signer must not
        share a millisecond: they go one at a time, each after the previous one's clock."""
        lock, last = self._signing.setdefault(exchange.wallet.address, (asyncio.Lock(), [0]))
        async with lock:
            while time.time_ns() // 1_000_000 <= last[0]:  # noqa: ASYNC110 - a clock, not an event
                await asyncio.sleep(0.0005)
            try:
                return await self._call(exchange_weight(1), fn, *args, urgent=urgent)
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
        if order.limit_price is not None and not order.reduce_only:
            # a call's entry (engine/limit_orders.py): never worse than it, rounded toward it
            cap = round_price(order.limit_price, market.size_decimals, not is_buy)
            limit = cap if order.resting else min(limit, cap) if is_buy else max(limit, cap)
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
            GTC if order.resting else IOC,
            order.reduce_only,
            Cloid.from_str(order.client_order_id),
            urgent=order.reduce_only,
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
            raise refusal(str(result.get("response")))
        self._leverage[key] = (wanted, order.isolated)

    def _fill(self, cloid: str, result: dict[str, Any]) -> Fill:
        if result.get("status") != "ok":
            raise refusal(str(result.get("response")))
        status = result["response"]["data"]["statuses"][0]
        if "filled" in status:
            f = status["filled"]
            price, size = Decimal(f["avgPx"]), Decimal(f["totalSz"])
            fee = price * size * self.config.taker_fee_bps / BPS
            return Fill(cloid, price, size, fee, str(f["oid"]))
        if "error" in status:
            raise refusal(status["error"])
        if "resting" in status:  # a limit entry waiting at its price: looked up by cloid
            raise OrderResting(f"resting as {status['resting'].get('oid')}")
        raise VenueRejected("not_filled", f"unexpected order status {status}")

    async def cancel_order(self, account: str, market: str, client_order_id: str) -> None:
        """Cancel a resting order by its cloid; one already filled or gone is left as it is
        (its look-up says which)."""
        exchange = await self._exchange(account)
        await self._signed(
            exchange, exchange.cancel_by_cloid, market, Cloid.from_str(client_order_id)
        )

    async def find_order(self, account: str, client_order_id: str) -> Fill | None:
        found = await self.look_up(account, client_order_id)
        if found.state == OrderState.CANCELED:
            raise VenueRejected("not_filled", f"order {found.detail} without a fill")
        return found.fill if found.state == OrderState.FILLED else None

    async def look_up(self, account: str, client_order_id: str) -> OrderLookup:
        """What Hyperliquid knows of an order we may have sent, by cloid: UNKNOWN (never
        reached it: the only answer that allows sending), OPEN, CANCELED (final, no fill),
        FILLED with the order's own fills (price, size and the fee charged), or
        FILLED_FILLS_PENDING (filled, its fills not visible yet: look again later).

        The fills are read by time, from the order's placement to its final status
        (`userFillsByTime`), so an order older than the account's last 2,000 fills is still
        found. An order canceled after filling in part (an IOC's rest, `marginCanceled`) is
        FILLED with what filled. Cost: 2 weight, plus 20 when the order is done."""
        answer = await self.info("orderStatus", {"user": account, "oid": client_order_id})
        if answer.get("status") != "order":
            return OrderLookup(OrderState.UNKNOWN)  # unknownOid: never reached Hyperliquid
        order, status = answer["order"]["order"], answer["order"]["status"]
        if status in OPEN_STATUSES:
            return OrderLookup(OrderState.OPEN, detail=status)
        if status.endswith("Rejected") or status == "rejected":
            return OrderLookup(OrderState.CANCELED, detail=status)  # refused before matching
        status_ms = int(answer["order"]["statusTimestamp"])
        fills = await self.fills_of(
            account, int(order["oid"]), int(order["timestamp"]), status_ms + FILLS_AFTER_STATUS_MS
        )
        if fills:
            return OrderLookup(OrderState.FILLED, combine(client_order_id, fills), status)
        if status == "filled" or time.time() * 1000 - status_ms < CANCEL_SETTLE_MS:
            # filled (or canceled just now, maybe after a part-fill) with no fill visible yet:
            # never written off, never sent again; the engine looks again later
            return OrderLookup(OrderState.FILLED_FILLS_PENDING, detail=status)
        return OrderLookup(OrderState.CANCELED, detail=status)  # done, and nothing filled

    # -- what Hyperliquid booked: real fees, funding -------------------------------------

    async def fills_since(
        self, account: str, since_ms: int, until_ms: int | None = None
    ) -> list[VenueFill]:
        """The account's fills from since_ms (inclusive) on, oldest first, each with the fee
        Hyperliquid charged (paged `userFillsByTime`; reaches its 10,000 most recent fills).
        Cost: 20 weight a page of up to 2,000 fills, plus 1 per 20 fills."""
        return await fills_by_time(self.info, account, since_ms, until_ms)

    async def fills_of(
        self,
        account: str,
        order_id: int | str,
        since_ms: int,
        until_ms: int | None = None,
    ) -> list[VenueFill]:
        """One order's fills (by oid, our `Fill.venue_order_id`, or by cloid) from since_ms
        on, with the fees Hyperliquid charged; [] while none is visible. How the engine
        settles estimated fees with it: engine/venues/hyperliquid_history.py."""
        fills = await self.fills_since(account, since_ms, until_ms)
        if isinstance(order_id, str):
            wanted = order_id.lower()
            return [f for f in fills if (f.cloid or "").lower() == wanted]
        return [f for f in fills if f.oid == order_id]

    async def funding_payments(
        self, account: str, since_ms: int, until_ms: int | None = None
    ) -> list[FundingPayment]:
        """The funding Hyperliquid paid or charged the account's positions from since_ms
        (inclusive) on, oldest first. When and how the engine accrues it:
        engine/venues/hyperliquid_history.py."""
        return await funding_by_time(self.info, account, since_ms, until_ms)

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
