"""The paper venue's fills of a whole batch at once (engine/venues/paper.py).

A fan-out fills thousands of opens into accounts that hold nothing in the market, and a
tick thousands of reduce-only closes of whole holdings, at one mark: the price, fee, margin,
liquidation level and PnL are the same for every order with the same terms. `fill_many`
works each out once per distinct terms and applies it to every account that shares them,
with the same books, fills, undo records and liquidation watch as `fill` one by one, in the
same order. Every other order of the batch (a flip, an add, a partial close, a limit, a
liquidated holding, a refusal, one whose terms cannot be worked out) goes through `fill`
itself, in its place in the batch; what it raises is that order's answer, and the rest of
the batch goes on.

A base class of `PaperVenue` (and a `LiquidationWatch`): it reads the venue's books.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator, Sequence
from decimal import Decimal
from typing import Any

from engine.liquidation import crossed
from engine.prices import PriceBook
from engine.venues.base import Fill, OrderRequest
from engine.venues.paper_books import (
    FeeConfig,
    PaperAccount,
    PaperHolding,
)
from engine.venues.paper_liquidations import LiquidationWatch
from engine.venues.paper_undo import CURRENT as UNDO

# what a fresh open of given terms fills at: (price, fee, margin, liquidation level)
_Opened = tuple[Decimal, Decimal, Decimal | None, Decimal | None]
# what closing a whole holding of given terms makes: (price, fee, pnl), None if the mark
# liquidates it (that close goes through `fill`)
_Closed = tuple[Decimal, Decimal, Decimal] | None


class BatchFills(LiquidationWatch):
    name: str
    fees: FeeConfig
    _prices: PriceBook
    _fills: dict[str, Fill]
    _resting: dict[str, OrderRequest]
    _ids: Iterator[int]

    # the venue's own (engine/venues/paper.py): annotations, so they never shadow it
    fill: Callable[[OrderRequest], Fill]
    _fill_account: Callable[[PaperAccount, OrderRequest, Decimal, Decimal, bool], Fill]
    _account: Callable[[str], PaperAccount]
    _opening: Callable[
        [OrderRequest, Decimal, Decimal, Decimal], tuple[Decimal, Decimal, Decimal | None]
    ]
    _close: Callable[
        [str, str, Decimal, PaperHolding, Decimal, Decimal], tuple[Decimal, Decimal, Decimal]
    ]

    def fill_many(self, orders: Sequence[OrderRequest]) -> list[Fill | Exception]:
        """What `fill` answers each order, in order: its fill, or the exception it raised
        (a refusal, or anything unexpected, for the caller to handle as it would)."""
        undo = UNDO.get()
        slippage = self.fees.slippage_bps
        marks: dict[str, Decimal | None] = {}
        # by value: equal amounts of other exponents (1.5, 1.50) share one result, equal to
        # the last digit as a number (as engine/fills.q and the sizing memo do)
        opened: dict[tuple[Any, ...], _Opened] = {}
        closed: dict[tuple[Any, ...], _Closed] = {}
        out: list[Fill | Exception] = []
        pending = bool(self._pending)
        for order in orders:
            market, cloid = order.market, order.client_order_id
            if market in marks:
                mark = marks[market]
            else:
                listed = market in self._markets
                mark = marks[market] = self._prices.price(market) if listed else None
            try:
                simple = not (
                    mark is None
                    or order.limit_price is not None
                    or cloid in self._fills
                    or cloid in self._resting
                ) and bool(order.size > 0)
            except Exception:  # a size that does not compare (NaN): `fill` answers it
                simple = False
            if not simple:
                out.append(self._fill_or_error(order))
                continue
            assert mark is not None
            created = undo is not None and order.account not in self.accounts
            try:
                # restored holdings still to build only shrink during a batch: looked at once
                acc = self.account(order.account) if pending else self._account(order.account)
                fill = self._shortcut(acc, order, mark, slippage, created, opened, closed)
                if fill is None:
                    fill = self._fill_account(acc, order, mark, slippage, created)
            except Exception as exc:  # what `fill` would have raised, in its place
                out.append(exc)
                continue
            out.append(fill)
        return out

    def _shortcut(
        self,
        acc: PaperAccount,
        order: OrderRequest,
        mark: Decimal,
        slippage: Decimal,
        created: bool,
        opened: dict[tuple[Any, ...], _Opened],
        closed: dict[tuple[Any, ...], _Closed],
    ) -> Fill | None:
        """The fill of a fresh open or a whole close, from terms worked out once per batch;
        None for any other order, or when working its terms out fails (before anything is
        booked): `fill`'s own core then books it, or raises, as `fill` would."""
        market, side = order.market, order.side
        positions = acc.positions
        held = positions.get((market, side))
        if positions.get((market, "short" if side == "long" else "long")) is not None:
            return None
        if held is None and not order.reduce_only:
            try:
                key = (market, side, order.size, order.leverage)
                terms = opened.get(key)
                if terms is None:
                    terms = opened[key] = self._opened(market, side, order, mark, slippage)
            except Exception:
                return None
            return self._open_fresh(acc, order, terms, created)
        if held is None or not order.reduce_only or held.liquidated_at is not None:
            return None
        try:
            if order.size < held.size:
                return None
            ckey = (market, side, held.size, held.entry, held.margin)
            if ckey in closed:
                ended = closed[ckey]
            else:
                ended = closed[ckey] = self._closed(market, side, held, mark, slippage)
        except Exception:
            return None
        return None if ended is None else self._close_whole(acc, order, held, ended, created)

    def _fill_or_error(self, order: OrderRequest) -> Fill | Exception:
        try:
            return self.fill(order)
        except Exception as exc:
            return exc

    def _opened(
        self, market: str, side: str, order: OrderRequest, mark: Decimal, slippage: Decimal
    ) -> _Opened:
        """`_increase`'s arithmetic for a holding that did not exist."""
        price, fee, margin = self._opening(order, order.size, mark, slippage)
        level = self._liquidation_price(market, side, PaperHolding(order.size, price, margin))
        return price, fee, margin, level

    def _open_fresh(
        self, acc: PaperAccount, order: OrderRequest, terms: _Opened, created: bool
    ) -> Fill:
        """`fill` of an open into an account that holds nothing in the market."""
        undo = UNDO.get()
        price, fee, margin, level = terms
        market, side = order.market, order.side
        before = acc.balance
        if undo is not None:
            undo.touch(self, acc, market, created and not acc.positions)  # type: ignore[arg-type]
        acc.positions[(market, side)] = PaperHolding(order.size, price, margin)
        # as `_track`, with the level worked out once for these terms
        self._unwatch(market, (acc.name, side))
        if level is not None and level > 0:
            self._watch.setdefault(market, {})[(acc.name, side)] = level
        acc.balance -= fee
        return self._filled(acc, order, price, order.size, fee, before)

    def _closed(
        self, market: str, side: str, held: PaperHolding, mark: Decimal, slippage: Decimal
    ) -> _Closed:
        """`_close`'s arithmetic for the whole of `held`; None if the mark liquidates it
        (checked first, so `_close` finds it not liquidated and changes nothing)."""
        liquidation = self._liquidation_price(market, side, held)
        if liquidation is not None and liquidation > 0 and crossed(side, liquidation, mark):
            return None
        return self._close(market, side, held.size, held, mark, slippage)

    def _close_whole(
        self,
        acc: PaperAccount,
        order: OrderRequest,
        held: PaperHolding,
        ended: tuple[Decimal, Decimal, Decimal],
        created: bool,
    ) -> Fill:
        """`fill` of a reduce-only order for at least the whole holding, not liquidated."""
        undo = UNDO.get()
        price, fee, pnl = ended
        market, side = order.market, order.side
        before = acc.balance
        if undo is not None:
            undo.touch(self, acc, market, created and not acc.positions)  # type: ignore[arg-type]
        size = held.size
        acc.balance += pnl
        del acc.positions[(market, side)]
        self._unwatch(market, (acc.name, side))  # as `_track` for a holding that is gone
        acc.balance -= fee
        return self._filled(acc, order, price, size, fee, before)

    def _filled(
        self,
        acc: PaperAccount,
        order: OrderRequest,
        price: Decimal,
        size: Decimal,
        fee: Decimal,
        before: Decimal,
    ) -> Fill:
        fill = Fill(order.client_order_id, price, size, fee, f"paper-{next(self._ids)}")
        self._fills[order.client_order_id] = fill
        undo = UNDO.get()
        if undo is not None:
            undo.filled(self, acc, order.client_order_id, before)  # type: ignore[arg-type]
        return fill
