"""Paper venue: fills at the feed's current price with taker fee and slippage.

Keeps per-account balances and positions like a real exchange account would, and remembers
every client order id it filled, so a retried order returns the original fill.

Margin and liquidation follow Hyperliquid's isolated rule (engine/liquidation.py): each holding
carries the margin its opens posted (notional at the fill / leverage). When the mark reaches a
holding's liquidation price the holding is liquidated: every close of it then fills at that
price, and the equity left in it (the maintenance margin, which Hyperliquid's liquidator keeps)
is charged with the fee, so a liquidated position loses exactly its margin plus the taker fees.
No close ever fills beyond the bankruptcy price: a paper position never loses more than its
collateral. The engine learns of liquidations by calling `liquidations(market, price)` on
each tick, before its stops (see that method).
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from decimal import Decimal
from itertools import count
from typing import Any

from engine.liquidation import bankruptcy_price
from engine.markets import MarketInfo
from engine.prices import PriceBook
from engine.venues.base import (
    Fill,
    OrderLookup,
    OrderRequest,
    OrderResting,
    OrderState,
    VenueRejected,
)
from engine.venues.paper_batch import BatchFills
from engine.venues.paper_books import (
    BPS,
    REDUCE_ONLY,
    FeeConfig,
    PaperAccount,
    PaperHolding,
    opposite,
    other_side,
    slipped,
)
from engine.venues.paper_pending import PendingHoldings, Restored
from engine.venues.paper_undo import CURRENT as UNDO


class PaperVenue(BatchFills):
    def __init__(
        self,
        name: str,
        markets: Mapping[str, MarketInfo],
        prices: PriceBook,
        fees: FeeConfig | None = None,
        starting_balance: Decimal = Decimal(0),
    ) -> None:
        self.name = name
        # a dict is copied; a live view (engine.classify.catalog.VenueListing) is kept, so
        # paper lists what the venues list now, as the classifier reads it
        self._markets = dict(markets) if isinstance(markets, dict) else markets
        self._prices = prices
        self.fees = fees or FeeConfig()
        self._starting_balance = starting_balance
        self.accounts: dict[str, PaperAccount] = {}
        self._fills: dict[str, Fill] = {}
        # limit entries resting until the price crosses them (cloid -> order), and those
        # cancelled before they filled
        self._resting: dict[str, OrderRequest] = {}
        self._canceled: set[str] = set()
        self._ids = count(1)
        self._watch_liquidations()
        # holdings restored at start, built when first needed (engine/venues/paper_pending.py)
        self._pending = PendingHoldings(self._maintenance_margin_rate)
        self._restoring = False

    def markets(self) -> Mapping[str, MarketInfo]:
        return self._markets

    def account(self, account: str) -> PaperAccount:
        if self._pending:
            for restored in list(self._pending.take_account(account)):
                self._restore_one(restored)
        return self._account(account)

    def _account(self, account: str) -> PaperAccount:
        acc = self.accounts.get(account)
        if acc is None:
            acc = self.accounts[account] = PaperAccount(account, self._starting_balance)
        return acc

    async def find_order(self, account: str, client_order_id: str) -> Fill | None:
        return self._fills.get(client_order_id)

    async def look_up(self, account: str, client_order_id: str) -> OrderLookup:
        fill = self._fills.get(client_order_id)
        if fill is not None:
            return OrderLookup(OrderState.FILLED, fill)
        if client_order_id in self._resting:
            return OrderLookup(OrderState.OPEN, detail="open")
        if client_order_id in self._canceled:
            return OrderLookup(OrderState.CANCELED, detail="canceled")
        return OrderLookup(OrderState.UNKNOWN)

    async def cancel_order(self, account: str, market: str, client_order_id: str) -> None:
        if self._resting.pop(client_order_id, None) is not None:
            self._canceled.add(client_order_id)

    def cross_resting(self, market: str, price: Decimal) -> list[str]:
        """Resting limit entries this price reached fill at their limit (as makers, no
        slippage); their client order ids, for the engine to look up and record."""
        filled = []
        for cloid, order in list(self._resting.items()):
            assert order.limit_price is not None
            if order.market != market or not _reached(order.side, price, order.limit_price):
                continue
            del self._resting[cloid]
            try:
                self.fill(order, at=order.limit_price)
            except VenueRejected:
                self._canceled.add(cloid)  # e.g. the holding is being liquidated
            filled.append(cloid)
        return filled

    async def place_order(self, order: OrderRequest) -> Fill:
        return self.fill(order)

    def fill(self, order: OrderRequest, at: Decimal | None = None) -> Fill:
        """Synchronous core of `place_order` (the paper venue never waits on anything).
        `at`: a resting limit order filling at its price, without slippage."""
        done = self._fills.get(order.client_order_id)
        if done is not None:
            return done
        undo = UNDO.get()  # a transaction that may roll back is recording this fill
        if order.client_order_id in self._resting:
            raise OrderResting()
        if order.market not in self._markets:
            raise VenueRejected("market_not_listed", f"{self.name} does not list {order.market}")
        mark = at if at is not None else self._prices.price(order.market)
        if mark is None:
            raise VenueRejected("no_price", f"no price for {order.market} yet", retryable=True)
        slippage = Decimal(0) if at is not None else self.fees.slippage_bps
        if self._beyond_limit(order, mark, slippage, at):
            if order.resting:  # good till cancelled: it waits for the price
                self._resting[order.client_order_id] = order
                if undo is not None:
                    undo.rested(self, order.client_order_id)
                raise OrderResting()
            raise VenueRejected("not_filled", f"the price is past the limit {order.limit_price}")
        if order.size <= 0:
            raise VenueRejected("invalid_size", "order size must be positive")
        created = order.account not in self.accounts and undo is not None
        return self._fill_account(self.account(order.account), order, mark, slippage, created)

    def _fill_account(
        self,
        acc: PaperAccount,
        order: OrderRequest,
        mark: Decimal,
        slippage: Decimal,
        created: bool = False,
    ) -> Fill:
        """`fill` once the order is known to fill now: against `acc`'s books at `mark`.
        `created`: the account did not exist before this fill (for the undo)."""
        undo = UNDO.get()
        before = acc.balance
        if undo is not None:
            undo.touch(self, acc, order.market, created and not acc.positions)
        held = acc.positions.get((order.market, order.side))
        other = acc.positions.get((order.market, opposite(order.side)))
        pieces: list[tuple[Decimal, Decimal, Decimal]] = []  # (size, price, fee) per part
        if order.reduce_only:
            if held is None:  # flat, or the other side: Hyperliquid's refusal, word for word
                raise VenueRejected("reduce_only_increase", REDUCE_ONLY)
            # a reduce-only order never flips: it fills at most what is held (as on Hyperliquid)
            pieces.append(
                self._reduce(
                    acc, order.market, order.side, min(order.size, held.size), mark, slippage
                )
            )
        else:
            if (held is not None and held.liquidated_at is not None) or (
                other is not None and other.liquidated_at is not None
            ):
                # new size on a liquidated holding would be closed at its liquidation price
                raise VenueRejected("liquidating", f"{order.market} is being liquidated")
            rest = order.size
            if other is not None:  # one net position per market: the other side goes first
                closing = min(rest, other.size)
                side = other_side(order)
                pieces.append(self._reduce(acc, order.market, side, closing, mark, slippage))
                rest -= closing
            if rest > 0:
                pieces.append(self._increase(acc, order, rest, mark, slippage))
        if len(pieces) == 1:  # one part (all but a flip): its own values, no sums
            size, price, fee = pieces[0]
        else:
            size = sum((p[0] for p in pieces), Decimal(0))
            price = sum((p[0] * p[1] for p in pieces), Decimal(0)) / size
            fee = sum((p[2] for p in pieces), Decimal(0))
        acc.balance -= fee
        fill = Fill(order.client_order_id, price, size, fee, f"paper-{next(self._ids)}")
        self._fills[order.client_order_id] = fill
        if undo is not None:
            undo.filled(self, acc, order.client_order_id, before)
        return fill

    # -- undoing fills whose recording rolled back (engine/venues/paper_undo.py) ---------

    def forget_fill(self, client_order_id: str) -> None:
        self._fills.pop(client_order_id, None)

    def forget_resting(self, client_order_id: str) -> None:
        self._resting.pop(client_order_id, None)

    def put_back(
        self, acc: PaperAccount, market: str, side: str, held: PaperHolding | None
    ) -> None:
        """`acc`'s holding of (market, side) as it was (None: none)."""
        if held is None:
            acc.positions.pop((market, side), None)
        else:
            acc.positions[(market, side)] = held
        self._track(acc.name, market, side)

    @staticmethod
    def _beyond_limit(
        order: OrderRequest, mark: Decimal, slippage: Decimal, at: Decimal | None
    ) -> bool:
        """An open with a limit whose taker fill (the mark plus slippage) would pass it."""
        if at is not None or order.limit_price is None or order.reduce_only:
            return False
        return not _reached(
            order.side, slipped(mark, order.side, True, slippage), order.limit_price
        )

    def _opening(
        self, order: OrderRequest, size: Decimal, mark: Decimal, slippage: Decimal
    ) -> tuple[Decimal, Decimal, Decimal | None]:
        """What opening or adding `size` fills at: (price, fee, margin posted)."""
        price = slipped(mark, order.side, True, slippage)
        fee = self.fees.taker_bps * price * size / BPS
        # isolated margin as Hyperliquid posts it: the notional at the fill / leverage
        margin = price * size / order.leverage if order.leverage > 0 else None
        return price, fee, margin

    def _increase(
        self,
        acc: PaperAccount,
        order: OrderRequest,
        size: Decimal,
        mark: Decimal,
        slippage: Decimal,
    ) -> tuple[Decimal, Decimal, Decimal]:
        """Open or add `size` on the order's side: (size, price, fee)."""
        price, fee, margin = self._opening(order, size, mark, slippage)
        key = (order.market, order.side)
        held = acc.positions.get(key)
        if held is None:
            acc.positions[key] = PaperHolding(size, price, margin)
        else:
            held.add(size, price, margin)
        self._track(acc.name, order.market, order.side)
        return size, price, fee

    def _reduce(
        self,
        acc: PaperAccount,
        market: str,
        side: str,
        size: Decimal,
        mark: Decimal,
        slippage: Decimal,
    ) -> tuple[Decimal, Decimal, Decimal]:
        """Close `size` of the `side` holding, PnL to the balance: (size, price, fee)."""
        key = (market, side)
        held = acc.positions[key]
        price, fee, pnl = self._close(market, side, size, held, mark, slippage)
        acc.balance += pnl
        if held.margin is not None:
            held.margin -= held.margin * size / held.size
        held.size -= size
        if held.size == 0:
            del acc.positions[key]
        self._track(acc.name, market, side)
        return size, price, fee

    def _close(
        self,
        market: str,
        side: str,
        size: Decimal,
        held: PaperHolding,
        mark: Decimal,
        slippage: Decimal,
    ) -> tuple[Decimal, Decimal, Decimal]:
        """(price, fee, pnl) of a reducing fill of part or all of `held`."""
        sign = 1 if side == "long" else -1
        margin = None if held.margin is None else held.margin * size / held.size
        taker = self.fees.taker_bps / BPS
        liquidation = self._liquidate(market, side, held, mark)
        if liquidation is not None and margin is not None:
            pnl = (liquidation - held.entry) * size * sign
            # the equity left at the liquidation price is the maintenance margin, which
            # Hyperliquid's liquidator keeps: the position loses exactly its margin
            kept = max(Decimal(0), margin + pnl)
            return liquidation, taker * liquidation * size + kept, pnl
        price = slipped(mark, side, False, slippage)
        if margin is not None:  # never beyond the price where the margin is gone
            floor = bankruptcy_price(side, held.entry, size, margin)
            price = max(price, floor) if side == "long" else min(price, floor)
        pnl = (price - held.entry) * size * sign
        return price, taker * price * size, pnl

    def restore(self, positions: Iterable[tuple[Any, ...]], more: bool = False) -> None:
        """Rebuild the paper book from our open positions (account, market, side, size,
        entry[, leverage]) when this process starts empty; a book that already exists is the
        truth. Without the leverage a holding's margin is unknown and it is not liquidated.
        `more`: the next page of the same restore (start-up reads its positions in pages).

        Holdings are built when first needed (`PendingHoldings`); what one account holds
        twice in a market is built at once, in order (books from before netting)."""
        if not more:
            self._restoring = not (self.accounts or self._fills or self._pending)
        if not self._restoring:
            return
        pending, accounts = self._pending, self.accounts
        for account, market, side, size, entry, *rest in positions:
            leverage = rest[0] if rest and rest[0] else None
            if type(leverage) is not Decimal and leverage is not None:
                leverage = Decimal(leverage)
            if account in accounts or not pending.add(account, market, side, size, entry, leverage):
                self.account(account)  # what is pending first: the restore's order
                self._restore_one((account, market, side, size, entry, leverage))

    def _restore_one(self, restored: Restored) -> None:
        """Build one restored holding (account, market, side, size, entry, leverage)."""
        account, market, side, size, entry, leverage = restored
        margin = entry * size / leverage if leverage else None
        books = self._account(account).positions
        other = books.get((market, opposite(side)))
        if other is not None:  # books from before netting: the account holds the net
            netted = min(other.size, size)
            if other.margin is not None:
                other.margin -= other.margin * netted / other.size
            other.size -= netted
            if margin is not None:
                margin -= margin * netted / size
            size -= netted
            if other.size == 0:
                del books[(market, opposite(side))]
            self._track(account, market, opposite(side))
            if size == 0:
                return
        held = books.get((market, side))
        if held is None:
            books[(market, side)] = PaperHolding(size, entry, margin)
        else:
            held.add(size, entry, margin)
        self._track(account, market, side)


def _reached(side: str, price: Decimal, limit: Decimal) -> bool:
    """A long's limit is a price to buy at or below; a short's, to sell at or above."""
    return price <= limit if side == "long" else price >= limit
