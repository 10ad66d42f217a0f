"""What a round trip costs on a venue, as fractions of the notional (engine/route_cost.py
compares venues with it)."""

from __future__ import annotations

from dataclasses import dataclass
from decimal import Decimal


@dataclass(frozen=True, slots=True)
class CostTerms:
    open_fee: Decimal
    close_fee: Decimal
    holding_per_hour: Decimal  # funding or rollover paid while open (negative: received)
    spread: Decimal  # ask - bid over mid: a round trip crosses it once in all
    min_notional: Decimal
    min_leverage: Decimal
    max_leverage: Decimal
    impact: Decimal = Decimal(0)  # walking the book past its top for this size, both legs
    too_thin: bool = False  # the book (or quotes) cannot take this size
