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
class PaperHolding:
    size: Decimal
    entry: Decimal  # average entry price


@dataclass(slots=True)
class PaperAccount:
    """Hedge mode: longs and shorts of a market are separate books, so each signal's
    position stays its own (a short signal never nets away an open long)."""

    balance: Decimal = Decimal(0)  # realized cash: starting balance + PnL - fees
    positions: dict[tuple[str, str], PaperHolding] = field(default_factory=dict)

    def size(self, market: str, side: str) -> Decimal:
        held = self.positions.get((market, side))
        return held.size if held else Decimal(0)


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
        key = (order.market, order.side)
        held = acc.positions.get(key)
        if order.reduce_only and (held is None or held.size < order.size):
            # all or nothing: a close is for one whole position
            raise VenueRejected("no_position", f"no {order.side} {order.market} of that size")
        price = slipped(mark, order.side, not order.reduce_only, self.fees.slippage_bps)
        fee = self.fees.taker_bps * price * order.size / BPS
        if order.reduce_only:
            assert held is not None
            sign = 1 if order.side == "long" else -1
            acc.balance += (price - held.entry) * order.size * sign
            held.size -= order.size
            if held.size == 0:
                del acc.positions[key]
        elif held is None:
            acc.positions[key] = PaperHolding(order.size, price)
        else:
            total = held.size + order.size
            held.entry = (held.entry * held.size + price * order.size) / total
            held.size = total
        acc.balance -= fee
        fill = Fill(order.client_order_id, price, order.size, fee, f"paper-{next(self._ids)}")
        self._fills[order.client_order_id] = fill
        return fill

    def restore(self, positions: list[tuple[str, str, str, Decimal, Decimal]]) -> None:
        """Rebuild the paper book from our open positions (account, market, side, size,
        entry) when this process starts empty; a book that already exists is the truth."""
        if self.accounts or self._fills:
            return
        for account, market, side, size, entry in positions:
            books = self.account(account).positions
            held = books.get((market, side))
            if held is None:
                books[(market, side)] = PaperHolding(size, entry)
            else:
                total = held.size + size
                held.entry = (held.entry * held.size + entry * size) / total
                held.size = total


def round_size(size: Decimal, decimals: int) -> Decimal:
    return size.quantize(Decimal(1).scaleb(-decimals), rounding=ROUND_DOWN)
