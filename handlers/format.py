"""Numbers as traders read them."""

from __future__ import annotations

from decimal import Decimal
from typing import Any


def money(value: Any) -> str:
    return f"${Decimal(value):,.2f}"


def signed_money(value: Any) -> str:
    d = Decimal(value)
    return f"{'+' if d >= 0 else '-'}${abs(d):,.2f}"


def price(value: Any) -> str:
    return f"{Decimal(value):.6g}"


def pct(fraction: Any) -> str:
    """0.035 -> '3.5%'."""
    return f"{(Decimal(fraction) * 100).normalize():f}%"


def signed_pct(fraction: Any) -> str:
    d = Decimal(fraction) * 100
    return f"{'+' if d >= 0 else ''}{d:.2f}%"


def lev(value: Any) -> str:
    return f"{Decimal(value).normalize():f}x"


def pct_short(fraction: Any) -> str:
    """0.123456 -> '12.3%': a statistic, not an amount."""
    return f"{Decimal(fraction) * 100:.1f}%"


def ratio(value: Any) -> str:
    """A Sharpe or Sortino ratio, or '-' when it has no value (too few days, no variation)."""
    return "-" if value is None else f"{Decimal(value):.2f}"
