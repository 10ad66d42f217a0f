"""Paper venue: fills at the feed's current price with taker fee and slippage.

Keeps per-account balances and positions like a real exchange account would, and remembers
every client order id it filled, so a retried order returns the original fill.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from decimal import ROUND_DOWN, Decimal
from itertools import count

from engine.markets import MarketInfo
from engine.prices import PriceBook
from engine.venues.base import Fill, OrderRequest, VenueRejected

BPS = Decimal(10_000)


@dataclass(frozen=True, slots=True)
class FeeConfig:
    taker_bps: Decimal = Decimal("4.5")
    slippage_bps: Decimal = Decimal(5)


def slipped(price: Decimal, side: str, opening: bool, slippage_bps: Decimal) -> Decimal:
    """The fill price moved against the trader: buying pays more, selling receives less."""
    buying = (side == "long") == opening
    move = price * slippage_bps / BPS
    return price + move if buying else price - move


@dataclass(slots=True)
class PaperAccount:
    balance: Decimal = Decimal(0)  # realized cash: starting balance + PnL - fees
    positions: dict[str, Decimal] = field(default_factory=dict)  # market -> signed size


class PaperVenue:
    def __init__(
        self,
        name: str,
        markets: Mapping[str, MarketInfo],
        prices: PriceBook,
        fees: FeeConfig | None = None,
        starting_balance: Decimal = Decimal(0),
    ) -> None:
        self.name = name
        self._markets = dict(markets)
        self._prices = prices
        self.fees = fees or FeeConfig()
        self._starting_balance = starting_balance
        self.accounts: dict[str, PaperAccount] = {}
        self._fills: dict[str, Fill] = {}
        self._entry: dict[tuple[str, str], Decimal] = {}  # (account, market) -> avg entry
        self._ids = count(1)

    def markets(self) -> Mapping[str, MarketInfo]:
        return self._markets

    def account(self, account: str) -> PaperAccount:
        acc = self.accounts.get(account)
        if acc is None:
            acc = self.accounts[account] = PaperAccount(balance=self._starting_balance)
        return acc

    async def find_order(self, account: str, client_order_id: str) -> Fill | None:
        return self._fills.get(client_order_id)

    async def place_order(self, order: OrderRequest) -> Fill:
        return self.fill(order)

    def fill(self, order: OrderRequest) -> Fill:
        """Synchronous core of `place_order` (the paper venue never waits on anything)."""
        done = self._fills.get(order.client_order_id)
        if done is not None:
            return done
        if order.market not in self._markets:
            raise VenueRejected("market_not_listed", f"{self.name} does not list {order.market}")
        mark = self._prices.price(order.market)
        if mark is None:
            raise VenueRejected("no_price", f"no price for {order.market} yet", retryable=True)
        if order.size <= 0:
            raise VenueRejected("invalid_size", "order size must be positive")
        acc = self.account(order.account)
        held = acc.positions.get(order.market, Decimal(0))
        sign = 1 if order.side == "long" else -1
        if order.reduce_only:
            if held == 0 or (held > 0) != (sign > 0):
                raise VenueRejected("no_position", f"no {order.side} {order.market} to reduce")
            size = min(order.size, abs(held))
        else:
            size = order.size
        price = slipped(mark, order.side, not order.reduce_only, self.fees.slippage_bps)
        fee = self.fees.taker_bps * price * size / BPS
        self._apply(acc, order, sign, held, size, price)
        acc.balance -= fee
        fill = Fill(order.client_order_id, price, size, fee, f"paper-{next(self._ids)}")
        self._fills[order.client_order_id] = fill
        return fill

    def _apply(
        self,
        acc: PaperAccount,
        order: OrderRequest,
        sign: int,
        held: Decimal,
        size: Decimal,
        price: Decimal,
    ) -> None:
        key = (order.account, order.market)
        if order.reduce_only:
            entry = self._entry.get(key, price)
            acc.balance += (price - entry) * size * sign
            left = held - sign * size
        else:
            left = held + sign * size
            prev = abs(held)
            self._entry[key] = (self._entry.get(key, price) * prev + price * size) / (prev + size)
        if left == 0:
            acc.positions.pop(order.market, None)
            self._entry.pop(key, None)
        else:
            acc.positions[order.market] = left

    def restore(self, positions: list[tuple[str, str, str, Decimal, Decimal]]) -> None:
        """Rebuild the paper book from our open positions (account, market, side, size,
        entry) when this process starts empty; a book that already exists is the truth."""
        if self.accounts or self._fills:
            return
        for account, market, side, size, entry in positions:
            acc = self.account(account)
            held = acc.positions.get(market, Decimal(0))
            add = size if side == "long" else -size
            key = (account, market)
            prev = self._entry.get(key, entry)
            self._entry[key] = (prev * abs(held) + entry * size) / (abs(held) + size)
            acc.positions[market] = held + add


def round_size(size: Decimal, decimals: int) -> Decimal:
    return size.quantize(Decimal(1).scaleb(-decimals), rounding=ROUND_DOWN)
