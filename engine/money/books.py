"""A position's money from its pieces: the open fill, then each close order's fill (a close
that filled in part leaves the rest open, closed by the next attempt).

Each piece's price PnL is computed on its own fill, `(price - entry) * size` (negated for a
short), so the pieces sum exactly to what the venue reports per fill (Hyperliquid's
`closedPnl`) whenever the venue's prices are exact; averaging the exit prices first would not.
Realized PnL = price PnL of the pieces - open fee - close fees + funding.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from decimal import Decimal

from storage.types import quantize

ZERO = Decimal(0)


@dataclass(frozen=True, slots=True)
class Piece:
    """One order's fill: what the venue traded, at what average price, for what fee."""

    price: Decimal
    size: Decimal
    fee: Decimal


def piece_pnl(side: str, entry: Decimal, price: Decimal, size: Decimal) -> Decimal:
    gross = (price - entry) * size
    return quantize(gross if side == "long" else -gross)


@dataclass(frozen=True, slots=True)
class Books:
    entry_price: Decimal
    opened_size: Decimal
    open_fee: Decimal
    closed_size: Decimal
    closed_gross_pnl: Decimal
    close_fee: Decimal
    exit_price: Decimal | None  # size-weighted over the close pieces

    @property
    def held(self) -> Decimal:
        return self.opened_size - self.closed_size

    def realized(self, funding: Decimal) -> Decimal:
        return quantize(self.closed_gross_pnl - self.open_fee - self.close_fee + funding)


def exit_price(closes: Sequence[Piece]) -> Decimal | None:
    size = sum((c.size for c in closes), ZERO)
    if size <= 0:
        return None
    if len(closes) == 1:
        return quantize(closes[0].price)
    return quantize(sum((c.price * c.size for c in closes), ZERO) / size)


def books_of(side: str, opened: Piece, closes: Sequence[Piece]) -> Books:
    """The position's money from its open fill and its close fills, oldest first."""
    entry = quantize(opened.price)
    return Books(
        entry_price=entry,
        opened_size=opened.size,
        open_fee=quantize(opened.fee),
        closed_size=sum((c.size for c in closes), ZERO),
        closed_gross_pnl=sum(
            (piece_pnl(side, entry, quantize(c.price), c.size) for c in closes), ZERO
        ),
        close_fee=sum((quantize(c.fee) for c in closes), ZERO),
        exit_price=exit_price(closes),
    )
