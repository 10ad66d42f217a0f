"""Parsing what users type: amounts, leverage, percentages, X handles, names, tickers.
Each parser returns a plain JSON-friendly value or raises UserError with a clear message."""

from __future__ import annotations

import re
import unicodedata
from decimal import Decimal, InvalidOperation

from handlers.base import UserError

_NUMBER = re.compile(r"^[+]?\$?\s*([0-9][0-9,_]*(?:\.[0-9]+)?|\.[0-9]+)\s*(%|x|usd|\$)?$", re.I)
_HANDLE = re.compile(r"^@?([A-Za-z0-9_]{1,15})$")
# letters of any script (Cyrillic, Greek, CJK...), digits, spaces, - and _; \w is Unicode
_NAME = re.compile(r"^[^\W_][\w \-]{2,31}$")
MAX_SOURCES = 10


def number(text: str, key: str, low: Decimal, high: Decimal) -> Decimal:
    """A number between low and high inclusive; '$1,000', '5%', '3x' accepted."""
    m = _NUMBER.match(text.strip()[:40])
    if not m:
        raise UserError(key, low=_plain(low), high=_plain(high))
    try:
        value = Decimal(m.group(1).replace(",", "").replace("_", ""))
    except InvalidOperation:
        raise UserError(key, low=_plain(low), high=_plain(high)) from None
    if not low <= value <= high:
        raise UserError(key, low=_plain(low), high=_plain(high))
    return value


def _plain(d: Decimal) -> str:
    return format(d.normalize(), "f")


def _unit(text: str) -> str:
    m = _NUMBER.match(text.strip()[:40])
    unit = (m.group(2) or "") if m else ""
    if m and not unit and text.strip().lstrip("+").startswith("$"):
        unit = "$"
    return unit.lower()


def usd(text: str) -> str:
    if _unit(text) in ("%", "x"):  # "50%" is not $50: say so instead of guessing
        raise UserError("input.usd_not_percent", text=text.strip()[:20])
    return _plain(number(text, "input.bad_usd", Decimal(1), Decimal(1_000_000)))


def leverage(text: str) -> str:
    if _unit(text) in ("%", "$", "usd"):
        raise UserError("input.bad_leverage", low="1", high="50")
    return _plain(number(text, "input.bad_leverage", Decimal(1), Decimal(50)))


def hours(text: str, low: int, high: int) -> str:
    """A whole number of hours ('24', '24h', '24 h')."""
    bare = text.strip()
    bare = bare[:-1].rstrip() if bare[-1:] in ("h", "H") else bare
    value = number(bare, "input.bad_hours", Decimal(low), Decimal(high))
    if value != value.to_integral_value() or _unit(bare):
        raise UserError("input.bad_hours", low=str(low), high=str(high))
    return str(int(value))


def percent(text: str, low: str = "0.1", high: str = "50") -> str:
    """'5' or '5%' -> '0.05' (stored as a fraction, as the engine uses it)."""
    if _unit(text) in ("$", "usd", "x"):
        raise UserError("input.bad_percent", low=low, high=high)
    value = number(text, "input.bad_percent", Decimal(low), Decimal(high))
    return _plain(value / 100)


# https://x.com/CryptoHawk, x.com/CryptoHawk/status/1, twitter.com/CryptoHawk?s=20: the handle
_PROFILE_URL = re.compile(
    r"^(?:https?://)?(?:www\.|mobile\.)?(?:x|twitter)\.com/@?([A-Za-z0-9_]{1,15})(?:[/?#].*)?$",
    re.I,
)


def is_profile_url(part: str) -> bool:
    """An X profile link (read as its handle, not as a feed)."""
    return _PROFILE_URL.match(part) is not None


def _handle_of(part: str) -> str:
    m = _PROFILE_URL.match(part)
    return m.group(1) if m else part


def handles(text: str) -> list[str]:
    parts = [_handle_of(p) for p in re.split(r"[\s,;]+", text.strip()) if p]
    if not parts:
        raise UserError("input.no_handles")
    bad = [p for p in parts if not _HANDLE.match(p)]
    if bad:
        shown = ", ".join(b[:32] for b in bad[:5])
        raise UserError("input.bad_handles", handles=shown)
    unique = list(dict.fromkeys("@" + _HANDLE.match(p).group(1) for p in parts))  # type: ignore[union-attr]
    if len(unique) > MAX_SOURCES:
        raise UserError("input.too_many_handles", max=MAX_SOURCES)
    return unique


def agent_name(text: str) -> str:
    # one spelling per look: compatibility forms (full-width letters, ligatures) folded
    name = " ".join(unicodedata.normalize("NFKC", text).split())
    if not _NAME.match(name):
        raise UserError("input.bad_agent_name")
    return name


# the words for a side in every language we speak (the buttons say LARGO, ЛОНГ): a call is
# typed the way the bot writes it
_SIDES = {
    "long": ("long", "buy", "largo", "compra", "comprar", "лонг", "покупка", "купить"),
    "short": ("short", "sell", "corto", "venta", "vender", "шорт", "продажа", "продать"),
}


def side(text: str) -> str:
    word = text.strip().casefold()
    for name, words in _SIDES.items():
        if word in words:
            return name
    raise UserError("call.bad_side")
