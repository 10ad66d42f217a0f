"""Numbers as traders read them: amounts in dollars formatted for the user's language
(Babel: $1,234.50 in English, 1.234,50 US$ in Spanish, 1 234,50 $ in Russian)."""

from __future__ import annotations

from contextvars import ContextVar
from decimal import Decimal
from functools import lru_cache
from typing import Any

from babel.numbers import format_currency

# the language of the request being answered (set by the router once the user is known)
LANGUAGE: ContextVar[str] = ContextVar("maxxit_language", default="en")


def money(value: Any) -> str:
    d = Decimal(value)
    return _money(d, d.is_signed(), LANGUAGE.get())


@lru_cache(maxsize=8192)
def _money(value: Decimal, signed: bool, language: str) -> str:
    """Babel's text, kept: a reply formats dozens of amounts, many of them the same (a price
    path's marks, the same sizes), and Babel looks the locale up again on every call. Equal
    values give the same text whatever their exponent (it rounds to cents); the sign bit is in
    the key because -0 and 0 are equal but Babel writes "-$0.00" for the first."""
    del signed  # only part of the key
    return format_currency(value, "USD", locale=language)


def signed_money(value: Any) -> str:
    d = Decimal(value)
    return f"{'+' if d >= 0 else '-'}{money(abs(d))}"


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
