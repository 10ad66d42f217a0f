"""Performance figures checked against values computed here, independently, from a known
series of daily returns (plain float arithmetic and the statistics module, not our code)."""

from __future__ import annotations

import math
import statistics
from decimal import Decimal

from engine.analytics.figures import (
    DayTotals,
    apr,
    drawdowns,
    equity_index,
    figures,
    max_drawdown,
    sharpe,
    sortino,
)

D = Decimal
# ten days of returns on collateral: gains, losses, a quiet day
RETURNS = ["0.02", "-0.01", "0.015", "0", "-0.03", "0.025", "0.01", "-0.005", "0.04", "-0.02"]
SERIES = [D(r) for r in RETURNS]
FLOATS = [float(r) for r in RETURNS]


def close(value: Decimal | None, expected: float, places: int = 10) -> bool:
    assert value is not None
    return abs(float(value) - expected) < 10**-places


def test_sharpe_is_mean_over_sample_deviation_annualised() -> None:
    expected = statistics.mean(FLOATS) / statistics.stdev(FLOATS) * math.sqrt(365)
    assert close(sharpe(SERIES), expected)
    assert round(float(sharpe(SERIES) or 0), 4) == round(expected, 4)


def test_sortino_divides_by_the_downside_deviation_over_all_days() -> None:
    downside = math.sqrt(sum(min(r, 0.0) ** 2 for r in FLOATS) / len(FLOATS))
    expected = statistics.mean(FLOATS) / downside * math.sqrt(365)
    assert close(sortino(SERIES), expected)
    # a record without a losing day has no finite Sortino; one day has no Sharpe
    assert sortino([D("0.01"), D("0.02")]) is None
    assert sharpe([D("0.01")]) is None and sharpe([D("0.01")] * 5) is None


def test_max_drawdown_is_the_worst_fall_of_compounded_equity() -> None:
    equity, peak, worst = 1.0, 1.0, 0.0
    for r in FLOATS:
        equity *= 1 + r
        peak = max(peak, equity)
        worst = max(worst, (peak - equity) / peak)
    assert close(max_drawdown(SERIES), worst, 12)
    # by hand: after +2%, -1%, +1.5%, 0 the peak is 1.02 * 0.99 * 1.015 = 1.024947; -3% falls 3%
    # from it, +2.5% recovers part; the later -0.5% and -2% after the +4% fall less
    assert max_drawdown(SERIES) == D("0.03")
    assert max_drawdown([]) == 0 and max_drawdown([D("0.1"), D("0.2")]) == 0
    assert drawdowns(equity_index([D("-0.5"), D("1")])) == [0, D("0.5"), 0]


def test_apr_is_the_mean_daily_return_times_365() -> None:
    assert close(apr(SERIES), statistics.mean(FLOATS) * 365, 12)
    assert apr(SERIES) == D("0.0045") * 365  # exact in Decimal: 0.045 / 10 days
    assert apr([]) is None


def test_figures_from_days_of_trades() -> None:
    days = [
        DayTotals(2, 1, 1, D(30), D(50), D(-20), D(200), D(1)),  # +15% on the day's margin
        DayTotals(),  # no close: a day that returned 0
        DayTotals(1, 0, 1, D(-10), D(0), D(-10), D(100), D("0.5")),  # -10%
    ]
    f = figures(days)
    assert f.days == 3 and f.trades == 3 and f.realized_pnl == 20
    assert f.daily_returns == (D("0.15"), 0, D("-0.1"))
    assert f.return_on_collateral == D(20) / D(300)
    assert f.win_rate == D(1) / 3
    assert f.average_win == 50 and f.average_loss == -15
    assert f.max_drawdown == D("0.1")
    assert close(
        f.sharpe,
        statistics.mean([0.15, 0, -0.1]) / statistics.stdev([0.15, 0, -0.1]) * math.sqrt(365),
    )
    assert figures([]).win_rate is None and figures([]).sharpe is None
