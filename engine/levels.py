"""Stop loss, take profit and trailing stop levels, and the reference rule for one update.

`RiskLevels.step` is the specification written as plainly as possible; the monitor's index
must close exactly the same positions at exactly the same updates (tests compare the two).
Long positions are described; shorts mirror every comparison.
"""

from __future__ import annotations

from dataclasses import dataclass
from decimal import Decimal

ONE = Decimal(1)


@dataclass(frozen=True, slots=True)
class RiskParams:
    stop_loss_pct: Decimal
    take_profit_pct: Decimal | None = None
    trailing_activation_pct: Decimal | None = None
    trailing_distance_pct: Decimal | None = None


@dataclass(slots=True)
class RiskLevels:
    side: str
    entry: Decimal
    stop: Decimal
    take_profit: Decimal | None
    activation: Decimal | None
    distance: Decimal | None
    peak: Decimal  # highest (long) / lowest (short) price seen since entry
    trailing_active: bool = False

    @classmethod
    def initial(cls, side: str, entry: Decimal, p: RiskParams) -> RiskLevels:
        long = side == "long"
        up, down = (ONE, -ONE) if long else (-ONE, ONE)
        trailing = p.trailing_activation_pct is not None and p.trailing_distance_pct is not None
        return cls(
            side=side,
            entry=entry,
            stop=entry * (ONE + down * p.stop_loss_pct),
            take_profit=None
            if p.take_profit_pct is None
            else entry * (ONE + up * p.take_profit_pct),
            activation=entry * (ONE + up * p.trailing_activation_pct) if trailing else None,
            distance=p.trailing_distance_pct if trailing else None,
            peak=entry,
        )

    def step(self, price: Decimal) -> str | None:
        """Apply one price update; return the close reason if it closes the position."""
        if self.side == "long":
            if price > self.peak:
                self.peak = price
            if (
                self.activation is not None
                and not self.trailing_active
                and price >= self.activation
            ):
                self.trailing_active = True
            if self.trailing_active and self.distance is not None:
                self.stop = max(self.stop, self.peak * (ONE - self.distance))
            if self.take_profit is not None and price >= self.take_profit:
                return "take_profit"
            if price <= self.stop:
                return "trailing_stop" if self.trailing_active else "stop_loss"
            return None
        if price < self.peak:
            self.peak = price
        if self.activation is not None and not self.trailing_active and price <= self.activation:
            self.trailing_active = True
        if self.trailing_active and self.distance is not None:
            self.stop = min(self.stop, self.peak * (ONE + self.distance))
        if self.take_profit is not None and price <= self.take_profit:
            return "take_profit"
        if price >= self.stop:
            return "trailing_stop" if self.trailing_active else "stop_loss"
        return None
