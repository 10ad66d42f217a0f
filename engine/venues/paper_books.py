"""The paper venue's books: accounts, holdings, liquidations and fees, as a Hyperliquid
account keeps them (engine/venues/paper.py fills orders against them)."""

from __future__ import annotations

from dataclasses import dataclass, field
from decimal import ROUND_DOWN, Decimal

from engine.venues.base import OrderRequest

BPS = Decimal(10_000)
REDUCE_ONLY = "Reduce only order would increase position."  # Hyperliquid's wording


def opposite(side: str) -> str:
    return "short" if side == "long" else "long"


def other_side(order: OrderRequest) -> str:
    return opposite(order.side)


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
    margin: Decimal | None = None  # collateral posted; None when unknown (restored, no leverage)
    liquidated_at: Decimal | None = None  # the liquidation price it closes at, once liquidated

    def add(self, size: Decimal, price: Decimal, margin: Decimal | None) -> None:
        total = self.size + size
        self.entry = (self.entry * self.size + price * size) / total
        self.size = total
        self.margin = None if self.margin is None or margin is None else self.margin + margin


@dataclass(frozen=True, slots=True)
class PaperLiquidation:
    """A holding the mark liquidated; its closes fill at `price`."""

    account: str
    market: str
    side: str
    size: Decimal
    price: Decimal


@dataclass(slots=True)
class PaperAccount:
    """One net position per market, as on Hyperliquid: `positions` is keyed (market, side)
    but never holds both sides of a market. An order of the other side reduces the holding
    first and opens the rest, if any, on its own side (a flip); a reduce-only order fills
    at most what is held and is refused on a flat market or the other side."""

    name: str = ""
    balance: Decimal = Decimal(0)  # realized cash: starting balance + PnL - fees
    positions: dict[tuple[str, str], PaperHolding] = field(default_factory=dict)

    def size(self, market: str, side: str) -> Decimal:
        held = self.positions.get((market, side))
        return held.size if held else Decimal(0)


def round_size(size: Decimal, decimals: int) -> Decimal:
    return size.quantize(Decimal(1).scaleb(-decimals), rounding=ROUND_DOWN)
