"""Performance figures from a series of daily returns and trade counts, all in Decimal.

Conventions (stated once, used everywhere and by the tests):
- a daily return is that day's realized PnL over the margin of the trades closed that day
  (the return a follower got per dollar put up); a calendar day without a close returns 0;
- APR is the simple annualisation of the mean daily return (x 365, not compounded);
- Sharpe is mean / sample standard deviation (n - 1) x sqrt(365), risk-free rate 0;
- Sortino is mean / downside deviation x sqrt(365), the downside deviation being
  sqrt(sum(min(r, 0)^2) / n) over all n days;
- the cumulative return compounds the daily returns (where the equity curve ends);
- the maximum drawdown is the largest fall of the compounded equity index prod(1 + r) from
  its running peak, as a fraction of that peak.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from decimal import Decimal

DAYS_PER_YEAR = 365
ZERO = Decimal(0)
ONE = Decimal(1)


def mean(values: Sequence[Decimal]) -> Decimal | None:
    return sum(values, ZERO) / len(values) if values else None


def sharpe(returns: Sequence[Decimal]) -> Decimal | None:
    """None with fewer than two days or returns that never vary (no risk to divide by)."""
    n = len(returns)
    if n < 2:
        return None
    avg = sum(returns, ZERO) / n
    variance = sum(((r - avg) ** 2 for r in returns), ZERO) / (n - 1)
    if variance == 0:
        return None
    return avg / variance.sqrt() * Decimal(DAYS_PER_YEAR).sqrt()


def sortino(returns: Sequence[Decimal]) -> Decimal | None:
    """None without a losing day (the downside is zero: the ratio has no finite value)."""
    n = len(returns)
    if n < 2:
        return None
    downside = sum((min(r, ZERO) ** 2 for r in returns), ZERO) / n
    if downside == 0:
        return None
    return (sum(returns, ZERO) / n) / downside.sqrt() * Decimal(DAYS_PER_YEAR).sqrt()


def equity_index(returns: Sequence[Decimal]) -> list[Decimal]:
    """1 before the first day, then compounded: [1, 1 + r1, (1 + r1)(1 + r2), ...]."""
    out = [ONE]
    for r in returns:
        out.append(out[-1] * (ONE + r))
    return out


def drawdowns(equity: Sequence[Decimal]) -> list[Decimal]:
    """How far each point is below the highest point so far, as a fraction of it (>= 0)."""
    out, peak = [], None
    for value in equity:
        peak = value if peak is None or value > peak else peak
        out.append((peak - value) / peak if peak > 0 else ZERO)
    return out


def max_drawdown(returns: Sequence[Decimal]) -> Decimal:
    return max(drawdowns(equity_index(returns)), default=ZERO)


def apr(returns: Sequence[Decimal]) -> Decimal | None:
    avg = mean(returns)
    return None if avg is None else avg * DAYS_PER_YEAR


@dataclass(frozen=True, slots=True)
class DayTotals:
    """One scope's closed trades on one day (what a daily metrics row holds)."""

    trades: int = 0
    wins: int = 0
    losses: int = 0
    realized_pnl: Decimal = ZERO
    win_pnl: Decimal = ZERO  # the sum of winning trades' PnL (> 0)
    loss_pnl: Decimal = ZERO  # the sum of losing trades' PnL (< 0)
    margin: Decimal = ZERO  # the collateral those trades held
    fees: Decimal = ZERO

    def __add__(self, other: DayTotals) -> DayTotals:
        return DayTotals(
            self.trades + other.trades,
            self.wins + other.wins,
            self.losses + other.losses,
            self.realized_pnl + other.realized_pnl,
            self.win_pnl + other.win_pnl,
            self.loss_pnl + other.loss_pnl,
            self.margin + other.margin,
            self.fees + other.fees,
        )

    @property
    def return_on_margin(self) -> Decimal:
        return self.realized_pnl / self.margin if self.margin else ZERO


@dataclass(frozen=True, slots=True)
class Figures:
    """What a trader asks of a track record, over a run of calendar days."""

    days: int
    totals: DayTotals
    daily_returns: tuple[Decimal, ...]

    @property
    def trades(self) -> int:
        return self.totals.trades

    @property
    def realized_pnl(self) -> Decimal:
        return self.totals.realized_pnl

    @property
    def return_on_collateral(self) -> Decimal:
        return self.totals.return_on_margin

    @property
    def win_rate(self) -> Decimal | None:
        return Decimal(self.totals.wins) / self.trades if self.trades else None

    @property
    def average_win(self) -> Decimal | None:
        return self.totals.win_pnl / self.totals.wins if self.totals.wins else None

    @property
    def average_loss(self) -> Decimal | None:
        return self.totals.loss_pnl / self.totals.losses if self.totals.losses else None

    @property
    def cumulative_return(self) -> Decimal:
        """The daily returns compounded: where the equity curve ends (1 -> 1 + this)."""
        return equity_index(self.daily_returns)[-1] - ONE

    @property
    def apr(self) -> Decimal | None:
        return apr(self.daily_returns)

    @property
    def sharpe(self) -> Decimal | None:
        return sharpe(self.daily_returns)

    @property
    def sortino(self) -> Decimal | None:
        return sortino(self.daily_returns)

    @property
    def max_drawdown(self) -> Decimal:
        return max_drawdown(self.daily_returns)


def figures(per_day: Sequence[DayTotals]) -> Figures:
    """Figures from consecutive calendar days (quiet days as empty DayTotals)."""
    total = DayTotals()
    for day in per_day:
        total = total + day
    return Figures(len(per_day), total, tuple(d.return_on_margin for d in per_day))
